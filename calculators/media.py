"""MediaSource node: frames of a video file, image folder or camera as a stream."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from facegraph import (
    STOP,
    Calculator,
    CalculatorContext,
    Output,
    StrictOptions,
    register,
)
from facegraph.calculator import Signal
from facegraph.ports import SideInput
from facegraph.vision.media import (
    FrameInfo,
    SourceError,
    open_source,
)
from pydantic import Field


@register("MediaSource")
class MediaSource(Calculator["MediaSource.Options"]):
    """Reads frames from images, a video or a camera; emits IMAGE and FRAME_INFO per frame.

    The input is the ``input`` option, or the INPUT side packet when connected (same
    spelling as ``facegraph run --input``: ``0``, ``photo.jpg``, ``dir/``, ``'*.png'``,
    ``clip.mp4``). Packets are stamped with the frame's ``timestamp_us``. Unreadable
    image files are reported on stderr and skipped; a camera that stops ends the stream.
    """

    class Options(StrictOptions):
        input: str = ""
        """What to read (overridden by the INPUT side packet)."""
        fps: float | None = Field(None, gt=0)
        """Frame rate for image inputs (timestamps); default 30."""

    IMAGE: Output[np.ndarray] = Output("IMAGE", np.ndarray, doc="HxWx3 uint8 RGB, read-only")
    FRAME_INFO: Output[FrameInfo] = Output(
        "FRAME_INFO", FrameInfo, optional=True, doc="index, timestamp, source, size"
    )
    INPUT: SideInput[str] = SideInput("INPUT", str, optional=True, doc="overrides the input option")

    timestamp_offset: ClassVar[int | None] = None

    def open(self, ctx: CalculatorContext) -> None:
        spec = str(ctx.side(self.INPUT, default=self.options.input))
        if not spec:
            raise SourceError("MediaSource needs an input: set the 'input' option or INPUT")
        self._source = open_source(spec, fps=self.options.fps)
        self._frames = self._source.frames()
        self._has_info = ctx.count(self.FRAME_INFO) > 0

    def process(self, ctx: CalculatorContext) -> Signal | None:
        frame = next(self._frames, None)
        if frame is None:
            return STOP
        ts = frame.info.timestamp_us
        ctx.emit(self.IMAGE, frame.image, timestamp=ts)
        if self._has_info:
            ctx.emit(self.FRAME_INFO, frame.info, timestamp=ts)
        return None

    def close(self, ctx: CalculatorContext) -> None:
        source = getattr(self, "_source", None)
        if source is not None:
            source.close()
