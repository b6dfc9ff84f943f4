"""Face pipeline calculators: thin graph nodes over the numerics in :mod:`facegraph.vision.face`.

MediaPipe-shaped (one job per node, landmark-model inference left to the generic
``TfLiteInference`` node or ``FaceLandmarkModel``; detection is the one ``FaceDetector``
node of :mod:`.detectors`), so the face graphs read like MediaPipe's::

    image ─ FaceDetector ─ DetectionsToRois ──────────────────────────────────────────────┐
    (per ROI, in a ParallelMap)     ImageToTensor ─ TfLiteInference ─┬ RefineLandmarks ──┐  │
                                                                    └ FacePresence ─ FaceFlagGate
                                                         ─ ProjectLandmarks ─ LandmarksToRoi

Every node passes the input timestamp through (offset 0) and emits nothing when a required
input is missing, so bounds keep flowing. Values: ``np.ndarray`` images (HxWx3 uint8 RGB;
gray and RGBA are converted), :class:`~.types.Detection`, :class:`~.types.NormalizedRect`,
:class:`~.types.FaceLandmarks`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np
from facegraph import (
    Calculator,
    CalculatorContext,
    Input,
    NoOptions,
    Output,
    SideInput,
    StrictOptions,
    register,
)
from facegraph.calculators.face import detectors as _detectors  # noqa: F401  registers FaceDetector, BlazeFaceDetector
from facegraph.calculators.face import landmark_nodes as _landmark_nodes  # noqa: F401  registers FaceLandmarkModel, IrisLandmarks
from facegraph.vision.face import indices as ix
from facegraph.vision.face.image_to_tensor import as_rgb, image_to_tensor
from facegraph.vision.face.landmarks import (
    ATTENTION_REFINEMENTS,
    LandmarkAssembler,
    Refinement,
    face_passes,
    face_presence,
    project_landmarks,
    projected_z_scale,
    refine_landmarks,
)
from facegraph.vision.face.rois import associate_rects, detection_to_roi, landmarks_to_roi
from facegraph.vision.face.types import Detection, FaceLandmarks, NormalizedRect
from pydantic import Field, model_validator

__all__ = [
    "AssociateRois",
    "DetectionsToRois",
    "FaceFlagGate",
    "FacePresence",
    "ImageToTensor",
    "LandmarksToRoi",
    "ProjectLandmarks",
    "RefineLandmarks",
]


def _tensor_list(value: Any, node: str) -> list[np.ndarray]:
    """Model outputs as a list in model order: from a dict (TfLiteInference), list or array."""
    if isinstance(value, Mapping):
        return [np.asarray(v) for v in value.values()]
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, Sequence):
        return [np.asarray(v) for v in value]
    raise TypeError(f"{node}: TENSORS must be a dict, list or array, got {type(value).__name__}")


def _image_size(image: Any, node: str) -> tuple[int, int]:
    if not isinstance(image, np.ndarray) or image.ndim < 2:
        raise TypeError(f"{node}: IMAGE must be an HxW(xC) array, got {type(image).__name__}")
    return int(image.shape[1]), int(image.shape[0])


@register("ImageToTensor")
class ImageToTensor(Calculator["ImageToTensor.Options"]):
    """Crops a rotated ROI (or the whole image) into a model input tensor: float32 in
    [range_min, range_max], or (``output_type: uint8``) the crop's pixels as they are, for
    a model node with ``uint8_input: [range_min, range_max]`` that maps them itself, with
    the same result and one pass over the crop fewer.

    MediaPipe's CPU ``ImageToTensorCalculator``; with ``warp: exact`` bit-exact with its
    OpenCV 3.4 warp (see :mod:`.image_to_tensor`). With NORM_RECT connected, a timestamp
    without a rect produces nothing (no face to crop). MATRIX maps tensor-normalised
    coordinates back to the image (for detections); LETTERBOX_PADDING is (left, top,
    right, bottom).

    ``warp``: ``exact`` (the default, so that a node written without it, and the
    detectors' letterbox, reproduce MediaPipe's pixels bit for bit) or ``fast``: the same
    ROI, matrix and padding, the pixels from this OpenCV's ``warpAffine`` (on a photo
    ≤ 0.1 grey level apart on average, at most 4), 2-3.5× faster. The shipped landmark
    graphs use ``fast``: their measured landmark parity with MediaPipe stays inside the
    budgets (README, "The face crop").
    """

    class Options(StrictOptions):
        output_width: int = Field(gt=0, description="tensor width in pixels")
        output_height: int = Field(gt=0, description="tensor height in pixels")
        range_min: float = Field(0.0, description="value of pixel 0")
        range_max: float = Field(1.0, description="value of pixel 255")
        border_mode: Literal["replicate", "zero"] = "replicate"
        keep_aspect_ratio: bool = Field(False, description="letterbox instead of stretching")
        warp: Literal["exact", "fast"] = Field(
            "exact",
            description="exact: MediaPipe's OpenCV 3.4 warp bit for bit; fast: cv2.warpAffine",
        )
        output_type: Literal["float32", "uint8"] = Field(
            "float32",
            description="float32: pixels mapped onto the range; uint8: the pixels, for a "
            "model node with uint8_input (which maps them onto its range)",
        )

        @model_validator(mode="after")
        def _range(self) -> ImageToTensor.Options:
            if not self.range_min < self.range_max:
                raise ValueError(f"range_min {self.range_min} must be < range_max {self.range_max}")
            ranged = self.model_fields_set & {"range_min", "range_max"}
            if self.output_type == "uint8" and ranged:
                raise ValueError(
                    f"{' and '.join(sorted(ranged))} apply to float32 output; with "
                    "output_type uint8 set the range on the model node (uint8_input)"
                )
            return self

    IMAGE: Input[np.ndarray] = Input("IMAGE", np.ndarray, doc="HxWx3 uint8 RGB image")
    NORM_RECT: Input[NormalizedRect] = Input(
        "NORM_RECT", NormalizedRect, optional=True, doc="region to crop (default: all)"
    )
    TENSOR: Output[np.ndarray] = Output(
        "TENSOR", np.ndarray, doc="(1, H, W, 3), float32 or uint8 (output_type)"
    )
    MATRIX: Output[np.ndarray] = Output(
        "MATRIX", np.ndarray, optional=True, doc="4x4 tensor→image normalised transform"
    )
    LETTERBOX_PADDING: Output[tuple[float, float, float, float]] = Output(
        "LETTERBOX_PADDING",
        tuple[float, float, float, float],
        optional=True,
        doc="(left, top, right, bottom) fractions",
    )

    def open(self, ctx: CalculatorContext) -> None:
        self._uses_rect = ctx.count(self.NORM_RECT) > 0

    def process(self, ctx: CalculatorContext) -> None:
        image = ctx.get(self.IMAGE)
        if image is None:
            return
        rect = ctx.get(self.NORM_RECT) if self._uses_rect else None
        if self._uses_rect and rect is None:
            return
        o = self.options
        crop = image_to_tensor(
            as_rgb(image, f"{ctx.node_name}: IMAGE at {ctx.timestamp}"),
            rect,
            o.output_width,
            o.output_height,
            None if o.output_type == "uint8" else (o.range_min, o.range_max),
            o.border_mode,
            o.keep_aspect_ratio,
            o.warp,
        )
        ctx.emit(self.TENSOR, crop.tensor)
        if ctx.count(self.MATRIX):
            ctx.emit(self.MATRIX, crop.matrix)
        if ctx.count(self.LETTERBOX_PADDING):
            ctx.emit(self.LETTERBOX_PADDING, crop.padding)


@register("DetectionsToRois")
class DetectionsToRois(Calculator["DetectionsToRois.Options"]):
    """Face-landmark ROI per detection (docs/face_pipeline.md §4.1): box centre, eye-line
    rotation, square on the long side, scaled (1.5). ``square_long: false`` keeps the box's
    aspect (the Tasks face detector's ``EXPANDED_FACE_RECTS``)."""

    class Options(StrictOptions):
        scale: float = Field(1.5, gt=0)
        rotation_start_keypoint: int = Field(0, ge=0)
        rotation_end_keypoint: int = Field(1, ge=0)
        square_long: bool = True
        assign_ids: bool = Field(
            False,
            description="give each ROI a new track id (rect_id); for graphs without "
            "tracking (AssociateRois assigns them in tracking graphs)",
        )

    def open(self, ctx: CalculatorContext) -> None:
        self._next_id = 1

    DETECTIONS: Input[list[Detection]] = Input("DETECTIONS", list[Detection])
    IMAGE: Input[np.ndarray] = Input("IMAGE", np.ndarray, doc="for the image size")
    NORM_RECTS: Output[list[NormalizedRect]] = Output("NORM_RECTS", list[NormalizedRect])

    def process(self, ctx: CalculatorContext) -> None:
        dets, image = ctx.get(self.DETECTIONS), ctx.get(self.IMAGE)
        if dets is None or image is None:
            return
        w, h = _image_size(image, ctx.node_name)
        o = self.options
        rois = [
            detection_to_roi(
                d,
                w,
                h,
                o.rotation_start_keypoint,
                o.rotation_end_keypoint,
                o.scale,
                o.square_long,
            )
            for d in dets
        ]
        if o.assign_ids:
            rois = [replace(r, rect_id=self._next_id + i) for i, r in enumerate(rois)]
            self._next_id += len(rois)
        ctx.emit(self.NORM_RECTS, rois)


@register("LandmarksToRoi")
class LandmarksToRoi(Calculator["LandmarksToRoi.Options"]):
    """Tracking ROI from a face's landmarks (docs/face_pipeline.md §4.2): bbox of all points,
    rotation from point 33 → 263, square on the long side, ×1.5. LANDMARKS may be one FaceLandmarks
    (→ NORM_RECT) or a list (→ NORM_RECTS)."""

    class Options(StrictOptions):
        scale: float = Field(1.5, gt=0)
        rotation_start: int = Field(ix.ROI_ROTATION_START, ge=0)
        rotation_end: int = Field(ix.ROI_ROTATION_END, ge=0)

    LANDMARKS: Input[Any] = Input("LANDMARKS", doc="FaceLandmarks or list of them")
    IMAGE: Input[np.ndarray] = Input("IMAGE", np.ndarray, doc="for the image size")
    NORM_RECT: Output[NormalizedRect] = Output("NORM_RECT", NormalizedRect, optional=True)
    NORM_RECTS: Output[list[NormalizedRect]] = Output(
        "NORM_RECTS", list[NormalizedRect], optional=True
    )

    def _roi(self, face: FaceLandmarks, w: int, h: int) -> NormalizedRect:
        o = self.options
        roi = landmarks_to_roi(face.points, w, h, o.rotation_start, o.rotation_end, o.scale)
        # The next frame's ROI is the same tracked face: it keeps the face's track id.
        return roi if face.track_id is None else replace(roi, rect_id=face.track_id)

    def process(self, ctx: CalculatorContext) -> None:
        faces, image = ctx.get(self.LANDMARKS), ctx.get(self.IMAGE)
        if faces is None or image is None:
            return
        w, h = _image_size(image, ctx.node_name)
        if isinstance(faces, FaceLandmarks):
            if ctx.count(self.NORM_RECT):
                ctx.emit(self.NORM_RECT, self._roi(faces, w, h))
            if ctx.count(self.NORM_RECTS):
                ctx.emit(self.NORM_RECTS, [self._roi(faces, w, h)])
        else:
            rois = [self._roi(f, w, h) for f in faces]
            if ctx.count(self.NORM_RECTS):
                ctx.emit(self.NORM_RECTS, rois)


@register("AssociateRois")
class AssociateRois(Calculator["AssociateRois.Options"]):
    """Merges ROI lists by IoU (MediaPipe's AssociationNormRectCalculator): NORM_RECTS:0 has
    the lowest priority; a rect from a later stream replaces every earlier rect it overlaps
    (IoU > threshold) and inherits its track id. Rects still without a track id (faces
    detected anew) get a new one, unique within the run, so a face keeps its id while it
    is tracked and gets a new one when it is detected again after a loss. Missing inputs
    count as empty; the output is always emitted (possibly empty). The MIN_SIMILARITY side
    packet overrides the option (the Tasks graph passes ``min_tracking_confidence`` there)."""

    class Options(StrictOptions):
        min_similarity: float = Field(0.5, ge=0.0, le=1.0)
        assign_ids: bool = Field(True, description="give rects without a track id a new one")

    NORM_RECTS_IN: Input[list[NormalizedRect]] = Input(
        "NORM_RECTS", list[NormalizedRect], multiple=True
    )
    NORM_RECTS_OUT: Output[list[NormalizedRect]] = Output("NORM_RECTS", list[NormalizedRect])
    MIN_SIMILARITY: SideInput[float] = SideInput(
        "MIN_SIMILARITY", float, optional=True, doc="overrides min_similarity"
    )

    def open(self, ctx: CalculatorContext) -> None:
        self._min_similarity = float(
            ctx.side(self.MIN_SIMILARITY, default=self.options.min_similarity)
        )
        self._next_id = 1

    def process(self, ctx: CalculatorContext) -> None:
        streams = [ctx.get(self.NORM_RECTS_IN, i) for i in range(ctx.count(self.NORM_RECTS_IN))]
        rects = associate_rects(streams, self._min_similarity)
        if self.options.assign_ids:
            for i, rect in enumerate(rects):
                if rect.rect_id is None:
                    rects[i] = replace(rect, rect_id=self._next_id)
                    self._next_id += 1
        ctx.emit(self.NORM_RECTS_OUT, rects)


_Region = Literal["mesh", "lips", "left_eye", "right_eye", "left_iris", "right_iris"]


class _RefinementSpec(StrictOptions):
    tensor: int = Field(ge=0, description="index of the model output")
    indices: list[int] | _Region = Field(description="target indices or a region name")
    z: Literal["copy", "none", "average"] = "none"
    z_average_indices: list[int] | Literal["left_eye_contour", "right_eye_contour"] = Field(
        default_factory=list
    )


_NAMED: dict[str, tuple[int, ...]] = {
    "mesh": tuple(range(ix.NUM_MESH)),
    "lips": ix.LIPS,
    "left_eye": ix.LEFT_EYE,
    "right_eye": ix.RIGHT_EYE,
    "left_iris": ix.LEFT_IRIS,
    "right_iris": ix.RIGHT_IRIS,
    "left_eye_contour": ix.LEFT_IRIS_Z_AVERAGE,
    "right_eye_contour": ix.RIGHT_IRIS_Z_AVERAGE,
}


@register("RefineLandmarks")
class RefineLandmarks(Calculator["RefineLandmarks.Options"]):
    """Decodes landmark tensors and assembles one landmark list (docs/face_pipeline.md §2.4, §2.5).

    ``preset: attention_mesh`` builds the 478 points from the Attention Mesh model's
    outputs 0–5; ``preset: mesh`` decodes the 468-point model's output 0; ``preset:
    mesh_v2`` the 478 points of the FaceMesh V2 model's output 0; ``preset: auto``
    (default) picks one of those two from the number of model outputs (7 → attention, 2 →
    mesh), so one graph serves both models. Or list ``refinements`` explicitly (tensor
    index, target indices or a region name, z rule). Output: float32 (N, 3) in
    crop-normalised coordinates (before projection).
    """

    class Options(StrictOptions):
        preset: Literal["auto", "attention_mesh", "mesh", "mesh_v2", "custom"] = "auto"
        refinements: list[_RefinementSpec] = Field(default_factory=list)
        input_size: int = Field(192, gt=0, description="model input size in pixels")

        @model_validator(mode="after")
        def _custom(self) -> RefineLandmarks.Options:
            if (self.preset == "custom") != bool(self.refinements):
                raise ValueError("give refinements exactly when preset is 'custom'")
            return self

    TENSORS: Input[Any] = Input("TENSORS", doc="landmark model outputs (dict, list)")
    LANDMARKS: Output[np.ndarray] = Output("LANDMARKS", np.ndarray, doc="float32 (N, 3)")

    def open(self, ctx: CalculatorContext) -> None:
        o = self.options
        self._auto = o.preset == "auto"
        if o.preset == "attention_mesh":
            self._plan = list(enumerate(ATTENTION_REFINEMENTS))
        elif o.preset == "mesh_v2":
            self._plan = [(0, Refinement(tuple(range(ix.NUM_REFINED)), "copy"))]
        elif o.preset in ("mesh", "auto"):
            self._plan = [(0, Refinement(_NAMED["mesh"], "copy"))]
        else:
            self._plan = [
                (
                    r.tensor,
                    Refinement(
                        _NAMED[r.indices] if isinstance(r.indices, str) else tuple(r.indices),
                        r.z,
                        _NAMED[r.z_average_indices]
                        if isinstance(r.z_average_indices, str)
                        else tuple(r.z_average_indices),
                    ),
                )
                for r in o.refinements
            ]
        refine_landmarks(  # validates index coverage now rather than on the first frame
            [np.zeros((len(r.indices), 3)) for _, r in self._plan], [r for _, r in self._plan]
        )
        self._assemble = self._assembler()

    def _assembler(self) -> LandmarkAssembler:
        size = self.options.input_size
        return LandmarkAssembler([r for _, r in self._plan], size, size)

    def process(self, ctx: CalculatorContext) -> None:
        tensors = ctx.get(self.TENSORS)
        if tensors is None:
            return
        outs = _tensor_list(tensors, ctx.node_name)
        if self._auto:
            # The Attention Mesh has 7 outputs (6 landmark sets + face flag), the mesh 2.
            self._auto = False
            if len(outs) >= len(ATTENTION_REFINEMENTS):
                self._plan = list(enumerate(ATTENTION_REFINEMENTS))
                self._assemble = self._assembler()
        for t, _ in self._plan:
            if t >= len(outs):
                raise ValueError(f"{ctx.node_name}: no model output {t} (got {len(outs)})")
        # = refine_landmarks of decode_landmarks per set, fused (same bits).
        ctx.emit(self.LANDMARKS, self._assemble([outs[t] for t, _ in self._plan]))


@register("FacePresence")
class FacePresence(Calculator["FacePresence.Options"]):
    """Face-presence probability: sigmoid of the face-flag logit (the model's last output
    unless ``tensor`` says otherwise)."""

    class Options(StrictOptions):
        tensor: int = Field(-1, description="index of the face-flag output")

    TENSORS: Input[Any] = Input("TENSORS", doc="landmark model outputs (dict, list)")
    SCORE: Output[float] = Output("SCORE", float)

    def process(self, ctx: CalculatorContext) -> None:
        tensors = ctx.get(self.TENSORS)
        if tensors is not None:
            outs = _tensor_list(tensors, ctx.node_name)
            ctx.emit(self.SCORE, face_presence(outs[self.options.tensor]))


@register("FaceFlagGate")
class FaceFlagGate(Calculator["FaceFlagGate.Options"]):
    """Passes LANDMARKS only when SCORE > threshold (strict), like MediaPipe's
    Thresholding + Gate; a dropped face yields no landmarks and no tracking ROI. Side
    packet MIN_TRACKING_CONFIDENCE overrides the option."""

    class Options(StrictOptions):
        threshold: float = Field(0.5, ge=0.0, le=1.0)

    LANDMARKS_IN: Input[Any] = Input("LANDMARKS")
    SCORE: Input[float] = Input("SCORE", float)
    LANDMARKS_OUT: Output[Any] = Output("LANDMARKS")
    MIN_TRACKING_CONFIDENCE: SideInput[float] = SideInput(
        "MIN_TRACKING_CONFIDENCE", float, optional=True
    )

    def open(self, ctx: CalculatorContext) -> None:
        self._threshold = float(
            ctx.side(self.MIN_TRACKING_CONFIDENCE, default=self.options.threshold)
        )

    def process(self, ctx: CalculatorContext) -> None:
        value, score = ctx.get(self.LANDMARKS_IN), ctx.get(self.SCORE)
        if value is not None and score is not None and face_passes(score, self._threshold):
            ctx.emit(self.LANDMARKS_OUT, value)


@register("ProjectLandmarks")
class ProjectLandmarks(Calculator[NoOptions]):
    """Crop-normalised landmarks + their ROI → a :class:`FaceLandmarks` in image
    coordinates (docs/face_pipeline.md §2.6); SCORE, when connected, is stored with them.

    With IMAGE connected, z is scaled as MediaPipe's Tasks graphs do it (they give the
    projection the image size): by the projected length of the crop's x edge
    (:func:`projected_z_scale`) rather than the ROI's normalised width (legacy graphs)."""

    LANDMARKS: Input[np.ndarray] = Input("LANDMARKS", np.ndarray, doc="float32 (N, 3)")
    NORM_RECT: Input[NormalizedRect] = Input("NORM_RECT", NormalizedRect)
    SCORE: Input[float] = Input("SCORE", float, optional=True)
    IMAGE: Input[np.ndarray] = Input(
        "IMAGE", np.ndarray, optional=True, doc="the frame: its size sets the z scale"
    )
    FACE: Output[FaceLandmarks] = Output("FACE", FaceLandmarks)

    def process(self, ctx: CalculatorContext) -> None:
        pts, roi = ctx.get(self.LANDMARKS), ctx.get(self.NORM_RECT)
        if pts is None or roi is None:
            return
        score = ctx.get(self.SCORE)  # None when unconnected or absent at this timestamp
        projected = project_landmarks(pts, roi)
        if ctx.count(self.IMAGE):
            image = ctx.get(self.IMAGE)
            if image is None:
                return
            w, h = _image_size(image, ctx.node_name)
            projected[:, 2] = np.asarray(pts, np.float32)[:, 2] * projected_z_scale(roi, w, h)
        ctx.emit(
            self.FACE,
            FaceLandmarks(projected, float("nan") if score is None else score, roi),
        )
