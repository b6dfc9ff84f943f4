"""Face detector backends and their registry.

A *backend* turns an RGB image into a list of :class:`~.types.Detection` (normalised box,
score, keypoints 0 and 1 = the eyes, which the ROI rotation uses). Backends register
under a name::

    @register_detector("my_detector")
    class MyDetector:
        def __init__(self, min_score: float | None, max_detections: int | None) -> None: ...
        def detect(self, image: np.ndarray) -> list[Detection]: ...

A backend that runs a LiteRT model may also take a keyword ``threads`` (a count ≥ 1 or
``"auto"``, as every LiteRT node's ``threads`` option); the detector nodes pass their
``threads`` option on to it. For a backend that takes none, ``auto`` (the default) sets
nothing and a count is an error.

Backends register in code, or, from another package, as an entry point of the
``facegraph.detectors`` group
(``name = "pkg.module:factory"``), which is imported on the first lookup, so a detector
with heavy dependencies costs nothing until a graph asks for a detector. The graph nodes
(:mod:`facegraph.calculators.face.detectors`) run any registered backend.

Built in: ``short_range`` and ``full_range`` (BlazeFace, docs/face_pipeline.md §3), and ``yunet``
(OpenCV's YuNet, :mod:`.yunet`, declared as an entry point like a third-party backend).
The table is a :class:`facegraph.Registry`: a different factory under a taken name is a
:class:`~facegraph.RegistryError`, as in every facegraph registry.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from facegraph import Registry, RegistryError
from facegraph.vision.face.detection import (
    FACE_LANDMARKER,
    FULL_RANGE,
    SHORT_RANGE,
    DetectorConfig,
    postprocess_detections,
)
from facegraph.vision.face.image_to_tensor import image_to_tensor
from facegraph.vision.face.types import Detection

if TYPE_CHECKING:
    from facegraph.models.thread_choice import Threads

__all__ = [
    "DETECTORS",
    "BlazeFaceBackend",
    "DetectorBackend",
    "detector_names",
    "make_detector",
    "register_detector",
]

#: Entry-point group of detector backends provided by other packages.
DETECTOR_ENTRY_POINTS = "facegraph.detectors"


class DetectorBackend(Protocol):
    """What a registered detector provides: ``detect(rgb_uint8) -> list[Detection]``
    (best first, at most ``max_detections``, scores ≥ ``min_score``)."""

    def detect(self, image: np.ndarray) -> list[Detection]: ...


#: name → factory(min_score, max_detections[, threads=...]) -> backend
BackendFactory = Callable[..., DetectorBackend]

DETECTORS: Registry[BackendFactory] = Registry(
    "face detector", entry_point_group=DETECTOR_ENTRY_POINTS, accept=callable
)


def register_detector(
    name: str, *, replace: bool = False
) -> Callable[[BackendFactory], BackendFactory]:
    """Class/function decorator: make a detector backend available under ``name``."""
    return DETECTORS.register(name, replace=replace)


def detector_names() -> list[str]:
    """Names usable as the ``detector`` side packet (registered or declared as entry points)."""
    return DETECTORS.names()


def make_detector(
    name: str,
    min_score: float | None = None,
    max_detections: int | None = None,
    *,
    threads: Threads | None = None,
) -> DetectorBackend:
    """Instantiate the backend registered as ``name`` (RegistryError naming the known ones).

    ``threads`` (LiteRT threads) is passed on to a backend whose factory takes a
    ``threads`` keyword. For one that takes none (it runs no LiteRT model, e.g.
    ``yunet``), None and ``"auto"`` set nothing and a count is a RegistryError."""
    factory = DETECTORS.lookup(name)
    if threads is not None and _takes_threads(factory):
        return factory(min_score, max_detections, threads=threads)
    if threads not in (None, "auto"):
        raise RegistryError(
            f"detector {name!r} takes no threads setting (it runs no LiteRT model); "
            "use threads: auto for it"
        )
    return factory(min_score, max_detections)


def _takes_threads(factory: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a builtin): assume not
        return False
    # A parameter named ``threads`` only: a ``**kwargs`` factory did not ask for it.
    return any(p.name == "threads" and p.kind is not p.POSITIONAL_ONLY for p in params)


class BlazeFaceBackend:
    """BlazeFace through LiteRT (docs/face_pipeline.md §3): letterboxed crop to 128/192,
    model (fed the crop's uint8 pixels, mapped onto [-1, 1] inside it: the same bits as
    MediaPipe's float tensor, one numpy pass fewer), anchors + decoding + weighted NMS +
    letterbox removal. Bit-compatible with MediaPipe."""

    #: The detector models' input range; the crop's pixels are mapped onto it in the model.
    VALUE_RANGE = (-1.0, 1.0)

    def __init__(
        self,
        config: DetectorConfig,
        min_score: float | None = None,
        max_detections: int | None = None,
        threads: Threads = "auto",
        model: str | None = None,
    ) -> None:
        from facegraph.models import model_path
        from facegraph.models.inference import TfLiteModel

        self.config = config
        self.min_score = min_score
        self.max_detections = max_detections
        # ``model``: another file with the same tensors (e.g. from a user's .task bundle).
        name = model or config.model_file[: -len(".tflite")]
        self._model = TfLiteModel(model_path(name), threads=threads, uint8_input=self.VALUE_RANGE)
        config.anchor_array()  # build the anchors now, not on the first frame

    def detect(self, image: np.ndarray) -> list[Detection]:
        size = self.config.input_size
        crop = image_to_tensor(image, None, size, size, None, "zero", keep_aspect=True)
        outs = list(self._model.run(crop.tensor).values())
        return postprocess_detections(
            outs[0], outs[1], self.config, crop.matrix, self.min_score, self.max_detections
        )


@register_detector("short_range")
def _short_range(
    min_score: float | None, max_detections: int | None, threads: Threads = "auto"
) -> DetectorBackend:
    return BlazeFaceBackend(SHORT_RANGE, min_score, max_detections, threads)


@register_detector("full_range")
def _full_range(
    min_score: float | None, max_detections: int | None, threads: Threads = "auto"
) -> DetectorBackend:
    return BlazeFaceBackend(FULL_RANGE, min_score, max_detections, threads)


@register_detector("face_landmarker")
def _face_landmarker(
    min_score: float | None, max_detections: int | None, threads: Threads = "auto"
) -> DetectorBackend:
    # The Tasks FaceLandmarker's detector (the bundle's face_detector.tflite).
    return BlazeFaceBackend(FACE_LANDMARKER, min_score, max_detections, threads)
