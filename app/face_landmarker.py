"""``facegraph.FaceLandmarker``: MediaPipe Tasks' ``FaceLandmarker`` API on facegraph.

Same option names, methods, result fields and errors as
``mediapipe.tasks.python.vision.FaceLandmarker`` (mediapipe 1.2.3), so a Tasks script
ports by changing its imports::

    from facegraph import BaseOptions, FaceLandmarker, FaceLandmarkerOptions, Image
    from facegraph import ImageFormat, RunningMode

    options = FaceLandmarkerOptions(running_mode=RunningMode.VIDEO, num_faces=1,
                                    output_face_blendshapes=True,
                                    output_facial_transformation_matrixes=True)
    with FaceLandmarker.create_from_options(options) as landmarker:
        result = landmarker.detect_for_video(Image(image_format=ImageFormat.SRGB, data=rgb), 0)
        result.face_landmarks[0][1].x            # landmark objects, normalised
        result.face_blendshapes[0][9].score      # Category: index, score, category_name
        result.facial_transformation_matrixes[0]  # 4x4 float32
        result.landmarks_array()                 # numpy (faces, 478, 3)

A thin wrapper over the ``face_landmarker_static`` (IMAGE) and ``face_landmarker`` (VIDEO,
LIVE_STREAM) graphs; plain ``HxWx3`` RGB ``uint8`` arrays are accepted wherever an
:class:`Image` is. ``BaseOptions()`` needs no path (the bundle is fetched and verified by
the model store); ``BaseOptions(model_asset_path="my.task")`` runs a user's bundle, whose
members must have the tensors the graphs expect (a mismatch is reported naming the member).

Beyond MediaPipe: ``smoothing`` ("auto" = MediaPipe's rule, "all" = every face on stable
track ids, "off"); the blendshape and geometry nodes do not run when their outputs are off.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import queue
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
from facegraph import Closeable
from facegraph.app.face_mesh import check_image
from facegraph.vision.face.types import FaceLandmarks

__all__ = [
    "BaseOptions",
    "Category",
    "FaceLandmarker",
    "FaceLandmarkerOptions",
    "FaceLandmarkerResult",
    "Image",
    "ImageFormat",
    "LandmarkList",
    "NormalizedLandmark",
    "RunningMode",
]

log = logging.getLogger("facegraph.face_landmarker")

#: Bundle member (its manifest model name) → the graph side packet that takes its path.
BUNDLE_SIDE_PACKETS = {
    "face_landmarker_detector": "detector_model",
    "face_landmarks_v2": "landmarks_model",
    "face_blendshapes": "blendshapes_model",
    "face_geometry_metadata": "geometry_metadata",
}


class RunningMode(enum.Enum):
    """MediaPipe's ``VisionTaskRunningMode``."""

    IMAGE = "IMAGE"
    VIDEO = "VIDEO"
    LIVE_STREAM = "LIVE_STREAM"


class ImageFormat(enum.IntEnum):
    """The subset of MediaPipe's ``ImageFormat`` a face landmarker takes (same values)."""

    SRGB = 1
    SRGBA = 2
    GRAY8 = 3


class Image:
    """A small stand-in for ``mediapipe.Image``: ``Image(image_format=..., data=array)``.

    ``data`` is ``HxWx3`` (SRGB), ``HxWx4`` (SRGBA) or ``HxW`` (GRAY8) ``uint8``.
    """

    def __init__(self, image_format: ImageFormat, data: np.ndarray) -> None:
        fmt = ImageFormat(image_format)
        arr = np.asarray(data)
        want = {ImageFormat.SRGB: 3, ImageFormat.SRGBA: 4, ImageFormat.GRAY8: 1}[fmt]
        channels = 1 if arr.ndim == 2 else (arr.shape[2] if arr.ndim == 3 else -1)
        if channels != want:
            raise ValueError(
                f"Image: {fmt.name} needs {want} channel(s), got an array of shape {arr.shape}"
            )
        self.image_format = fmt
        self._data = arr

    @classmethod
    def create_from_file(cls, file_name: str | Path) -> Image:
        """Read an image file (any format OpenCV reads) as SRGB."""
        import cv2

        bgr = cv2.imread(str(file_name), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"Image.create_from_file: cannot read an image from {file_name}")
        return cls(ImageFormat.SRGB, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    @property
    def width(self) -> int:
        return int(self._data.shape[1])

    @property
    def height(self) -> int:
        return int(self._data.shape[0])

    @property
    def channels(self) -> int:
        return 1 if self._data.ndim == 2 else int(self._data.shape[2])

    def numpy_view(self) -> np.ndarray:
        """The pixels (read-only view)."""
        view = self._data.view()
        view.flags.writeable = False
        return view


@dataclass(frozen=True)
class BaseOptions:
    """MediaPipe's ``BaseOptions``: ``model_asset_path`` (a ``.task`` bundle) or
    ``model_asset_buffer`` (its bytes); neither = the bundle from the model store."""

    model_asset_path: str | Path | None = None
    model_asset_buffer: bytes | None = None
    delegate: Any = None  # accepted for porting; facegraph runs on the CPU (LiteRT)


@dataclass
class FaceLandmarkerOptions:
    """MediaPipe's options, same names, defaults and meaning (``smoothing`` is ours)."""

    base_options: BaseOptions = field(default_factory=BaseOptions)
    running_mode: RunningMode = RunningMode.IMAGE
    num_faces: int = 1
    min_face_detection_confidence: float = 0.5
    min_face_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    output_face_blendshapes: bool = False
    output_facial_transformation_matrixes: bool = False
    result_callback: Callable[[FaceLandmarkerResult, Image, int], None] | None = None
    smoothing: Literal["auto", "all", "off"] = "auto"


@dataclass(frozen=True, slots=True)
class NormalizedLandmark:
    """One landmark: x, y normalised by the image size, z in image-width units."""

    x: float
    y: float
    z: float
    visibility: float | None = None
    presence: float | None = None


class LandmarkList(Sequence[NormalizedLandmark]):
    """One face's landmarks as MediaPipe's list of landmark objects, made on access (478
    Python objects per face per frame would cost more than the rest of the pipeline's
    Python code). Indexing, ``len``, iteration and slicing work like a list."""

    __slots__ = ("_points",)

    def __init__(self, points: np.ndarray) -> None:
        self._points = points

    def __len__(self) -> int:
        return int(self._points.shape[0])

    @overload
    def __getitem__(self, index: int) -> NormalizedLandmark: ...
    @overload
    def __getitem__(self, index: slice) -> list[NormalizedLandmark]: ...
    def __getitem__(self, index: int | slice) -> NormalizedLandmark | list[NormalizedLandmark]:
        if isinstance(index, slice):
            return [NormalizedLandmark(*map(float, p)) for p in self._points[index].tolist()]
        x, y, z = self._points[index].tolist()
        return NormalizedLandmark(x, y, z)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable-list semantics, like MediaPipe's

    def __repr__(self) -> str:
        return f"LandmarkList({len(self)} landmarks)"


@dataclass(frozen=True, slots=True)
class Category:
    """One blendshape score (MediaPipe's ``Category``)."""

    index: int
    score: float
    display_name: str
    category_name: str


@dataclass
class FaceLandmarkerResult:
    """MediaPipe's result fields, plus numpy accessors."""

    face_landmarks: list[LandmarkList]
    face_blendshapes: list[list[Category]]
    facial_transformation_matrixes: list[np.ndarray]
    faces: list[FaceLandmarks] = field(default_factory=list, repr=False)
    blendshapes: list[Any] = field(default_factory=list, repr=False)
    geometry: list[Any] = field(default_factory=list, repr=False)

    def landmarks_array(self) -> np.ndarray:
        """float32 (faces, 478, 3)."""
        if not self.faces:
            return np.zeros((0, 478, 3), np.float32)
        return np.stack([f.points for f in self.faces])

    def blendshapes_array(self) -> np.ndarray:
        """float32 (faces, 52) in MediaPipe's order (index 0 is ``_neutral``)."""
        if not self.blendshapes:
            return np.zeros((0, 52), np.float32)
        return np.stack([np.asarray(b.scores, np.float32) for b in self.blendshapes])

    def matrices_array(self) -> np.ndarray:
        """float32 (faces, 4, 4) facial transformation matrices."""
        if not self.facial_transformation_matrixes:
            return np.zeros((0, 4, 4), np.float32)
        return np.stack(self.facial_transformation_matrixes).astype(np.float32)


def _to_result(out: dict[str, Any]) -> FaceLandmarkerResult:
    faces: list[FaceLandmarks] = list(out.get("faces") or [])
    shapes: list[Any] = list(out.get("blendshapes") or [])
    geometry: list[Any] = list(out.get("geometry") or [])
    landmarks = [LandmarkList(f.points) for f in faces]
    categories = [
        [
            Category(i, float(s), "", name)
            for i, (s, name) in enumerate(zip(np.asarray(b.scores).tolist(), b.names, strict=True))
        ]
        for b in shapes
    ]
    geometry = [g for g in geometry if g is not None]  # too small to fit: MediaPipe drops it
    matrices = [np.asarray(g.matrix, np.float32) for g in geometry]
    return FaceLandmarkerResult(landmarks, categories, matrices, faces, shapes, geometry)


def _confidence(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _open_bundle(base: BaseOptions) -> dict[str, Path] | None:
    """Member paths of the user's bundle (None: the store's), checked by the model store
    (a corrupt zip, a missing member or misfitting tensors raise one line naming them)."""
    from facegraph.models import open_task_bundle

    if base.model_asset_buffer is not None:
        with tempfile.TemporaryDirectory(prefix="facegraph-task-") as tmp:
            path = Path(tmp) / "model_asset_buffer.task"
            path.write_bytes(base.model_asset_buffer)
            return dict(open_task_bundle(path).paths)
    if base.model_asset_path is not None:
        return dict(open_task_bundle(base.model_asset_path).paths)
    return None


class FaceLandmarker(Closeable):
    """Face landmarks, blendshapes and transformation matrices (see the module doc)."""

    def __init__(self, options: FaceLandmarkerOptions) -> None:
        from facegraph import Graph, load_graph

        o = options
        mode = RunningMode(o.running_mode)
        if isinstance(o.num_faces, bool) or not isinstance(o.num_faces, int) or o.num_faces < 1:
            raise ValueError(f"num_faces must be an int >= 1, got {o.num_faces!r}")
        if mode is RunningMode.LIVE_STREAM and o.result_callback is None:
            raise ValueError(
                "The face landmarker is in live stream mode, a user-defined result callback "
                "must be provided."
            )
        if mode is not RunningMode.LIVE_STREAM and o.result_callback is not None:
            raise ValueError(
                f"The face landmarker is in {mode.name.lower()} mode, a user-defined result "
                "callback should not be provided."
            )
        if o.smoothing not in ("auto", "all", "off"):
            raise ValueError(f"smoothing must be auto, all or off, got {o.smoothing!r}")
        self._options = o
        self._mode = mode
        self._side: dict[str, Any] = {
            "num_faces": o.num_faces,
            "min_face_detection_confidence": _confidence(
                "min_face_detection_confidence", o.min_face_detection_confidence
            ),
            "min_face_presence_confidence": _confidence(
                "min_face_presence_confidence", o.min_face_presence_confidence
            ),
        }
        self.graph_name = (
            "face_landmarker_static" if mode is RunningMode.IMAGE else "face_landmarker"
        )
        self._config = load_graph(self.graph_name)
        declared = set(self._config.side_inputs)
        if mode is not RunningMode.IMAGE:
            self._side["min_tracking_confidence"] = _confidence(
                "min_tracking_confidence", o.min_tracking_confidence
            )
            self._side["smoothing"] = o.smoothing
        for name, on in (
            ("blendshapes", o.output_face_blendshapes),
            ("head_pose", o.output_facial_transformation_matrixes),
        ):
            if on and name not in declared:
                raise ValueError(f"graph {self.graph_name} has no {name} output in this version")
            if name in declared:
                self._side[name] = bool(on)
        members = _open_bundle(o.base_options)
        for name, path in (members or {}).items():
            side = BUNDLE_SIDE_PACKETS.get(name)
            if side in declared:
                self._side[side] = str(path)
        self._graph_class = Graph
        self._lock = threading.Lock()
        self._closed = False
        self._closing = False
        self._last_ts: int | None = None
        self._graph: Any = None
        self._start_graph()
        self._worker: threading.Thread | None = None
        self._pending: queue.Queue[tuple[np.ndarray, Image, int] | None] = queue.Queue(maxsize=1)
        #: LIVE_STREAM: exceptions raised by result_callback and by frames that failed,
        #: oldest first; the landmarker keeps running after each. Also logged on the
        #: ``facegraph.face_landmarker`` logger.
        self.callback_errors: list[BaseException] = []
        if mode is RunningMode.LIVE_STREAM:
            self._worker = threading.Thread(
                target=self._live_loop, name="FaceLandmarker.detect_async", daemon=True
            )
            self._worker.start()

    # ------------------------------------------------------------------ constructors
    @classmethod
    def create_from_options(cls, options: FaceLandmarkerOptions) -> FaceLandmarker:
        return cls(options)

    @classmethod
    def create_from_model_path(cls, model_path: str | Path) -> FaceLandmarker:
        """IMAGE mode with a ``.task`` bundle, other options at their defaults."""
        return cls(FaceLandmarkerOptions(base_options=BaseOptions(model_asset_path=model_path)))

    # ------------------------------------------------------------------ running
    def _start_graph(self) -> None:
        # Deterministic: one frame at a time on the caller's (or the worker's) thread.
        self._graph = self._graph_class(self._config, mode="deterministic")
        self._graph.start(self._side)

    def _restart_graph(self) -> None:
        # A failed frame leaves the graph in its error state; a fresh one keeps the
        # instance usable (tracking restarts from the detector, as after a lost face).
        try:
            self._graph.close_all_inputs()
            self._graph.wait_until_done()
        except Exception:
            pass
        self._start_graph()

    def _rgb(self, image: Image | np.ndarray, caller: str) -> np.ndarray:
        data = image.numpy_view() if isinstance(image, Image) else image
        return check_image(data, f"FaceLandmarker.{caller}")

    def _check_mode(self, wanted: RunningMode, caller: str) -> None:
        if self._mode is not wanted:
            raise ValueError(
                f"FaceLandmarker.{caller}: the task is not initialized with the "
                f"{wanted.name.lower()} mode. Current running mode: {self._mode.name}"
            )

    def _check_timestamp(self, timestamp_ms: Any, caller: str) -> int:
        if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, (int, np.integer)):
            raise TypeError(
                f"FaceLandmarker.{caller}: timestamp_ms must be an int, got {timestamp_ms!r}"
            )
        ts = int(timestamp_ms)
        if self._last_ts is not None and ts <= self._last_ts:
            raise ValueError(
                f"FaceLandmarker.{caller}: input timestamp must be monotonically increasing: "
                f"got {ts} ms after {self._last_ts} ms"
            )
        return ts

    def _run(self, rgb: np.ndarray, timestamp_us: int | None) -> FaceLandmarkerResult:
        if self._closed:
            raise RuntimeError("FaceLandmarker used after close()")
        try:
            out = self._graph.run_once({"image": rgb}, timestamp_us)
        except Exception as exc:
            self._restart_graph()
            # One line: the node's error without the traceback the engine appends.
            message = " ".join(str(exc).split("--- original traceback ---")[0].split())
            raise RuntimeError(f"FaceLandmarker: this frame failed: {message}") from exc
        return _to_result(out)

    def detect(self, image: Image | np.ndarray) -> FaceLandmarkerResult:
        """Faces in one image (IMAGE mode)."""
        self._check_mode(RunningMode.IMAGE, "detect")
        rgb = self._rgb(image, "detect")
        with self._lock:
            return self._run(rgb, None)

    def detect_for_video(
        self, image: Image | np.ndarray, timestamp_ms: int
    ) -> FaceLandmarkerResult:
        """Faces in one video frame (VIDEO mode); timestamps must increase."""
        self._check_mode(RunningMode.VIDEO, "detect_for_video")
        rgb = self._rgb(image, "detect_for_video")
        with self._lock:
            ts = self._check_timestamp(timestamp_ms, "detect_for_video")
            result = self._run(rgb, ts * 1000)
            self._last_ts = ts
            return result

    def detect_async(self, image: Image | np.ndarray, timestamp_ms: int) -> None:
        """Queue a camera frame (LIVE_STREAM mode); ``result_callback(result, image,
        timestamp_ms)`` runs on a worker thread. While a frame is being processed, a newer
        frame replaces the one waiting (MediaPipe's flow limiting drops frames too)."""
        self._check_mode(RunningMode.LIVE_STREAM, "detect_async")
        rgb = self._rgb(image, "detect_async")
        with self._lock:
            if self._closing:
                raise RuntimeError("FaceLandmarker used after close()")
            ts = self._check_timestamp(timestamp_ms, "detect_async")
            self._last_ts = ts
            wrapper = image if isinstance(image, Image) else Image(ImageFormat.SRGB, rgb)
            item = (rgb, wrapper, ts)
            try:
                self._pending.put_nowait(item)
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._pending.get_nowait()  # drop the frame still waiting
                self._pending.put_nowait(item)

    def _live_loop(self) -> None:
        callback = self._options.result_callback
        assert callback is not None
        while True:
            item = self._pending.get()
            if item is None:
                return
            rgb, image, ts = item
            try:
                result = self._run(rgb, ts * 1000)
            except Exception as exc:
                self.callback_errors.append(exc)
                log.error("FaceLandmarker.detect_async: frame at %d ms failed: %s", ts, exc)
                continue
            try:
                callback(result, image, ts)
            except Exception as exc:
                self.callback_errors.append(exc)
                log.error(
                    "FaceLandmarker result_callback raised at %d ms: %s: %s",
                    ts, type(exc).__name__, exc,
                )  # fmt: skip

    def close(self) -> None:
        """Finish pending frames and release the graph. Idempotent."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        if self._worker is not None:
            self._pending.put(None)  # after the frame still waiting, if any
            self._worker.join()
        self._closed = True
        self._graph.close_all_inputs()
        self._graph.wait_until_done()

    def __repr__(self) -> str:
        o = self._options
        return (
            f"FaceLandmarker(running_mode={self._mode.name}, num_faces={o.num_faces}, "
            f"output_face_blendshapes={o.output_face_blendshapes}, "
            f"output_facial_transformation_matrixes={o.output_facial_transformation_matrixes})"
        )
