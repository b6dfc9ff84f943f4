"""Face detector nodes: any registered detector backend as a graph node."""

from __future__ import annotations

from typing import ClassVar, TypeVar

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
from facegraph.calculators.inference import ThreadsOption
from facegraph.vision.face.detectors import DetectorBackend, make_detector
from facegraph.vision.face.image_to_tensor import as_rgb
from facegraph.vision.face.types import Detection
from pydantic import Field


class DetectorOptions(StrictOptions):
    """Options of every detector node."""

    min_score: float | None = Field(
        None, ge=0.0, le=1.0, description="default: the detector's own (BlazeFace 0.5/0.6)"
    )
    max_detections: int | None = Field(None, ge=0, description="keep the N best")
    threads: ThreadsOption = Field(
        "auto",
        description="LiteRT threads of the detector's model: a count or 'auto' (see "
        "facegraph.models.thread_choice); a count is an error for a backend without LiteRT",
    )


DetectorOptionsT = TypeVar("DetectorOptionsT", bound=DetectorOptions)


class DetectorCalculator(Calculator[DetectorOptionsT]):
    """Base of the detector nodes: IMAGE → DETECTIONS through one backend.

    Emits a (possibly empty) list for every image. MIN_SCORE (``min_detection_confidence``)
    and NUM_FACES (``num_faces``) side packets override the options. Subclasses set
    ``backend`` (a registered name) or override :meth:`backend_name`.
    """

    backend: ClassVar[str] = ""
    Options = DetectorOptions

    IMAGE: Input[np.ndarray] = Input("IMAGE", np.ndarray, doc="HxWx3 uint8 RGB image")
    DETECTIONS: Output[list[Detection]] = Output(
        "DETECTIONS", list[Detection], doc="list[Detection], best first"
    )
    MIN_SCORE: SideInput[float] = SideInput(
        "MIN_SCORE", float, optional=True, doc="overrides min_score"
    )
    NUM_FACES: SideInput[int] = SideInput(
        "NUM_FACES", int, optional=True, doc="overrides max_detections"
    )

    def backend_name(self, ctx: CalculatorContext) -> str:
        return self.backend

    def open(self, ctx: CalculatorContext) -> None:
        score = ctx.side(self.MIN_SCORE, default=self.options.min_score)
        faces = ctx.side(self.NUM_FACES, default=self.options.max_detections)
        min_score = None if score is None else float(score)
        max_det = None if faces is None else int(faces)
        if min_score is not None and not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_detection_confidence must be in [0, 1], got {min_score}")
        if max_det is not None and max_det < 0:
            raise ValueError(f"num_faces must be >= 0, got {max_det}")
        self.name = self.backend_name(ctx)
        self._detector = self.make_backend(ctx, min_score, max_det)

    def make_backend(
        self, ctx: CalculatorContext, min_score: float | None, max_detections: int | None
    ) -> DetectorBackend:
        """Hook for subclasses: build the backend (default: the registered one by name)."""
        return make_detector(self.name, min_score, max_detections, threads=self.options.threads)

    def process(self, ctx: CalculatorContext) -> None:
        image = ctx.get(self.IMAGE)
        if image is None:
            return
        rgb = as_rgb(image, f"{ctx.node_name}: IMAGE at {ctx.timestamp}")
        ctx.emit(self.DETECTIONS, self.select(self._detector.detect(rgb), rgb))

    def select(self, detections: list[Detection], image: np.ndarray) -> list[Detection]:
        """Hook for subclasses: filter or reorder the backend's detections (best first).

        The face graphs track the first ``num_faces`` detections, so the order decides
        which faces are tracked; the default keeps the backend's score order.
        """
        return detections


@register("FaceDetector")
class FaceDetector(DetectorCalculator["FaceDetector.Options"]):
    """Face detector chosen by name: the DETECTOR side packet (else the ``detector``
    option) picks a registered backend: ``short_range`` (BlazeFace 128, MediaPipe's face
    mesh detector), ``full_range`` (BlazeFace 192 sparse, small/distant faces), or any
    backend added with :func:`register_detector`."""

    class Options(DetectorOptions):
        detector: str = Field("short_range", min_length=1, description="backend name")

    DETECTOR: SideInput[str] = SideInput(
        "DETECTOR", str, optional=True, doc="backend name; overrides the detector option"
    )

    def backend_name(self, ctx: CalculatorContext) -> str:
        return str(ctx.side(self.DETECTOR, default=self.options.detector))


@register("BlazeFaceDetector")
class BlazeFaceDetector(DetectorCalculator["BlazeFaceDetector.Options"]):
    """BlazeFace face detector (docs/face_pipeline.md §3) as its own node; ``model``:
    short_range (128×128,
    896 anchors) or full_range (192×192, 2304 anchors)."""

    class Options(DetectorOptions):
        model: str = Field("short_range", pattern="^(short_range|full_range)$")

    def backend_name(self, ctx: CalculatorContext) -> str:
        return str(self.options.model)
