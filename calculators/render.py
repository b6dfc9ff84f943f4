"""Render node: draws annotations on frames and writes a video or image files."""

from __future__ import annotations

import numpy as np
from facegraph import Calculator, CalculatorContext, Input, StrictOptions, register
from facegraph.vision.media import FrameInfo
from facegraph.vision.render import (
    open_renderer,
)
from pydantic import Field


@register("Render")
class Render(Calculator["Render.Options"]):
    """Writes each IMAGE to a video file, an image file or a folder (the ``path`` option).

    FRAME_INFO (optional) names the per-frame image files after their sources. The
    output is finished in ``close``, also when the run stops early.
    """

    class Options(StrictOptions):
        path: str = Field(..., min_length=1)
        """Output: .mp4/.avi/... video, an image file, or a folder."""
        fps: float | None = Field(None, gt=0)
        """Video frame rate (default 30)."""

    IMAGE: Input[np.ndarray] = Input("IMAGE", np.ndarray, doc="HxWx3 uint8 RGB")
    FRAME_INFO: Input[FrameInfo] = Input("FRAME_INFO", FrameInfo, optional=True)

    def open(self, ctx: CalculatorContext) -> None:
        self._renderer = open_renderer(self.options.path, fps=self.options.fps)

    def process(self, ctx: CalculatorContext) -> None:
        image = ctx.get(self.IMAGE)
        if image is not None:
            self._renderer.write(image, ctx.get(self.FRAME_INFO))

    def close(self, ctx: CalculatorContext) -> None:
        renderer = getattr(self, "_renderer", None)
        if renderer is not None:
            renderer.close()
