"""MediaPipe's ``LandmarksSmoothingCalculator`` with its One Euro filter, to the bit.

The Tasks ``FaceLandmarker`` smooths landmarks in VIDEO and LIVE_STREAM mode when
``num_faces == 1`` (``face_landmarker_graph.cc`` sets ``smooth_landmarks``;
``face_landmarks_detector_graph.cc`` configures ``one_euro_filter {min_cutoff: 0.05,
beta: 80, derivate_cutoff: 1}``, the proto's defaults give ``frequency: 30`` and
``min_allowed_object_scale: 1e-6``). To match its output exactly this module follows the
C++ arithmetic (``landmarks_smoothing_calculator.cc``, ``one_euro_filter.cc``,
``low_pass_filter.cc``): the low-pass state is ``float``, alphas are computed in double and
stored as float, the speed in double; landmarks are filtered in pixels (x·W, y·H, z·W) with
the value scale ``1 / object_scale`` (mean of the landmarks' box width and height).
Timestamps are integer microseconds; a timestamp not after the previous one returns the
input unchanged, as the C++ does — except for the very first packet: mediapipe 1.2.3 starts
filtering at a first frame stamped 0 ms (``detect_for_video(image, 0)``), at the default
30 Hz, and first measures the frame rate on the third frame (the previous time is still 0 on
the second). Checked against its VIDEO-mode output on two clips (``tests/test_tasks_parity.py``):
treating timestamp 0 as "not after" the initial time moved frames 1–10 by up to 0.5 px.

:class:`MediaPipeLandmarksFilter` filters one face; the tracking of several faces is
:class:`~facegraph.vision.face.filters.MultiFaceSmoother`'s (with this filter per track).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["TASKS_BETA", "TASKS_DERIVATE_CUTOFF", "TASKS_MIN_CUTOFF", "MediaPipeLandmarksFilter"]

_F32 = np.float32
_F64 = np.float64

# The Tasks face graph's options are float proto fields: the C++ reads them as float and
# widens them to double, so 0.05 is float32(0.05) here too.
TASKS_MIN_CUTOFF = float(_F32(0.05))
TASKS_BETA = 80.0
TASKS_DERIVATE_CUTOFF = 1.0
_DEFAULT_FREQUENCY = 30.0
_MIN_OBJECT_SCALE = float(_F32(1e-6))


def _alpha(cutoff: np.ndarray | float, frequency: float) -> np.ndarray:
    """``OneEuroFilter::GetAlpha`` in double, then stored as float by ``SetAlpha``."""
    te = 1.0 / frequency
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff, _F64))
    return np.asarray(1.0 / (1.0 + tau / te)).astype(_F32)


class _LowPass:
    """``LowPassFilter`` over an array: float state, the blend summed in double."""

    __slots__ = ("raw", "stored")

    def __init__(self) -> None:
        self.raw: np.ndarray | None = None
        self.stored: np.ndarray | None = None

    def apply(self, value: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        v = np.asarray(value, _F32)
        if self.stored is None:
            result = v.copy()
        else:
            # alpha_ * value is float * float; (1.0 - alpha_) * stored_value_ is double.
            result = ((alpha * v).astype(_F64) + (1.0 - alpha.astype(_F64)) * self.stored).astype(
                _F32
            )
        self.raw = v
        self.stored = result
        return result


class MediaPipeLandmarksFilter:
    """One face's landmark smoothing as MediaPipe's ``OneEuroFilterImpl`` does it.

    ``apply(points, timestamp_us, width, height)``: ``points`` are normalised float32
    (N, 3) landmarks (x, y by image size, z by width); returns the smoothed normalised
    landmarks. :meth:`reset` forgets the state (MediaPipe resets on a frame without the
    face).
    """

    def __init__(
        self,
        min_cutoff: float = TASKS_MIN_CUTOFF,
        beta: float = TASKS_BETA,
        derivate_cutoff: float = TASKS_DERIVATE_CUTOFF,
    ) -> None:
        if min_cutoff <= 0 or derivate_cutoff <= 0:
            raise ValueError("min_cutoff and derivate_cutoff must be > 0")
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.derivate_cutoff = float(derivate_cutoff)
        self.reset()

    def reset(self) -> None:
        self._n: int | None = None
        self._frequency = _DEFAULT_FREQUENCY
        self._last_ns = 0
        self._x = _LowPass()
        self._dx = _LowPass()

    def apply(self, points: np.ndarray, timestamp_us: int, width: int, height: int) -> np.ndarray:
        norm = np.asarray(points, _F32)
        size = np.array([width, height, width], _F32)
        px = norm * size  # NormalizedLandmarksToLandmarks: float * int, as float
        if self._n is None:
            self._n = px.shape[0]
        elif self._n != px.shape[0]:
            raise ValueError(f"landmark count changed from {self._n} to {px.shape[0]}")
        lo, hi = px[:, :2].min(axis=0), px[:, :2].max(axis=0)
        span = hi - lo
        object_scale = (span[0] + span[1]) / _F32(2.0)
        if float(object_scale) < _MIN_OBJECT_SCALE:
            out = px
        else:
            value_scale = float(_F32(1.0) / object_scale)
            out = self._filter(px, int(timestamp_us) * 1000, value_scale)
        return out / size  # LandmarksToNormalizedLandmarks: float / int, as float

    def _filter(self, value: np.ndarray, timestamp_ns: int, value_scale: float) -> np.ndarray:
        if self._last_ns >= timestamp_ns and self._x.raw is not None:
            return value  # the C++ warns and returns the value unfiltered (see module doc)
        if self._last_ns != 0 and timestamp_ns != 0:
            self._frequency = 1.0 / ((timestamp_ns - self._last_ns) * 1e-9)
        self._last_ns = timestamp_ns
        if self._x.raw is None:
            dvalue = np.zeros(value.shape, _F64)
        else:
            dvalue = (value.astype(_F64) - self._x.raw.astype(_F64)) * value_scale * self._frequency
        edvalue = self._dx.apply(dvalue.astype(_F32), _alpha(self.derivate_cutoff, self._frequency))
        cutoff = self.min_cutoff + self.beta * np.abs(edvalue.astype(_F64))
        return self._x.apply(value, _alpha(cutoff, self._frequency))
