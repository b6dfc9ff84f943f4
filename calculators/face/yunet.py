"""YuNetFaceDetector node: OpenCV's YuNet face detector as a graph node."""

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
from facegraph.vision.face.image_to_tensor import as_rgb
from facegraph.vision.face.types import Detection
from facegraph.vision.face.yunet import (
    DEFAULT_MAX_INPUT_SIZE,
    DEFAULT_NMS_THRESHOLD,
    DEFAULT_SCORE_THRESHOLD,
    DEFAULT_TOP_K,
    YUNET_MODEL,
    BoxStyle,
    YuNetDetector,
)
from pydantic import Field


@register("YuNetFaceDetector")
class YuNetFaceDetector(Calculator["YuNetFaceDetector.Options"]):
    """YuNet face detector: IMAGE (RGB uint8) → DETECTIONS (BlazeFace-shaped, best first).

    A drop-in for BlazeFace's ``FaceDetector``: same detection type, same 6 named
    keypoints (ear tragions estimated, see the module doc), same side packets
    (MIN_SCORE = ``min_detection_confidence``, NUM_FACES = ``num_faces``). Emits an
    empty list when there is no face; nothing when IMAGE is missing at a timestamp.
    """

    class Options(StrictOptions):
        model: str = Field(
            YUNET_MODEL,
            min_length=1,
            description="a model name from `facegraph models list` or the path of a YuNet .onnx",
        )
        score_threshold: float = Field(
            DEFAULT_SCORE_THRESHOLD,
            ge=0.0,
            le=1.0,
            description="minimum score (MIN_SCORE overrides; OpenCV Zoo's demo uses 0.9)",
        )
        nms_threshold: float = Field(
            DEFAULT_NMS_THRESHOLD, gt=0.0, le=1.0, description="NMS IoU threshold"
        )
        top_k: int = Field(DEFAULT_TOP_K, ge=1, description="candidates kept before NMS")
        max_detections: int | None = Field(
            None, ge=0, description="keep the N best (NUM_FACES overrides; default: all)"
        )
        box: BoxStyle = Field(
            "blazeface", description="'blazeface': BlazeFace-equivalent box; 'yunet': YuNet's own"
        )
        max_input_size: int | None = Field(
            DEFAULT_MAX_INPUT_SIZE,
            ge=32,
            description="shrink images whose long side is larger to this first (null: never)",
        )

    IMAGE: Input[np.ndarray] = Input("IMAGE", np.ndarray, doc="HxWx3 uint8 RGB image")
    DETECTIONS: Output[list[Detection]] = Output(
        "DETECTIONS", list[Detection], doc="list[Detection]"
    )
    MIN_SCORE: SideInput[float] = SideInput("MIN_SCORE", float, optional=True)
    NUM_FACES: SideInput[int] = SideInput("NUM_FACES", int, optional=True)

    def open(self, ctx: CalculatorContext) -> None:
        o = self.options
        score = float(ctx.side(self.MIN_SCORE, default=o.score_threshold))
        max_detections = ctx.side(self.NUM_FACES, default=o.max_detections)
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"{ctx.node_name}: MIN_SCORE must be in [0, 1], got {score}")
        self._detector = YuNetDetector(
            model=o.model,
            score_threshold=score,
            nms_threshold=o.nms_threshold,
            top_k=o.top_k,
            max_detections=None if max_detections is None else int(max_detections),
            box=o.box,
            max_input_size=o.max_input_size,
        )

    def process(self, ctx: CalculatorContext) -> None:
        image = ctx.get(self.IMAGE)
        if image is None:
            return
        rgb = as_rgb(image, f"{ctx.node_name}: IMAGE at {ctx.timestamp}")
        ctx.emit(self.DETECTIONS, self._detector.detect(rgb))
