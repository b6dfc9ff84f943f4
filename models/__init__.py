"""MediaPipe model files: manifest, fetch, verification and cache (and LiteRT inference).

Typical use::

    from facegraph.models import model_path

    path = model_path("face_landmark_with_attention")  # fetched and verified on first use

A name from :data:`MODELS` gives the cached, sha256-verified file; any existing file
path (your own ``.tflite``) is passed through. The cache directory defaults to the
user cache dir and is overridden by ``$FACEGRAPH_CACHE_DIR`` or ``cache_dir=``.
"""

from __future__ import annotations

from facegraph.models.errors import ModelError
from facegraph.models.manifest import MODELS, SOURCE, ModelSpec
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
    "FetchReport",
    "ModelError",
    "ModelSpec",
    "ModelStatus",
    "fetch",
    "model_path",
    "resolve_cache_dir",
    "status",
    "verify",
]
