"""YuNet face detector (OpenCV's ``FaceDetectorYN``) producing BlazeFace-shaped detections.

A second, non-BlazeFace detector: it emits the same :class:`~.types.Detection` values as
the BlazeFace post-processing (normalised box, score, the 6 keypoints in
:data:`~.types.KEYPOINT_NAMES` order), so ``DetectionsToRois`` and the face mesh run from
its detections unchanged, and a graph swaps detectors by changing one node.

Two layers:

- :class:`YuNetDetector`, a plain class (``detect(rgb) -> list[Detection]``) for code
  such as a detector-dispatching node;
- the ``YuNetFaceDetector`` graph node (IMAGE → DETECTIONS) over it.

The model is the manifest's ``face_detection_yunet`` (OpenCV Zoo's
``face_detection_yunet_2023mar.onnx``, MIT, fetched and sha256-verified like the MediaPipe
models), or the path of another YuNet ``.onnx`` file.

Keypoints. YuNet gives 5 points per face: the subject's right eye, left eye, nose tip,
right and left mouth corners ("right" = the subject's right, image left for an upright
unmirrored face, as in BlazeFace). They map to BlazeFace's keypoints as:

- ``right_eye``, ``left_eye``, ``nose_tip``: YuNet's points as they are;
- ``mouth_center``: the midpoint of YuNet's two mouth corners;
- ``right_ear_tragion``, ``left_ear_tragion``: *estimated* (YuNet has no ear points).
  With ``m`` the eye midpoint, ``e`` the vector right eye → left eye and ``n`` the same
  vector turned 90° towards the mouth, ``tragion = m ∓ TRAGION_ALONG·e + TRAGION_DOWN·n``
  (right ear: minus, left ear: plus). The coefficients, 1.0 and 0.2 eye distances, are
  BlazeFace's own tragion positions in that eye frame, fitted on the MediaPipe reference
  photos (mean 1.04 ± 0.15 and 0.19 ± 0.08 over 10 tragions). Because the estimate is in
  the eye frame it follows in-plane rotation; it does not follow head yaw. Nothing in the
  face-mesh pipeline reads the tragions (the ROI uses the box and the eyes); they are
  there so that drawing and user code find all 6 named points.

Boxes. YuNet's box spans forehead to chin, taller than BlazeFace's square brow-to-mouth
box, so ``DetectionsToRois`` (whose 1.5 scale is tuned for BlazeFace) would crop ~20%
more around the face than MediaPipe does. By default (``box="blazeface"``) the box is
therefore converted to a BlazeFace-equivalent one: a square (in pixels) of side
``BLAZEFACE_BOX_SCALE·√(w·h)`` centred ``BLAZEFACE_BOX_SHIFT·h`` below YuNet's centre.
Both constants were fitted to BlazeFace's boxes: 0.957 ± 0.027 and 0.074 ± 0.017 on
the 6 faces of the MediaPipe reference photos, 0.958 ± 0.036 and 0.093 ± 0.021 on 153
frames of the two sample videos. On those frames it halves the difference between the
face mesh run from YuNet's ROI and from BlazeFace's (mean 2.7% → 1.2% of the
inter-ocular distance). ``box="yunet"`` keeps YuNet's own box. Boxes are not clipped to
the image.

Scores are YuNet's (√(class·objectness)); a real face typically scores 0.90–0.96 and
background below 0.15, so YuNet's score scale is not BlazeFace's.

Not thread-safe: use one instance per thread (a graph node owns its own).
"""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np
from facegraph.vision.face.image_to_tensor import as_rgb
from facegraph.vision.face.types import Detection

__all__ = [
    "BLAZEFACE_BOX_SCALE",
    "BLAZEFACE_BOX_SHIFT",
    "DEFAULT_MAX_INPUT_SIZE",
    "DEFAULT_NMS_THRESHOLD",
    "DEFAULT_SCORE_THRESHOLD",
    "DEFAULT_TOP_K",
    "TRAGION_ALONG",
    "TRAGION_DOWN",
    "YUNET_MODEL",
    "YuNetDetector",
    "yunet_backend",
    "yunet_to_detections",
]

YUNET_MODEL = "face_detection_yunet"
"""Manifest name of the default model (``facegraph models path face_detection_yunet``)."""

DEFAULT_SCORE_THRESHOLD = 0.5
"""Default minimum score. 0.5 = MediaPipe's ``min_detection_confidence`` default, so the
node behaves the same with or without that side packet connected. OpenCV Zoo's demo uses
0.9, tuned for drawing boxes; here a false detection is cheap, because the face mesh's
own presence score (``FaceFlagGate``) rejects non-faces, while a missed face is lost."""

DEFAULT_NMS_THRESHOLD = 0.3
"""IoU above which the lower-scoring of two boxes is suppressed (OpenCV Zoo's value)."""

DEFAULT_TOP_K = 5000
"""Candidates kept before NMS (OpenCV Zoo's value)."""

TRAGION_ALONG = 1.0
"""Ear tragion estimate: eye distances outwards along the eye line from the eye midpoint."""

TRAGION_DOWN = 0.2
"""Ear tragion estimate: eye distances perpendicular to the eye line, towards the mouth."""

BLAZEFACE_BOX_SCALE = 0.96
"""BlazeFace-equivalent box side, in units of √(YuNet box width × height)."""

BLAZEFACE_BOX_SHIFT = 0.08
"""BlazeFace-equivalent box centre: this many YuNet box heights below YuNet's centre."""

DEFAULT_MAX_INPUT_SIZE = 640
"""Images with a longer side are shrunk to it before detection. YuNet's cost grows with the
pixel count (a 1280x886 photo costs ~4x a 640x443 one) while its smallest detectable face
is ~10 px, so 640 keeps VGA frames untouched and faces of ~20 px and more in larger
images (all six ~100 px faces of the reference group photo ``t1``)."""

BoxStyle = Literal["blazeface", "yunet"]


def _check_thresholds(score_threshold: float, nms_threshold: float, top_k: int) -> None:
    if not 0.0 <= score_threshold <= 1.0:
        raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
    if not 0.0 < nms_threshold <= 1.0:
        raise ValueError(f"nms_threshold must be in (0, 1], got {nms_threshold}")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")


def yunet_to_detections(
    faces: np.ndarray | None,
    image_width: int,
    image_height: int,
    max_detections: int | None = None,
    box: BoxStyle = "blazeface",
) -> list[Detection]:
    """Convert ``FaceDetectorYN.detect`` rows to detections, best score first.

    ``faces`` is YuNet's (N, 15) float32 output in pixels: x, y, w, h, then 5 (x, y)
    landmarks (right eye, left eye, nose tip, right mouth corner, left mouth corner), then
    the score; ``None`` (OpenCV's "no face") gives an empty list. ``box`` chooses the
    BlazeFace-equivalent box or YuNet's own (module doc).
    """
    if box not in ("blazeface", "yunet"):
        raise ValueError(f"box must be 'blazeface' or 'yunet', got {box!r}")
    if faces is None or len(faces) == 0:
        return []
    rows = np.asarray(faces, dtype=np.float32).reshape(-1, 15)
    # Stable sort: equal scores keep YuNet's order, so the result is deterministic.
    rows = rows[np.argsort(-rows[:, 14], kind="stable")]
    if max_detections is not None:
        rows = rows[:max_detections]
    w, h = float(image_width), float(image_height)
    out: list[Detection] = []
    for r in rows.astype(np.float64):
        pts = r[4:14].reshape(5, 2)
        right_eye, left_eye, nose, mouth_r, mouth_l = pts
        mid = (right_eye + left_eye) / 2.0
        e = left_eye - right_eye
        n = np.array([-e[1], e[0]])  # e turned +90°: towards the mouth (y points down)
        keypoints = np.stack(
            [
                right_eye,
                left_eye,
                nose,
                (mouth_r + mouth_l) / 2.0,
                mid - TRAGION_ALONG * e + TRAGION_DOWN * n,
                mid + TRAGION_ALONG * e + TRAGION_DOWN * n,
            ]
        ) / np.array([w, h])
        x, y, bw, bh = r[0], r[1], r[2], r[3]
        if box == "blazeface":
            side = BLAZEFACE_BOX_SCALE * np.sqrt(max(bw, 0.0) * max(bh, 0.0))
            cx, cy = x + bw / 2.0, y + bh / 2.0 + BLAZEFACE_BOX_SHIFT * bh
            x, y, bw, bh = cx - side / 2.0, cy - side / 2.0, side, side
        out.append(
            Detection(
                xmin=float(np.float32(x / w)),
                ymin=float(np.float32(y / h)),
                width=float(np.float32(bw / w)),
                height=float(np.float32(bh / h)),
                score=float(np.float32(r[14])),
                keypoints=keypoints,
            )
        )
    return out


class YuNetDetector:
    """YuNet on RGB images: ``YuNetDetector().detect(rgb) -> list[Detection]``.

    ``model`` is a manifest name (default ``face_detection_yunet``, fetched and verified
    on first use) or the path of a YuNet ``.onnx`` file. ``score_threshold``,
    ``nms_threshold`` and ``top_k`` are YuNet's own (see the module constants);
    ``max_detections`` keeps the N best after NMS (``None``: all); ``box`` is
    ``"blazeface"`` (BlazeFace-equivalent box, default) or ``"yunet"``; images whose
    long side exceeds ``max_input_size`` are shrunk to it first (``None``: never). Raises
    ``ValueError``
    for bad options and :class:`~facegraph.models.ModelError` for a missing or
    unloadable model, at construction rather than on the first frame.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = YUNET_MODEL,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        nms_threshold: float = DEFAULT_NMS_THRESHOLD,
        top_k: int = DEFAULT_TOP_K,
        max_detections: int | None = None,
        box: BoxStyle = "blazeface",
        max_input_size: int | None = DEFAULT_MAX_INPUT_SIZE,
    ) -> None:
        _check_thresholds(score_threshold, nms_threshold, top_k)
        if max_detections is not None and max_detections < 0:
            raise ValueError(f"max_detections must be >= 0 or None, got {max_detections}")
        if box not in ("blazeface", "yunet"):
            raise ValueError(f"box must be 'blazeface' or 'yunet', got {box!r}")
        if max_input_size is not None and max_input_size < 32:
            raise ValueError(f"max_input_size must be >= 32 or None, got {max_input_size}")
        self.box: BoxStyle = box
        self.max_input_size = max_input_size
        from facegraph.models import ModelError, model_path

        self.path = model_path(model)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.top_k = int(top_k)
        self.max_detections = max_detections
        import cv2

        self._cv2: Any = cv2
        try:
            self._net: Any = _quietly(
                lambda: cv2.FaceDetectorYN.create(
                    str(self.path),
                    "",
                    (320, 320),  # replaced by each image's size in detect()
                    self.score_threshold,
                    self.nms_threshold,
                    self.top_k,
                )
            )
        except cv2.error as exc:
            first = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
            raise ModelError(
                f"OpenCV cannot load {self.path} as a YuNet face detector: {first}"
            ) from None
        self._size: tuple[int, int] | None = None

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 image (gray and RGBA are converted), best score first."""
        rgb = as_rgb(image, "YuNetDetector: image")
        h, w = rgb.shape[:2]
        limit = self.max_input_size
        if limit is not None and max(w, h) > limit:
            # Shrink (same factor both ways) to bound the cost, which grows with the pixel
            # count. Detections are normalised by the size YuNet saw, which is exact for a
            # pure scale: nothing to map back.
            scale = limit / max(w, h)
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            rgb = self._cv2.resize(rgb, size, interpolation=self._cv2.INTER_AREA)
            h, w = rgb.shape[:2]
        if self._size != (w, h):
            # YuNet runs at the size it is given (padded to a multiple of 32 inside).
            self._net.setInputSize((w, h))
            self._size = (w, h)
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])  # YuNet was trained on BGR
        _, faces = self._net.detect(bgr)
        return yunet_to_detections(faces, w, h, self.max_detections, self.box)

    @property
    def input_size(self) -> tuple[int, int] | None:
        """(width, height) YuNet last ran at (after any shrinking); None before any image."""
        return self._size

    def __repr__(self) -> str:
        return (
            f"YuNetDetector(model={str(self.path)!r}, score_threshold={self.score_threshold}, "
            f"nms_threshold={self.nms_threshold}, top_k={self.top_k}, "
            f"max_detections={self.max_detections}, box={self.box!r}, "
            f"max_input_size={self.max_input_size})"
        )


def yunet_backend(min_score: float | None, max_detections: int | None) -> YuNetDetector:
    """Factory with the detector-backend signature (:mod:`.detectors`; declared as the
    ``yunet`` entry point of ``facegraph.detectors``): YuNet with the default model;
    ``min_score`` None means :data:`DEFAULT_SCORE_THRESHOLD`."""
    score = DEFAULT_SCORE_THRESHOLD if min_score is None else min_score
    return YuNetDetector(score_threshold=score, max_detections=max_detections)


def _quietly(make: Any) -> Any:
    """Call ``make()`` with OpenCV's log level at ERROR: OpenCV 5's DNN engine logs a
    harmless 'Targets are not supported by the new graph engine' warning on every load."""
    import cv2

    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        return make()
    before = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    try:
        return make()
    finally:
        logging.setLogLevel(before)
