"""LandmarksWriter node: writes each frame's faces to a .jsonl/.json file or stdout."""

from __future__ import annotations

from typing import Any

from facegraph import Calculator, CalculatorContext, Input, StrictOptions, register
from facegraph.vision.media import FrameInfo
from facegraph.vision.writers import (
    LandmarksWriter,
)
from pydantic import Field


@register("LandmarksWriter")
class LandmarksWriterNode(Calculator["LandmarksWriterNode.Options"]):
    """Writes each frame's faces to a .jsonl / .json file or stdout (the ``path`` option).

    Runs once per FRAME_INFO timestamp; FACES (a list of FaceLandmarks or Detection)
    absent at that timestamp means no face (``"faces": []``). The file is finished in
    ``close``, also when the run stops early.
    """

    class Options(StrictOptions):
        path: str = Field(..., min_length=1)
        """Output file: .jsonl, .json or '-' for stdout."""
        digits: int | None = Field(3, ge=0, le=9)
        """Decimals kept for pixel coordinates (null = all)."""

    FRAME_INFO: Input[FrameInfo] = Input("FRAME_INFO", FrameInfo, doc="from MediaSource")
    FACES: Input[Any] = Input(
        "FACES", optional=True, doc="list of FaceLandmarks or Detection at the frame"
    )

    def open(self, ctx: CalculatorContext) -> None:
        self._writer = LandmarksWriter(self.options.path, digits=self.options.digits)
        self._has_faces = ctx.count(self.FACES) > 0

    def process(self, ctx: CalculatorContext) -> None:
        info = ctx.get(self.FRAME_INFO)
        if info is None:
            return  # faces without a frame record: nothing to attach them to
        faces = ctx.get(self.FACES) if self._has_faces else None
        self._writer.write(info, faces)

    def close(self, ctx: CalculatorContext) -> None:
        writer = getattr(self, "_writer", None)
        if writer is not None:
            writer.close()
