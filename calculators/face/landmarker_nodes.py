"""Nodes of the Tasks ``FaceLandmarker`` pipeline (``graphs/face_landmarker*.yaml``).

``FaceLandmarksV2Model`` runs the bundle's ``face_landmarks_detector.tflite`` ("FaceMesh
V2": one 256×256 crop → 478 landmarks, the face flag and one more scalar);
``FaceLandmarkerSmoothing`` is the VIDEO-mode landmark smoothing of
``face_landmarker_graph.cc`` (MediaPipe's One Euro ``LandmarksSmoothingCalculator``, on
the first face when ``num_faces == 1``), with smoothing of every face on stable track ids
as an option. The detector, crop, decoding, face-flag gate, projection and ROI nodes are
the legacy pipeline's: the Tasks graph uses the same rules (see the graph files).
"""

from __future__ import annotations

from typing import Any, Literal

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
from facegraph.calculators.face.detectors import DetectorCalculator, DetectorOptions
from facegraph.calculators.face.landmark_nodes import LandmarkModelNode, _load_model
from facegraph.calculators.face.per_face import check_model_reference
from facegraph.calculators.inference import ThreadsOption, UInt8InputOption
from facegraph.vision.face.detection import FACE_LANDMARKER
from facegraph.vision.face.detectors import BlazeFaceBackend, DetectorBackend
from facegraph.vision.face.filters import landmark_box, match_tracks
from facegraph.vision.face.landmark_smoothing import MediaPipeLandmarksFilter
from facegraph.vision.face.types import FaceLandmarks, NormalizedRect
from pydantic import Field, field_validator

__all__ = ["FaceLandmarkerDetector", "FaceLandmarkerSmoothing", "FaceLandmarksV2Model"]

V2_MODEL = "face_landmarks_v2"


@register("FaceLandmarksV2Model")
class FaceLandmarksV2Model(LandmarkModelNode["FaceLandmarksV2Model.Options"]):
    """Runs the FaceMesh V2 landmark model on a 256×256 crop (float [0, 1], or uint8
    pixels with ``uint8_input: [0.0, 1.0]``).

    Outputs, in model order: landmarks (1434 = 478×3), face-flag logit, and an unused
    scalar. ``model`` (option) or the MODEL side packet (a path, e.g. a member extracted
    from a user's ``.task`` bundle; wins when set) name another compatible model.
    """

    class Options(StrictOptions):
        model: str = Field(V2_MODEL, min_length=1)
        """Manifest name or .tflite path."""
        threads: ThreadsOption = "auto"
        """LiteRT/XNNPACK threads: a count, or "auto" (1 or 2, whichever is faster now)."""
        uint8_input: UInt8InputOption = None
        """[min, max]: TENSOR is uint8 pixels mapped onto this range inside the model
        (as FaceLandmarkModel's option)."""

        _model_exists = field_validator("model")(check_model_reference)

    MODEL: SideInput[Any] = SideInput(
        "MODEL", optional=True, doc="model path; overrides the model option when set"
    )

    def open(self, ctx: CalculatorContext) -> None:
        side = ctx.side(self.MODEL)
        name = str(side) if side else self.options.model
        self._model = _load_model(
            name,
            self.options.threads,
            (1, 256, 256, 3),
            f"'{V2_MODEL}'",
            ctx.node_name,
            uint8_input=self.options.uint8_input,
        )
        outputs = self._model.output_details
        if len(outputs) < 2 or int(np.prod(outputs[0].shape)) % 3:
            got = ", ".join(f"{d.name} {tuple(d.shape)}" for d in outputs)
            raise ValueError(
                f"node '{ctx.node_name}': model {name} has output(s) {got}; the face "
                "landmarker needs landmarks (N×3 values) then the face flag"
            )


@register("FaceLandmarkerDetector")
class FaceLandmarkerDetector(DetectorCalculator[DetectorOptions]):
    """The Tasks FaceLandmarker's face detector: the bundle's ``face_detector.tflite``
    (BlazeFace short-range anchors and decoding, weighted NMS at IoU 0.5). The MODEL side
    packet (a path) replaces the model file, e.g. by a user bundle's member."""

    backend = "face_landmarker"

    MODEL: SideInput[Any] = SideInput(
        "MODEL", optional=True, doc="detector model path; overrides the bundle's"
    )

    def make_backend(
        self, ctx: CalculatorContext, min_score: float | None, max_detections: int | None
    ) -> DetectorBackend:
        side = ctx.side(self.MODEL)
        return BlazeFaceBackend(
            FACE_LANDMARKER,
            min_score,
            max_detections,
            self.options.threads,
            model=str(side) if side else None,
        )


_Smoothing = Literal["auto", "off", "all"]


class _Track:
    __slots__ = ("box", "filter", "track_id")

    def __init__(self, track_id: int, box: tuple[float, float, float, float]) -> None:
        self.track_id = track_id
        self.box = box
        self.filter = MediaPipeLandmarksFilter()


@register("FaceLandmarkerSmoothing")
class FaceLandmarkerSmoothing(Calculator["FaceLandmarkerSmoothing.Options"]):
    """VIDEO-mode landmark smoothing of the Tasks FaceLandmarker.

    ``smoothing`` (option, or the SMOOTHING side packet):

    - ``auto`` (default): MediaPipe's rule — smooth the first face with its One Euro
      filter (min_cutoff 0.05, beta 80, derivate_cutoff 1) when NUM_FACES is 1, else pass
      the faces through; a frame without faces resets the filter;
    - ``all``: the same filter on every face, each on its own track (faces matched to the
      previous frame's by landmark-box IoU ≥ ``min_iou``); each output face's
      ``roi.rect_id`` is its track id, stable while the face is tracked;
    - ``off``: pass through.

    The tracking loop keeps the unsmoothed landmarks' ROIs (as in MediaPipe); only the
    reported landmarks (and what is computed from them) are smoothed.
    """

    class Options(StrictOptions):
        smoothing: _Smoothing = "auto"
        min_iou: float = Field(0.3, ge=0.0, le=1.0)
        """Box IoU needed to continue a track (``all`` mode)."""

    FACES_IN: Input[list[FaceLandmarks]] = Input(
        "FACES", list[FaceLandmarks], doc="list[FaceLandmarks]"
    )
    IMAGE: Input[np.ndarray] = Input("IMAGE", np.ndarray, doc="for the image size")
    FACES_OUT: Output[list[FaceLandmarks]] = Output(
        "FACES", list[FaceLandmarks], doc="smoothed faces"
    )
    SMOOTHING: SideInput[str] = SideInput(
        "SMOOTHING", str, optional=True, doc="auto | all | off; overrides the option"
    )
    NUM_FACES: SideInput[int] = SideInput("NUM_FACES", int, optional=True, doc="num_faces")

    def open(self, ctx: CalculatorContext) -> None:
        mode = str(ctx.side(self.SMOOTHING, default=self.options.smoothing))
        if mode not in ("auto", "off", "all"):
            raise ValueError(f"side packet SMOOTHING must be auto, all or off, got {mode!r}")
        num_faces = ctx.side(self.NUM_FACES) if ctx.count(self.NUM_FACES) else 1
        if mode == "auto":
            mode = "first" if num_faces == 1 else "off"
        self._mode = mode
        self._tracks: list[_Track] = []
        self._next_id = 0

    def process(self, ctx: CalculatorContext) -> None:
        faces, image = ctx.get(self.FACES_IN), ctx.get(self.IMAGE)
        if self._mode == "off":
            if faces is not None:
                ctx.emit(self.FACES_OUT, faces)
            return
        if not faces or image is None:
            self._tracks = []  # MediaPipe resets its filter on a frame without the face
            if faces is not None:
                ctx.emit(self.FACES_OUT, faces)
            return
        h, w = image.shape[:2]
        if self._mode == "first":
            if not self._tracks:
                self._tracks = [_Track(0, (0.0, 0.0, 0.0, 0.0))]
            first = faces[0]
            pts = self._tracks[0].filter.apply(first.points, ctx.timestamp, w, h)
            ctx.emit(self.FACES_OUT, [FaceLandmarks(pts, first.score, first.roi), *faces[1:]])
            return
        ctx.emit(self.FACES_OUT, self._smooth_all(faces, ctx.timestamp, w, h))

    def _smooth_all(
        self, faces: list[FaceLandmarks], timestamp: int, w: int, h: int
    ) -> list[FaceLandmarks]:
        boxes = [landmark_box(f.points) for f in faces]
        match = match_tracks(
            boxes,
            [None] * len(faces),
            [t.box for t in self._tracks],
            [t.track_id for t in self._tracks],
            self.options.min_iou,
        )
        out: list[FaceLandmarks] = []
        tracks: list[_Track] = []
        for i, face in enumerate(faces):
            if i in match:
                track = self._tracks[match[i]]
            else:
                track = _Track(self._next_id, boxes[i])
                self._next_id += 1
            track.box = boxes[i]
            tracks.append(track)
            pts = track.filter.apply(face.points, timestamp, w, h)
            roi = face.roi
            if roi is not None:
                roi = NormalizedRect(
                    roi.x_center, roi.y_center, roi.width, roi.height, roi.rotation,
                    track.track_id,
                )  # fmt: skip
            out.append(FaceLandmarks(pts, face.score, roi))
        self._tracks = tracks  # tracks without a face this frame are lost
        return out
