"""LandmarksSmoothing node: One Euro smoothing of tracked face landmarks."""

from __future__ import annotations

import numpy as np
from facegraph import (
    Calculator,
    CalculatorContext,
    Input,
    Output,
    SideInput,
    StrictOptions,
    register,
)
from facegraph.vision.face.filters import (
    DEFAULT_BETA,
    DEFAULT_D_CUTOFF,
    DEFAULT_MIN_CUTOFF,
    MultiFaceSmoother,
)
from facegraph.vision.face.types import FaceLandmarks
from pydantic import Field


class _SmoothingOptions(StrictOptions):
    min_cutoff: float = Field(DEFAULT_MIN_CUTOFF, gt=0)
    """Cutoff frequency (Hz) at rest: lower = steadier still faces, more lag when starting."""
    beta: float = Field(DEFAULT_BETA, ge=0)
    """Cutoff increase (Hz) per interocular distance per second of face speed."""
    d_cutoff: float = Field(DEFAULT_D_CUTOFF, gt=0)
    """Cutoff (Hz) of the speed estimate."""
    min_iou: float = Field(0.3, ge=0.0, le=1.0)
    """Landmark-box IoU needed to continue a face's track from the previous frame."""
    max_gap_s: float = Field(0.5, gt=0)
    """A longer gap between frames resets every track."""
    enabled: bool = True
    """False: pass faces through unchanged (the side input ENABLED overrides this)."""


@register("LandmarksSmoothing")
class LandmarksSmoothing(Calculator[_SmoothingOptions]):
    """One Euro smoothing of face landmarks, scaled by face size, per tracked face.

    FACES: list of :class:`FaceLandmarks` (no packet = no face: every track resets).
    IMAGE (optional, recommended): the frame, for its size, so that smoothing happens in
    square pixels and frames without faces reset the tracks. Scores and ROIs pass through.
    Side packet ENABLED (optional bool) overrides the ``enabled`` option.
    """

    FACES_IN: Input[list[FaceLandmarks]] = Input(
        "FACES", list[FaceLandmarks], doc="list[FaceLandmarks]"
    )
    IMAGE: Input[np.ndarray] = Input("IMAGE", np.ndarray, optional=True, doc="for the size")
    FACES_OUT: Output[list[FaceLandmarks]] = Output(
        "FACES", list[FaceLandmarks], doc="smoothed faces"
    )

    ENABLED: SideInput[bool] = SideInput("ENABLED", bool, optional=True)

    def open(self, ctx: CalculatorContext) -> None:
        o = self.options
        self._enabled = bool(ctx.side(self.ENABLED, default=o.enabled))
        self._smoother = MultiFaceSmoother(o.min_cutoff, o.beta, o.d_cutoff, o.min_iou, o.max_gap_s)
        self._has_image = ctx.count(self.IMAGE) > 0

    def process(self, ctx: CalculatorContext) -> None:
        faces = ctx.get(self.FACES_IN)
        t = ctx.timestamp / 1e6
        if not faces:
            self._smoother.lost_all(t)
            return
        if not self._enabled:
            ctx.emit(self.FACES_OUT, faces)
            return
        if self._has_image:
            image = ctx.get(self.IMAGE)
            if image is None:  # faces without their frame: cannot scale; pass through
                ctx.emit(self.FACES_OUT, faces)
                return
            h, w = image.shape[:2]
        else:
            w = h = 1
        scale = np.array([w, h, w], np.float64)
        px = [np.asarray(f.points, np.float64) * scale for f in faces]
        ids = [f.roi.rect_id if f.roi is not None else None for f in faces]
        smoothed = self._smoother.apply(px, t, ids)
        ctx.emit(
            self.FACES_OUT,
            [
                FaceLandmarks((s / scale).astype(np.float32), f.score, f.roi)
                for s, f in zip(smoothed, faces, strict=True)
            ],
        )
