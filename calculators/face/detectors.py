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

Built in: ``short_range`` and ``full_range`` (BlazeFace, spec §3). Backends living in
other modules of this package are imported on first use by name (``_LAZY_BACKENDS``), so
a detector with heavy dependencies costs nothing until a graph asks for it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import numpy as np
from facegraph import Calculator, CalculatorContext, Input, Output, SideInput, register
from pydantic import Field

from ..core import StrictOptions
from .detection import FULL_RANGE, SHORT_RANGE, DetectorConfig, postprocess_detections
from .image_to_tensor import as_rgb, image_to_tensor
from .types import Detection

__all__ = [
    "BlazeFaceBackend",
    "BlazeFaceDetector",
    "DetectorBackend",
    "DetectorCalculator",
    "FaceDetector",
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
    """BlazeFace through LiteRT (spec §3): letterboxed crop to 128/192 in [-1, 1], model,
    anchors + decoding + weighted NMS + letterbox removal. Bit-compatible with MediaPipe."""

    def __init__(
        self,
        config: DetectorConfig,
        min_score: float | None = None,
        max_detections: int | None = None,
        threads: int = 1,
    ) -> None:
        from facegraph.models import model_path
        from facegraph.models.inference import TfLiteModel

        self.config = config
        self.min_score = min_score
        self.max_detections = max_detections
        self._model = TfLiteModel(model_path(config.model_file[: -len(".tflite")]), threads=threads)
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


def _optional_side(ctx: CalculatorContext, port: SideInput[Any]) -> Any:
    return ctx.side(port) if ctx.count(port) else None


class DetectorCalculator(Calculator):
    """Base of the detector nodes: IMAGE → DETECTIONS through one backend.

    Emits a (possibly empty) list for every image. MIN_SCORE (``min_detection_confidence``)
    and NUM_FACES (``num_faces``) side packets override the options. Subclasses set
    ``backend`` (a registered name) or override :meth:`backend_name`.
    """

    backend: ClassVar[str] = ""

    class Options(StrictOptions):
        min_score: float | None = Field(
            None, ge=0.0, le=1.0, description="default: the detector's own (BlazeFace 0.5/0.6)"
        )
        max_detections: int | None = Field(None, ge=0, description="keep the N best")

    IMAGE: Input[np.ndarray] = Input("IMAGE", np.ndarray, doc="HxWx3 uint8 RGB image")
    DETECTIONS: Output[list[Detection]] = Output(
        "DETECTIONS", list, doc="list[Detection], best first"
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
        side_score = _optional_side(ctx, self.MIN_SCORE)
        side_faces = _optional_side(ctx, self.NUM_FACES)
        min_score = float(side_score) if side_score is not None else self.options.min_score
        max_det = int(side_faces) if side_faces is not None else self.options.max_detections
        if min_score is not None and not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_detection_confidence must be in [0, 1], got {min_score}")
        if max_det is not None and max_det < 0:
            raise ValueError(f"num_faces must be >= 0, got {max_det}")
        self.name = self.backend_name(ctx)
        self._detector = make_detector(self.name, min_score, max_det)

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
class FaceDetector(DetectorCalculator):
    """Face detector chosen by name: the DETECTOR side packet (else the ``detector``
    option) picks a registered backend: ``short_range`` (BlazeFace 128, MediaPipe's face
    mesh detector), ``full_range`` (BlazeFace 192 sparse, small/distant faces), or any
    backend added with :func:`register_detector`."""

    class Options(DetectorCalculator.Options):
        detector: str = Field("short_range", min_length=1, description="backend name")

    DETECTOR: SideInput[str] = SideInput(
        "DETECTOR", str, optional=True, doc="backend name; overrides the detector option"
    )

    def backend_name(self, ctx: CalculatorContext) -> str:
        side = _optional_side(ctx, self.DETECTOR)
        return str(side) if side is not None else str(self.options.detector)


@register("BlazeFaceDetector")
class BlazeFaceDetector(DetectorCalculator):
    """BlazeFace face detector (spec §3) as its own node; ``model``: short_range (128×128,
    896 anchors) or full_range (192×192, 2304 anchors)."""

    class Options(DetectorCalculator.Options):
        model: str = Field("short_range", pattern="^(short_range|full_range)$")

    def backend_name(self, ctx: CalculatorContext) -> str:
        return str(self.options.model)
