"""Face-landmark model node (model chosen by a side packet) and the iris-model node.

``FaceLandmarkModel`` is the landmark stage's inference: the same TENSORS-in/TENSORS-out
contract as the generic ``TfLiteInference``, but the model is chosen per run by the
``WITH_ATTENTION`` side packet (MediaPipe's ``with_attention`` / ``refine_landmarks``),
so one ``face_landmark`` subgraph serves the 478-point Attention Mesh and the plain
468-point mesh. ``RefineLandmarks`` (``preset: auto``) then decodes whichever it gets.

``IrisLandmarks`` is docs/face_pipeline.md §6: eye ROIs from a 468-point mesh,
``iris_landmark.tflite``
on each eye (the right one mirrored), eye contours written over the mesh and the two
irises appended → 478 points.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

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
from facegraph.calculators.face.per_face import check_model_reference as _check_model_option
from facegraph.calculators.inference import ThreadsOption, UInt8InputOption
from facegraph.vision.face import indices as ix
from facegraph.vision.face.image_to_tensor import as_rgb
from facegraph.vision.face.landmarks import (
    crop_eye,
    decode_iris_outputs,
    eye_rois,
    merge_iris_into_mesh,
)
from facegraph.vision.face.types import FaceLandmarks
from pydantic import BaseModel, Field, field_validator

__all__ = ["FaceLandmarkModel", "IrisLandmarks", "LandmarkModelNode"]

ATTENTION_MODEL = "face_landmark_with_attention"
MESH_MODEL = "face_landmark"


def _load_model(
    name: str,
    threads: ThreadsOption,
    shape: tuple[int, ...],
    expected: str,
    node: str,
    custom_ops: Literal["lower", "split"] = "lower",
    uint8_input: tuple[float, float] | None = None,
) -> Any:
    """A TfLiteModel whose single input has ``shape``; else an error naming the file."""
    from facegraph.models import model_path
    from facegraph.models.inference import TfLiteModel

    path = model_path(name)
    model = TfLiteModel(path, threads=threads, custom_ops=custom_ops, uint8_input=uint8_input)
    inputs = model.input_details
    if len(inputs) != 1 or tuple(inputs[0].shape) != shape:
        got = ", ".join(f"{d.name} {tuple(d.shape)}" for d in inputs)
        raise ValueError(
            f"node '{node}': model {path} has input(s) {got}, but this node needs one input "
            f"of shape {shape}: use {expected}"
        )
    return model


LandmarkOptionsT = TypeVar("LandmarkOptionsT", bound=BaseModel)


class LandmarkModelNode(Calculator[LandmarkOptionsT]):
    """Base of the landmark-model nodes: one crop TENSOR in, the model's TENSORS out (a
    dict in model order). Subclasses load ``self._model`` in ``open``."""

    TENSOR: Input[np.ndarray] = Input(
        "TENSOR", np.ndarray, doc="(1, H, W, 3) crop: float32, or uint8 with uint8_input"
    )
    TENSORS: Output[dict[str, np.ndarray]] = Output(
        "TENSORS", dict[str, np.ndarray], doc="model outputs, name → array, in model order"
    )
    _model: Any

    def process(self, ctx: CalculatorContext) -> None:
        tensor = ctx.get(self.TENSOR)
        if tensor is not None:
            ctx.emit(self.TENSORS, self._model.run(tensor))


@register("FaceLandmarkModel")
class FaceLandmarkModel(LandmarkModelNode["FaceLandmarkModel.Options"]):
    """Runs the face-landmark model on a 192×192 crop: the Attention Mesh (7 outputs, 478
    points after refinement) when WITH_ATTENTION is true, else the 468-point mesh (2
    outputs). The side packet overrides the ``with_attention`` option; ``model`` names
    any other compatible model (manifest name or .tflite path) and wins over both."""

    class Options(StrictOptions):
        with_attention: bool = True
        """Attention Mesh (478 points) instead of the plain mesh (468)."""
        model: str | None = Field(None, min_length=1)
        """Explicit model name or path (overrides with_attention)."""
        threads: ThreadsOption = "auto"
        """LiteRT/XNNPACK threads: a count, or "auto" (1 or 2, whichever is faster now)."""
        custom_ops: Literal["lower", "split"] = "lower"
        """Attention Mesh custom ops lowered to built-ins (one interpreter) or split."""
        uint8_input: UInt8InputOption = None
        """[min, max]: TENSOR is uint8 pixels (ImageToTensor's ``output_type: uint8``),
        mapped onto this range inside the model: the same outputs as a float32 crop in
        that range, one pass over the crop fewer."""

        _model_exists = field_validator("model")(_check_model_option)

    WITH_ATTENTION: SideInput[bool] = SideInput(
        "WITH_ATTENTION", bool, optional=True, doc="overrides with_attention"
    )

    def open(self, ctx: CalculatorContext) -> None:
        side = ctx.side(self.WITH_ATTENTION, default=self.options.with_attention)
        if not isinstance(side, (bool, np.bool_)):
            raise TypeError(f"side packet WITH_ATTENTION must be a bool, got {side!r}")
        attention = bool(side)
        name = self.options.model or (ATTENTION_MODEL if attention else MESH_MODEL)
        self.model_name = name
        self._model = _load_model(
            name,
            self.options.threads,
            (1, 192, 192, 3),
            f"'{ATTENTION_MODEL}' or '{MESH_MODEL}'",
            ctx.node_name,
            self.options.custom_ops,
            self.options.uint8_input,
        )


@register("IrisLandmarks")
class IrisLandmarks(Calculator["IrisLandmarks.Options"]):
    """468-point face + image → 478 points with the iris model (docs/face_pipeline.md §6).

    Per eye: ROI from the eye corners (33/133, 362/263) ×2.3, nearest-neighbour crop,
    fit to 64×64, ``iris_landmark`` (right eye mirrored), letterbox removal, projection.
    The 71 contour points overwrite the mesh's eye points; left then right iris (5 each)
    are appended. A face that already has 478 points passes unchanged.
    """

    class Options(StrictOptions):
        model: str = Field("iris_landmark", min_length=1)
        """Iris model name or path."""
        threads: ThreadsOption = "auto"
        """LiteRT/XNNPACK threads: a count, or "auto" (1 or 2, whichever is faster now)."""

        _model_exists = field_validator("model")(_check_model_option)

    FACE_IN: Input[FaceLandmarks] = Input("FACE", FaceLandmarks, doc="468-point face")
    IMAGE: Input[np.ndarray] = Input("IMAGE", np.ndarray, doc="the frame the face is in")
    FACE_OUT: Output[FaceLandmarks] = Output("FACE", FaceLandmarks, doc="478-point face")

    def open(self, ctx: CalculatorContext) -> None:
        self._model = _load_model(
            self.options.model,
            self.options.threads,
            (1, 64, 64, 3),
            "'iris_landmark'",
            ctx.node_name,
        )

    def _eye(self, image: np.ndarray, roi: Any, flip: bool) -> tuple[np.ndarray, np.ndarray]:
        crop = crop_eye(image, roi, flip)
        outs = list(self._model.run(crop.tensor).values())
        # Contours (71×3 = 213 values) and iris (5×3 = 15), told apart by size.
        contours = next(o for o in outs if o.size == 213)
        iris = next(o for o in outs if o.size == 15)
        return decode_iris_outputs(contours, iris, crop, roi)

    def process(self, ctx: CalculatorContext) -> None:
        face, image = ctx.get(self.FACE_IN), ctx.get(self.IMAGE)
        if face is None or image is None:
            return
        if len(face) == ix.NUM_REFINED:
            ctx.emit(self.FACE_OUT, face)
            return
        if len(face) != ix.NUM_MESH:
            raise ValueError(
                f"{ctx.node_name}: FACE at {ctx.timestamp} has {len(face)} points; "
                f"the iris path needs the {ix.NUM_MESH}-point mesh"
            )
        rgb = as_rgb(image, f"{ctx.node_name}: IMAGE at {ctx.timestamp}")
        h, w = rgb.shape[:2]
        left_roi, right_roi = eye_rois(face.points, w, h)
        left_contour, left_iris = self._eye(rgb, left_roi, flip=False)
        right_contour, right_iris = self._eye(rgb, right_roi, flip=True)
        points = merge_iris_into_mesh(
            face.points, left_contour, right_contour, left_iris, right_iris
        )
        ctx.emit(self.FACE_OUT, FaceLandmarks(points, face.score, face.roi))
