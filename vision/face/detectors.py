"""Face detector nodes and the detector-backend registry.

A *backend* turns an RGB image into a list of :class:`~.types.Detection` (normalised box,
score, keypoints 0 and 1 = the eyes, which the ROI rotation uses). Backends register
under a name::

    @register_detector("my_detector")
    class MyDetector:
        def __init__(self, min_score: float | None, max_detections: int | None) -> None: ...
        def detect(self, image: np.ndarray) -> list[Detection]: ...

and are then usable two ways, both with the same ports (IMAGE → DETECTIONS, side inputs
MIN_SCORE and NUM_FACES):

- ``FaceDetector`` picks the backend from the ``DETECTOR`` side packet (the graphs'
  ``detector`` side packet: ``--side detector=full_range``), falling back to its
  ``detector`` option;
- a dedicated calculator per backend (``BlazeFaceDetector`` here; make one for a new
  backend by subclassing :class:`DetectorCalculator` and setting ``backend``), so
  swapping the detector in a YAML file is a one-line ``calculator:`` edit.

Built in: ``short_range`` and ``full_range`` (BlazeFace, docs/face_pipeline.md §3). Backends living
in other modules of this package are imported on first use by name (``_LAZY_BACKENDS``), so a
detector with heavy dependencies costs nothing until a graph asks for it."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol

import numpy as np
from facegraph.vision.face.detection import (
    FACE_LANDMARKER,
    FULL_RANGE,
    SHORT_RANGE,
    DetectorConfig,
    postprocess_detections,
)
from facegraph.vision.face.image_to_tensor import image_to_tensor
from facegraph.vision.face.types import Detection

__all__ = [
    "BlazeFaceBackend",
    "DetectorBackend",
    "detector_names",
    "make_detector",
    "register_detector",
]


class DetectorBackend(Protocol):
    """What a registered detector provides: ``detect(rgb_uint8) -> list[Detection]``
    (best first, at most ``max_detections``, scores ≥ ``min_score``)."""

    def detect(self, image: np.ndarray) -> list[Detection]: ...


#: name → factory(min_score, max_detections) -> backend
BackendFactory = Callable[[float | None, int | None], DetectorBackend]
_BACKENDS: dict[str, BackendFactory] = {}
#: Backends defined in modules imported only when their name is asked for.
_LAZY_BACKENDS: dict[str, str] = {"yunet": "facegraph.calculators.face.yunet"}


def register_detector(name: str) -> Callable[[BackendFactory], BackendFactory]:
    """Class/function decorator: make a detector backend available under ``name``."""

    def deco(factory: BackendFactory) -> BackendFactory:
        if name in _BACKENDS and _BACKENDS[name] is not factory:
            raise ValueError(f"a face detector named {name!r} is already registered")
        _BACKENDS[name] = factory
        return factory

    return deco


def detector_names() -> list[str]:
    """Names usable as the ``detector`` side packet (registered or importable on demand)."""
    return sorted(set(_BACKENDS) | set(_LAZY_BACKENDS))


def make_detector(
    name: str, min_score: float | None = None, max_detections: int | None = None
) -> DetectorBackend:
    """Instantiate the backend registered as ``name`` (importing its module if needed)."""
    if name not in _BACKENDS and name in _LAZY_BACKENDS:
        try:
            importlib.import_module(_LAZY_BACKENDS[name])
        except ImportError as exc:
            raise ValueError(f"face detector {name!r} is not available: {exc}") from None
    if name not in _BACKENDS:
        raise ValueError(f"unknown face detector {name!r}; known: {', '.join(detector_names())}")
    return _BACKENDS[name](min_score, max_detections)


class BlazeFaceBackend:
    """BlazeFace through LiteRT (docs/face_pipeline.md §3): letterboxed crop to 128/192 in [-1, 1],
    model, anchors + decoding + weighted NMS + letterbox removal. Bit-compatible with MediaPipe."""

    def __init__(
        self,
        config: DetectorConfig,
        min_score: float | None = None,
        max_detections: int | None = None,
        threads: int = 1,
        model: str | None = None,
    ) -> None:
        from facegraph.models import model_path
        from facegraph.models.inference import TfLiteModel

        self.config = config
        self.min_score = min_score
        self.max_detections = max_detections
        # ``model``: another file with the same tensors (e.g. from a user's .task bundle).
        name = model or config.model_file[: -len(".tflite")]
        self._model = TfLiteModel(model_path(name), threads=threads)
        config.anchor_array()  # build the anchors now, not on the first frame

    def detect(self, image: np.ndarray) -> list[Detection]:
        size = self.config.input_size
        crop = image_to_tensor(image, None, size, size, (-1.0, 1.0), "zero", keep_aspect=True)
        outs = list(self._model.run(crop.tensor).values())
        return postprocess_detections(
            outs[0], outs[1], self.config, crop.matrix, self.min_score, self.max_detections
        )


@register_detector("short_range")
def _short_range(min_score: float | None, max_detections: int | None) -> DetectorBackend:
    return BlazeFaceBackend(SHORT_RANGE, min_score, max_detections)


@register_detector("full_range")
def _full_range(min_score: float | None, max_detections: int | None) -> DetectorBackend:
    return BlazeFaceBackend(FULL_RANGE, min_score, max_detections)


@register_detector("face_landmarker")
def _face_landmarker(min_score: float | None, max_detections: int | None) -> DetectorBackend:
    # The Tasks FaceLandmarker's detector (the bundle's face_detector.tflite).
    return BlazeFaceBackend(FACE_LANDMARKER, min_score, max_detections)
