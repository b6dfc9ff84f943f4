"""FaceGeometry node: facial transformation matrix, metric landmarks and head pose per face."""

from __future__ import annotations

import os

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
from facegraph.calculators.face.per_face import check_model_reference, is_enabled, map_faces
from facegraph.vision.face.geometry import METADATA, GeometryPipeline, PerspectiveCamera
from facegraph.vision.face.geometry import FaceGeometry as FaceGeometryValue
from facegraph.vision.face.types import FaceLandmarks
from pydantic import Field, field_validator

__all__ = ["FaceGeometry"]


@register("FaceGeometry")
class FaceGeometry(Calculator):
    """MediaPipe Tasks' face geometry for every face: FACES (≥ 468 landmarks each: FaceMesh
    V2 or the legacy ``face_mesh``) and the IMAGE they were found on (only its size is
    used) → GEOMETRY, one :class:`~facegraph.vision.face.geometry.FaceGeometry` (4×4
    facial transformation matrix, 468 metric landmarks in cm, yaw/pitch/roll in degrees)
    per face in the same order; None for a face too small to fit (MediaPipe drops it).

    The METADATA side packet (a ``.binarypb`` path, e.g. a member of a user's ``.task``
    bundle) overrides the ``metadata`` option.
    """

    class Options(StrictOptions):
        metadata: str = Field(METADATA, min_length=1)
        """Geometry metadata (canonical mesh, Procrustes weights): manifest name or path."""
        vertical_fov_degrees: float = Field(63.0, gt=0, lt=180)
        """The virtual camera's vertical field of view (MediaPipe's default: 63)."""
        near: float = Field(1.0, gt=0)
        """Near plane, cm."""
        far: float = Field(10000.0, gt=0)
        """Far plane, cm."""

        _metadata_exists = field_validator("metadata")(check_model_reference)

    FACES: Input[list[FaceLandmarks]] = Input(
        "FACES", list, doc="list[FaceLandmarks], ≥ 468 points"
    )
    IMAGE: Input[np.ndarray] = Input("IMAGE", np.ndarray, doc="the frame; only its size is used")
    GEOMETRY: Output[list[FaceGeometryValue | None]] = Output(
        "GEOMETRY", list, doc="list[FaceGeometry | None], one per face, same order"
    )
    METADATA: SideInput[str | os.PathLike[str]] = SideInput(
        "METADATA", object, optional=True, doc="geometry .binarypb path (overrides metadata)"
    )
    ENABLED: SideInput[bool] = SideInput(
        "ENABLED", bool, optional=True, doc="false: load nothing (the branch is gated off)"
    )

    def open(self, ctx: CalculatorContext) -> None:
        self._enabled = is_enabled(ctx, self.ENABLED)
        if not self._enabled:
            return
        o = self.options
        side = ctx.side(self.METADATA) if ctx.count(self.METADATA) else None
        camera = PerspectiveCamera(o.vertical_fov_degrees, o.near, o.far)
        self._pipeline = GeometryPipeline(side if side is not None else o.metadata, camera)

    def process(self, ctx: CalculatorContext) -> None:
        if not self._enabled:
            return
        geometry = map_faces(ctx, self.FACES, self.IMAGE, self._pipeline.estimate)
        if geometry is not None:
            ctx.emit(self.GEOMETRY, geometry)
