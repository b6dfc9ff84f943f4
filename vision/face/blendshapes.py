"""Face blendshapes: 52 expression scores from 146 of the 478 face landmarks.

MediaPipe Tasks' ``FaceBlendshapesGraph`` (``face_blendshapes_graph.cc``): take the 146
landmarks :data:`BLENDSHAPE_LANDMARKS` in that order, as (x·width, y·height) — pixels of
the image the landmarks were found on (``LandmarksToTensorCalculator`` with attributes X, Y
and no flattening) — run ``face_blendshapes.tflite`` on the [1, 146, 2] tensor, and read
its 52 outputs as they are (no activation, no top-k, no threshold), index 0 ``_neutral``
then :data:`BLENDSHAPE_NAMES`.

    from facegraph.vision.face.blendshapes import BlendshapesModel

    model = BlendshapesModel()                        # face_blendshapes from the model store
    shapes = model.predict(face, width, height)       # face: FaceLandmarks, 478 points
    shapes.to_dict()["jawOpen"], shapes.top(5)

It needs 478 landmarks (indices 468–477 are the irises): FaceMesh V2's, or the Attention
Mesh's of ``face_mesh`` (same indexing; ``refine_landmarks`` on). The model was trained
on V2 landmarks; on Attention Mesh landmarks it runs off its training distribution.
Measured on four reference photos (``tests/test_blendshapes.py``): fed MediaPipe
0.10.14's Attention Mesh landmarks, the 51 non-neutral scores land within 0.23 (max abs;
mean abs 0.027) of those from MediaPipe 1.2.3's V2 landmarks of the same faces; the
largest gaps are on brows and eye squints. Good for expressions that are clearly
there (a smile, an open jaw, a blink); not for fine distinctions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from facegraph.vision.face.types import FaceLandmarks

if TYPE_CHECKING:
    from facegraph.models.inference import TfLiteModel
    from facegraph.models.thread_choice import Threads

__all__ = [
    "BLENDSHAPE_LANDMARKS",
    "BLENDSHAPE_NAMES",
    "Blendshapes",
    "BlendshapesModel",
    "blendshape_input",
]

#: The 52 outputs of ``face_blendshapes.tflite``, in order (index 0 is ``_neutral``).
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral",
    "browDownLeft",
    "browDownRight",
    "browInnerUp",
    "browOuterUpLeft",
    "browOuterUpRight",
    "cheekPuff",
    "cheekSquintLeft",
    "cheekSquintRight",
    "eyeBlinkLeft",
    "eyeBlinkRight",
    "eyeLookDownLeft",
    "eyeLookDownRight",
    "eyeLookInLeft",
    "eyeLookInRight",
    "eyeLookOutLeft",
    "eyeLookOutRight",
    "eyeLookUpLeft",
    "eyeLookUpRight",
    "eyeSquintLeft",
    "eyeSquintRight",
    "eyeWideLeft",
    "eyeWideRight",
    "jawForward",
    "jawLeft",
    "jawOpen",
    "jawRight",
    "mouthClose",
    "mouthDimpleLeft",
    "mouthDimpleRight",
    "mouthFrownLeft",
    "mouthFrownRight",
    "mouthFunnel",
    "mouthLeft",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthPressLeft",
    "mouthPressRight",
    "mouthPucker",
    "mouthRight",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthShrugLower",
    "mouthShrugUpper",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "noseSneerLeft",
    "noseSneerRight",
)

#: The model's 146 input landmarks, in its input order (the last ten are the irises).
BLENDSHAPE_LANDMARKS: tuple[int, ...] = (
    *(0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58),
    *(61, 63, 65, 66, 67, 70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109),
    *(127, 132, 133, 136, 144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159),
    *(160, 161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249),
    *(251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300),
    *(308, 310, 311, 312, 314, 317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362),
    *(365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385, 386, 387, 388, 389, 390),
    *(397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472, 473, 474, 475),
    *(476, 477),
)

_SUBSET = np.asarray(BLENDSHAPE_LANDMARKS, np.intp)
_NEEDED = max(BLENDSHAPE_LANDMARKS) + 1  # 478
MODEL = "face_blendshapes"
"""Manifest name of the blendshapes model."""


def _readonly_scores(scores: object) -> np.ndarray:
    arr = np.array(scores, dtype=np.float32, copy=True).reshape(-1)
    if arr.shape != (len(BLENDSHAPE_NAMES),):
        raise ValueError(
            f"blendshape scores must have shape ({len(BLENDSHAPE_NAMES)},), got {arr.shape}"
        )
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, slots=True)
class Blendshapes:
    """The 52 blendshape scores of one face, MediaPipe's order (index 0 ``_neutral``)."""

    scores: np.ndarray
    """float32 (52,), read-only."""
    names: tuple[str, ...] = field(default=BLENDSHAPE_NAMES)
    """The name of each score (:data:`BLENDSHAPE_NAMES`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", _readonly_scores(self.scores))
        if len(self.names) != len(self.scores):
            raise ValueError(f"{len(self.names)} names for {len(self.scores)} scores")

    def to_dict(self) -> dict[str, float]:
        """name → score, for every one of the 52 (``_neutral`` included), in order."""
        return dict(zip(self.names, self.scores.tolist(), strict=True))

    def top(self, k: int = 5, *, neutral: bool = False) -> list[tuple[str, float]]:
        """The ``k`` highest (name, score) pairs, highest first; ``_neutral`` only with
        ``neutral=True`` (MediaPipe documents it as one to ignore). Ties keep model order."""
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        order = np.argsort(-self.scores, kind="stable")
        picked = [int(i) for i in order if neutral or self.names[int(i)] != "_neutral"]
        return [(self.names[i], float(self.scores[i])) for i in picked[:k]]


def blendshape_input(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """The model's [1, 146, 2] float32 input from (N ≥ 478, ≥ 2) normalised landmarks of
    an image ``width`` × ``height``: the subset, as x·width, y·height (float32 products,
    as MediaPipe computes them)."""
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] < 2 or pts.shape[0] < _NEEDED:
        raise ValueError(
            f"blendshapes need {_NEEDED} landmarks (the 468-point mesh plus the 10 iris "
            f"points: FaceMesh V2, or face_mesh with refine_landmarks), got shape {pts.shape}"
        )
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    xy = pts[_SUBSET, :2].astype(np.float32)
    xy *= np.array([width, height], np.float32)
    return xy.reshape(1, len(BLENDSHAPE_LANDMARKS), 2)


class BlendshapesModel:
    """``face_blendshapes.tflite`` in LiteRT: landmarks in, :class:`Blendshapes` out.

    ``model`` is a manifest name or a ``.tflite`` path (e.g. the member of a user's
    ``.task`` bundle); its tensors must be [1, 146, 2] in and 52 scores out. Not
    thread-safe: use one per thread.
    """

    def __init__(self, model: str | os.PathLike[str] = MODEL, *, threads: Threads = "auto") -> None:
        from facegraph.models import model_path
        from facegraph.models.inference import TfLiteModel, TfLiteModelError

        self.path = model_path(model)
        self._model: TfLiteModel = TfLiteModel(self.path, threads=threads)
        ins, outs = self._model.input_details, self._model.output_details
        shape_in = [tuple(d.shape) for d in ins]
        sizes_out = [int(np.prod(d.shape)) for d in outs]
        if shape_in != [(1, len(BLENDSHAPE_LANDMARKS), 2)] or not sizes_out:
            raise TfLiteModelError(
                f"{self.path}: a blendshapes model needs one input of shape [1, 146, 2], "
                f"this one has {', '.join(str(list(s)) for s in shape_in) or 'none'}"
            )
        if sizes_out[0] != len(BLENDSHAPE_NAMES):
            raise TfLiteModelError(
                f"{self.path}: a blendshapes model's first output must hold "
                f"{len(BLENDSHAPE_NAMES)} scores, this one holds {sizes_out[0]}"
            )
        self._output = outs[0].name

    def predict(self, face: FaceLandmarks | np.ndarray, width: int, height: int) -> Blendshapes:
        """Blendshapes of one face whose normalised landmarks were found on a ``width`` ×
        ``height`` image (a :class:`FaceLandmarks` or an (N ≥ 478, ≥ 2) array)."""
        points = face.points if isinstance(face, FaceLandmarks) else face
        out: Any = self._model.run(blendshape_input(points, width, height))[self._output]
        return Blendshapes(np.asarray(out, np.float32).reshape(-1))
