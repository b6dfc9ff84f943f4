"""FaceBlendshapes node: 52 blendshape scores per face (MediaPipe Tasks' blendshapes graph)."""

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
from facegraph.calculators.inference import ThreadsOption
from facegraph.vision.face.blendshapes import MODEL, Blendshapes, BlendshapesModel
from facegraph.vision.face.types import FaceLandmarks
from pydantic import Field, field_validator

__all__ = ["FaceBlendshapes"]


@register("FaceBlendshapes")
class FaceBlendshapes(Calculator["FaceBlendshapes.Options"]):
    """Blendshapes of every face: FACES (478 landmarks each: FaceMesh V2, or the Attention
    Mesh of ``face_mesh``) and the IMAGE they were found on (only its size is used) →
    BLENDSHAPES, one :class:`Blendshapes` per face in the same order.

    The MODEL side packet (a ``.tflite`` path, e.g. a member of a user's ``.task``
    bundle) overrides the ``model`` option.
    """

    class Options(StrictOptions):
        model: str = Field(MODEL, min_length=1)
        """Blendshapes model: manifest name or .tflite path."""
        threads: ThreadsOption = "auto"
        """LiteRT/XNNPACK threads: a count, or "auto" (1 or 2, whichever is faster now)."""

        _model_exists = field_validator("model")(check_model_reference)

    FACES: Input[list[FaceLandmarks]] = Input(
        "FACES", list[FaceLandmarks], doc="list[FaceLandmarks], 478 points"
    )
    IMAGE: Input[np.ndarray] = Input("IMAGE", np.ndarray, doc="the frame; only its size is used")
    BLENDSHAPES: Output[list[Blendshapes]] = Output(
        "BLENDSHAPES", list[Blendshapes], doc="list[Blendshapes], one per face, same order"
    )
    MODEL: SideInput[str | os.PathLike[str]] = SideInput(
        "MODEL", object, optional=True, doc="blendshapes .tflite path (overrides model)"
    )
    ENABLED: SideInput[bool] = SideInput(
        "ENABLED", bool, optional=True, doc="false: load nothing (the branch is gated off)"
    )

    def open(self, ctx: CalculatorContext) -> None:
        self._enabled = is_enabled(ctx, self.ENABLED)
        if not self._enabled:
            return
        self._model = BlendshapesModel(
            ctx.side(self.MODEL, default=self.options.model), threads=self.options.threads
        )

    def process(self, ctx: CalculatorContext) -> None:
        if not self._enabled:
            return
        shapes = map_faces(ctx, self.FACES, self.IMAGE, self._model.predict)
        if shapes is not None:
            ctx.emit(self.BLENDSHAPES, shapes)
