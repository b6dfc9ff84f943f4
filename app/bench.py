"""Face-graph benchmark library behind ``facegraph bench`` (and ``benchmarks/bench_face_mesh.py``).

What is measured, on frames decoded up front (decoding is not timed):

- **ours**: wall time of ``Graph.run_once`` per frame (what ``facegraph.FaceMesh`` does), on a
  graph built without profiling; CPU time of this process over the same calls
  (``time.process_time``: all threads, so scheduler workers count); the process's peak
  RSS (``VmHWM`` of /proc/self/status, see :func:`peak_rss_mb`; it includes the interpreter,
  the models and the decoded frames held for the run; the baseline worker reports its own);
- **per node**: a second pass over the same frames with ``profile=True`` (profiling adds
  clock reads per call, so it is kept out of the headline figures), ``Graph.stats()``;
- **inference floor**: ``TfLiteModel.run`` of the graph's models alone, on the same inputs the
  graph used on each frame (the landmark model on the crop of each ROI the graph saw, the
  detector on frames where it ran); crops are made outside the timing; timed block by block
  right after ours;
- **baseline** (optional): MediaPipe 0.10.14's legacy ``FaceMesh`` (``refine_landmarks=True``,
  ``static_image_mode`` matching the graph), or with ``mediapipe-tasks`` MediaPipe's Tasks
  ``FaceLandmarker`` (VIDEO or IMAGE mode likewise, blendshapes and matrices on), on the
  same frames, in this interpreter when
  ``mediapipe`` imports, else in a worker of another interpreter (``baseline_python``) fed
  over a pipe from a shared ``.npy`` of the frames. Ours and theirs alternate in blocks of
  ``block`` frames so both see the same machine load;
- **pacing** (optional, ``interval_ms``): every contender, the floor and the profiled pass
  included, starts its frames that far apart (:class:`Pacer`), idling in between as when
  a camera feeds it.

:func:`run_scaling` times a graph over synthetic frames with 1..N faces, several frame
sizes and LiteRT thread counts (set on every node whose options have ``threads``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from facegraph.app.mediapipe_worker import Pacer, peak_rss_mb
from facegraph.atomic_files import write_whole
from facegraph.spec import map_nodes, walk_nodes

if TYPE_CHECKING:
    from facegraph.models.thread_choice import Threads
    from facegraph.spec import GraphSpec, NodeSpec

__all__ = [
    "STANDARD_ROWS",
    "BenchConfig",
    "BenchError",
    "GraphContender",
    "InferenceFloor",
    "MediaPipeBaseline",
    "Pacer",
    "baseline_for",
    "graph_models",
    "grid_photo_frames",
    "read_frames",
    "run_bench",
    "run_scaling",
    "run_table",
    "summarize",
    "summarize_table_runs",
    "with_node_option",
    "with_threads",
    "write_plot",
]

PHOTO = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "faces" / "astronaut.png"
INSTALL_HINT = (
    "the mediapipe baseline needs mediapipe 0.10.14: install it with "
    "`pip install 'facegraph[reference]'` (Python <= 3.12), or point --baseline-python at "
    "the python of a venv that has it (or set $FACEGRAPH_MEDIAPIPE_PYTHON)"
)
#: Environment variables naming a python with mediapipe 0.10.14 / with the Tasks version
#: (the default of ``baseline_python`` for the ``mediapipe`` / ``mediapipe-tasks`` baseline).
MEDIAPIPE_PYTHON_ENV = "FACEGRAPH_MEDIAPIPE_PYTHON"
MEDIAPIPE_TASKS_PYTHON_ENV = "FACEGRAPH_MEDIAPIPE_TASKS_PYTHON"


class BenchError(Exception):
    """A benchmark that cannot run (bad input, missing baseline, ...); the message says why."""


# ----------------------------------------------------------------------------- statistics


def summarize(ms: Sequence[float]) -> dict[str, float]:
    """mean, p50, p99 (nearest rank), min, max of per-frame milliseconds, and FPS (1000/mean)."""
    if not ms:
        return {"mean_ms": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "min_ms": 0.0, "max_ms": 0.0}
    s = sorted(ms)
    rank = max(0, min(len(s) - 1, int(np.ceil(0.99 * len(s))) - 1))
    mean = statistics.fmean(s)
    return {
        "mean_ms": mean,
        "p50_ms": statistics.median(s),
        "p99_ms": s[rank],
        "min_ms": s[0],
        "max_ms": s[-1],
        "fps": 1e3 / mean if mean > 0 else 0.0,
    }


def block_positions(ms: Sequence[float], block: int) -> dict[str, float] | None:
    """Per-frame times by position in the alternating blocks: ``first_p50_ms`` (each
    block's first frame, right after its pause) and ``late_p50_ms`` (the second half of
    each block). None for blocks under 4 frames, or too few frames to fill half a block.

    Each contender starts its blocks after idling (the pause, and the other contender's
    block): caches are cold and the first frames run slower (on this 2-core VM +1 ms on
    the first, fading over ~5 frames). That costs the same milliseconds whoever is
    faster, so it weighs more on the faster one; the late half shows the running speed.
    """
    if block < 4:
        return None
    first = [v for i, v in enumerate(ms) if i % block == 0]
    late = [v for i, v in enumerate(ms) if i % block >= block // 2]
    if not first or not late:
        return None
    return {"first_p50_ms": statistics.median(first), "late_p50_ms": statistics.median(late)}


# ----------------------------------------------------------------------------- frames


def _resize(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or (frame.shape[1], frame.shape[0]) == size:
        return np.ascontiguousarray(frame)
    import cv2

    return np.ascontiguousarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))


def read_frames(source: str, n: int, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """The first ``n`` RGB frames of ``source`` (anything ``open_source`` opens), optionally
    resized to ``size`` = (width, height). A source with fewer frames is replayed from its
    start until there are ``n`` (an image gives ``n`` copies)."""
    from facegraph.vision.media import SourceError, open_source

    frames: list[np.ndarray] = []
    try:
        with open_source(source, stderr=sys.stderr) as src:
            for frame in src:
                frames.append(_resize(frame.image, size))
                if len(frames) >= n:
                    break
    except SourceError as exc:
        raise BenchError(str(exc)) from None
    if not frames:
        raise BenchError(f"no frames could be read from {source}")
    k = len(frames)
    return [frames[i % k] for i in range(n)]


def _face_crop(photo: np.ndarray) -> np.ndarray:
    """The photo cropped to a square about 1.5x the face (found with face_mesh_static), so
    several faces fit in one frame at a size the short-range detector finds."""
    from facegraph import Graph, load_graph

    graph = Graph(load_graph("face_mesh_static"), mode="deterministic")
    graph.start({})
    try:
        faces = graph.run_once({"image": photo}).get("faces") or []
    finally:
        graph.close_all_inputs()
        graph.wait_until_done()
    if not faces:
        return photo
    h, w = photo.shape[:2]
    pts = np.asarray(faces[0].pixels(w, h))[:, :2]
    cx, cy = (pts.min(0) + pts.max(0)) / 2
    half = 0.75 * float((pts.max(0) - pts.min(0)).max())
    x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
    x1, y1 = min(w, int(cx + half)), min(h, int(cy + half))
    return np.ascontiguousarray(photo[y0:y1, x0:x1])


def grid_photo_frames(
    n: int, width: int, height: int, faces: int, photo: np.ndarray | None = None
) -> list[np.ndarray]:
    """``n`` synthetic frames with ``faces`` copies of a face photo on a grid (1, 2 side by
    side, 3-4 on 2x2), each drifting and turning slightly (``synthetic.render_frame``)."""
    import math

    from facegraph.app.synthetic import FacePlacement, render_frame

    if photo is None:
        photo = _default_photo()
    cols = 1 if faces == 1 else 2
    rows = 1 if faces <= 2 else 2
    cell_w, cell_h = width / cols, height / rows
    scale = 0.95 * min(cell_w, cell_h) / max(photo.shape[:2])
    frames = []
    for i in range(n):
        t = i / max(n, 1)
        placements = []
        for k in range(faces):
            r, c = divmod(k, cols)
            phase = 2 * math.pi * (t + k / 4)
            placements.append(
                FacePlacement(
                    center_x=(c + 0.5) * cell_w + 0.05 * cell_w * math.sin(phase),
                    center_y=(r + 0.5) * cell_h + 0.05 * cell_h * math.cos(phase),
                    scale=scale * (1.0 + 0.05 * math.sin(phase)),
                    angle_deg=10 * math.sin(phase),
                )
            )
        frames.append(render_frame([photo] * faces, placements, width, height))
    return frames


_PHOTO_CACHE: list[np.ndarray] = []


def _default_photo() -> np.ndarray:
    if not _PHOTO_CACHE:
        import cv2

        bgr = cv2.imread(str(PHOTO), cv2.IMREAD_COLOR)
        if bgr is None:
            raise BenchError(f"cannot read the synthetic-face photo {PHOTO}")
        _PHOTO_CACHE.append(_face_crop(np.ascontiguousarray(bgr[:, :, ::-1])))
    return _PHOTO_CACHE[0]


# ----------------------------------------------------------------------------- graphs


def with_threads(spec: GraphSpec, threads: Threads) -> GraphSpec:
    """A copy of ``spec`` whose nodes with a ``threads`` option (the LiteRT nodes:
    ``FaceLandmarkModel``, ``TfLiteInference``, ``IrisLandmarks``, the face detectors) use
    ``threads``."""
    return with_node_option(spec, "threads", threads)


def with_node_option(spec: GraphSpec, key: str, value: Any) -> GraphSpec:
    """A copy of ``spec`` in which every node having option ``key`` sets it to ``value``."""

    def set_option(node: NodeSpec) -> NodeSpec:
        if key not in type(node.options).model_fields:
            return node
        return dataclasses.replace(node, options=node.options.model_copy(update={key: value}))

    return map_nodes(spec, set_option)  # also inside ParallelMap bodies


def threaded_nodes(spec: GraphSpec) -> list[str]:
    """Names of the nodes :func:`with_threads` changes (``landmarks/model`` inside a body)."""
    return [name for name, n in walk_nodes(spec) if "threads" in type(n.options).model_fields]


class GraphContender:
    """A graph fed one frame per ``run_once`` (what ``facegraph.FaceMesh`` does)."""

    def __init__(
        self,
        spec: GraphSpec,
        side_packets: Mapping[str, Any],
        mode: str = "deterministic",
        profile: bool = False,
    ) -> None:
        from facegraph import Graph

        self.graph = Graph(spec, mode=mode, profile=profile)  # type: ignore[arg-type]
        self.graph.start(dict(side_packets))

    def step(self, frame: np.ndarray) -> tuple[float, dict[str, Any]]:
        """Run one frame: (wall ms, outputs)."""
        t0 = time.perf_counter()
        out = self.graph.run_once({"image": frame})
        return (time.perf_counter() - t0) * 1e3, out

    def close(self) -> None:
        self.graph.close_all_inputs()
        self.graph.wait_until_done()


@dataclass
class GraphModels:
    """The models a face graph runs, as :class:`InferenceFloor` needs them."""

    landmark: str | None
    detector: str | None  # short_range / full_range (BlazeFace), None if another backend
    detector_config: Any = None
    threads: Threads = "auto"
    detector_threads: Threads = "auto"
    blendshapes_threads: Threads = "auto"
    custom_ops: str = "lower"
    notes: list[str] = field(default_factory=list)
    landmark_size: int = 192  # crop size of the landmark model (256: FaceMesh V2)
    landmark_uint8_input: tuple[float, float] | None = None  # the node's uint8_input
    blendshapes: str | None = None  # the blendshapes model, when the graph runs it


def graph_models(spec: GraphSpec, side_packets: Mapping[str, Any]) -> GraphModels:
    """Which landmark model and detector ``spec`` runs with these side packets."""
    from facegraph.calculators.face.landmark_nodes import (
        ATTENTION_MODEL,
        MESH_MODEL,
        FaceLandmarkModel,
    )
    from facegraph.vision.face.detection import FACE_LANDMARKER, FULL_RANGE, SHORT_RANGE

    def side(name: str) -> Any:
        if name in side_packets:
            return side_packets[name]
        decl = spec.side_inputs.get(name)
        return decl.default if decl is not None else None

    models = GraphModels(landmark=None, detector=None)
    for _, node in walk_nodes(spec):
        if node.calculator is FaceLandmarkModel:
            opts: Any = node.options
            attention = side("with_attention")
            attention = opts.with_attention if attention is None else bool(attention)
            models.landmark = opts.model or (ATTENTION_MODEL if attention else MESH_MODEL)
            models.threads = opts.threads
            models.custom_ops = str(getattr(opts, "custom_ops", "lower"))
            models.landmark_uint8_input = opts.uint8_input
        elif node.calculator_name == "FaceLandmarksV2Model":
            opts = node.options
            models.landmark, models.landmark_size = str(opts.model), 256
            models.threads = opts.threads
            models.landmark_uint8_input = opts.uint8_input
        elif node.calculator_name == "FaceLandmarkerDetector":
            models.detector, models.detector_config = "face_landmarker", FACE_LANDMARKER
            models.detector_threads = getattr(node.options, "threads", "auto")
        elif node.calculator_name == "FaceBlendshapes" and side("blendshapes"):
            bs_opts: Any = node.options
            models.blendshapes = str(bs_opts.model)
            models.blendshapes_threads = bs_opts.threads
        elif node.calculator_name in ("FaceDetector", "BlazeFaceDetector"):
            name = side("detector") or getattr(node.options, "detector", None)
            name = name or getattr(node.options, "model", None) or "short_range"
            configs = {"short_range": SHORT_RANGE, "full_range": FULL_RANGE}
            if name in configs:
                models.detector, models.detector_config = name, configs[name]
                models.detector_threads = getattr(node.options, "threads", "auto")
            else:
                models.notes.append(f"detector {name!r} is not BlazeFace: not in the floor")
    if models.landmark is None:
        models.notes.append("no FaceLandmarkModel node: landmark model not in the floor")
    return models


class InferenceFloor:
    """Only the model invocations the graph made on a frame: the landmark model on the crop
    of each ROI it saw, plus the detector when it ran, each loaded and fed as the graph
    does (uint8 pixels where it feeds them). Crops are made outside the timing."""

    def __init__(self, models: GraphModels) -> None:
        from facegraph.models import model_path
        from facegraph.models.inference import TfLiteModel
        from facegraph.vision.face.detectors import BlazeFaceBackend

        self.models = models
        self.mesh = (
            TfLiteModel(
                model_path(models.landmark),
                threads=models.threads,
                custom_ops=models.custom_ops,  # type: ignore[arg-type]
                uint8_input=models.landmark_uint8_input,
            )
            if models.landmark
            else None
        )
        self.det = None
        if models.detector_config is not None:
            file = models.detector_config.model_file[: -len(".tflite")]
            self.det = TfLiteModel(
                model_path(file),
                threads=models.detector_threads,
                uint8_input=BlazeFaceBackend.VALUE_RANGE,
            )
        self.blendshapes = (
            TfLiteModel(model_path(models.blendshapes), threads=models.blendshapes_threads)
            if models.blendshapes
            else None
        )

    def step(self, frame: np.ndarray, out: Mapping[str, Any]) -> float:
        """ms of the model calls the graph made for ``frame`` (given its outputs)."""
        from facegraph.vision.face.image_to_tensor import image_to_tensor

        calls: list[tuple[Any, np.ndarray]] = []
        if self.mesh is not None:
            size = self.models.landmark_size
            value_range = None if self.models.landmark_uint8_input else (0.0, 1.0)
            for roi in out.get("rois") or []:
                crop = image_to_tensor(frame, roi, size, size, value_range)
                calls.append((self.mesh, crop.tensor))
        if self.blendshapes is not None:
            from facegraph.vision.face.blendshapes import blendshape_input

            h, w = frame.shape[:2]
            for face in out.get("faces") or []:
                calls.append((self.blendshapes, blendshape_input(face.points, w, h)))
        if self.det is not None and "detections" in out:
            size = self.models.detector_config.input_size
            crop = image_to_tensor(frame, None, size, size, None, "zero", True)
            calls.append((self.det, crop.tensor))
        t0 = time.perf_counter()
        for model, x in calls:
            model.run(x)
        return (time.perf_counter() - t0) * 1e3


# ----------------------------------------------------------------------------- baseline


class MediaPipeBaseline:
    """MediaPipe's legacy FaceMesh on the benchmark frames, in-process or in a worker."""

    def __init__(
        self,
        frames: Sequence[np.ndarray],
        static: bool,
        max_faces: int,
        python: str | None,
        tmp: Path,
        tasks: tuple[str, bool, bool] | None = None,
    ) -> None:
        # ``tasks``: (bundle path, blendshapes, matrices) for the Tasks FaceLandmarker.
        self._proc: subprocess.Popen[str] | None = None
        self._local: Any = None
        if python is None:
            from facegraph.app.mediapipe_worker import MediaPipeFaceMesh, MediaPipeTasksLandmarker

            if tasks is not None:
                self._local = MediaPipeTasksLandmarker(frames, static, max_faces, *tasks)
            else:
                self._local = MediaPipeFaceMesh(frames, static, max_faces)
            self.version = self._local.version
            self.where = "in-process"
            return
        if not Path(python).exists():
            raise BenchError(f"--baseline-python {python}: no such file. {INSTALL_HINT}")
        if len({f.shape for f in frames}) > 1:
            raise BenchError("the input's frames differ in size; give --size WxH")
        path = tmp / "frames.npy"
        # Written frame by frame with plain writes: a stacked copy or a writable memmap would
        # add the whole clip to our peak RSS.
        with open(path, "wb") as file:
            header = {
                "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                "fortran_order": False,
                "shape": (len(frames), *frames[0].shape),
            }
            np.lib.format.write_array_header_1_0(file, header)
            for frame in frames:
                file.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
        worker = Path(__file__).with_name("mediapipe_worker.py")
        # -I -c + run_path: the worker's folder (which has a types.py) must not go on
        # sys.path, where it would shadow the standard library's types module.
        boot = (
            "import runpy, sys; sys.argv[:] = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')"
        )
        args = [str(worker), str(path), "1" if static else "0", str(max_faces)]
        if tasks is not None:
            args += [tasks[0], "1" if tasks[1] else "0", "1" if tasks[2] else "0"]
        self._proc = subprocess.Popen(
            [python, "-I", "-c", boot, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        hello = self._request(None)
        self.version = str(hello.get("version", "?"))
        self.where = f"worker ({python})"

    def _request(self, line: str | None) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        if line is not None:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
        reply = proc.stdout.readline()
        if not reply:
            proc.wait(timeout=10)
            err = proc.stderr.read() if proc.stderr else ""
            tail = " ".join(err.strip().splitlines()[-3:])
            if "No module named 'mediapipe'" in err:
                raise BenchError(f"no mediapipe in the baseline interpreter. {INSTALL_HINT}")
            raise BenchError(f"the mediapipe baseline worker exited: {tail or 'no message'}")
        data: dict[str, Any] = json.loads(reply)
        if "error" in data:
            raise BenchError(f"mediapipe baseline worker: {data['error']}")
        return data

    def run(self, start: int, stop: int, interval_s: float | None = None) -> dict[str, Any]:
        """Frames ``start..stop-1``, paced ``interval_s`` apart (``Pacer``; None: back to
        back): {"ms": [...], "faces": [...], "cpu_ms": float}."""
        if self._local is not None:
            result: dict[str, Any] = self._local.run(start, stop, interval_s)
            return result
        pace = "" if interval_s is None else f" {interval_s * 1e3!r}"
        return self._request(f"run {start} {stop}{pace}")

    def peak_rss_mb(self) -> float | None:
        """The worker's RSS high-water mark (None in-process: it is ours)."""
        if self._proc is None:
            return None
        return float(self._request("stats")["peak_rss_mb"])

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
        if self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


BASELINES = ("mediapipe", "mediapipe-tasks")


def baseline_for(
    name: str, python: str | None, side_packets: Mapping[str, Any] | None = None
) -> Callable[[Sequence[np.ndarray], bool, int, Path], MediaPipeBaseline]:
    """Factory of the named baseline; fails early (before any timing) with an install hint.

    ``mediapipe``: 0.10.14's legacy FaceMesh; ``mediapipe-tasks``: the Tasks FaceLandmarker
    with the store's ``face_landmarker.task``, blendshapes and matrices on unless the side
    packets ``blendshapes`` / ``head_pose`` are false (so both sides compute the same).
    """
    if name not in BASELINES:
        raise BenchError(f"unknown baseline {name!r}; baselines: {', '.join(BASELINES)}")
    tasks: tuple[str, bool, bool] | None = None
    if name == "mediapipe-tasks":
        from facegraph.models import model_path

        side = side_packets or {}
        tasks = (
            str(model_path("face_landmarker")),
            bool(side.get("blendshapes", True)),
            bool(side.get("head_pose", True)),
        )
    env = MEDIAPIPE_TASKS_PYTHON_ENV if tasks is not None else MEDIAPIPE_PYTHON_ENV
    python = python or os.environ.get(env) or None
    if python is None:
        try:
            import mediapipe  # noqa: F401
        except ImportError:
            raise BenchError(f"mediapipe is not importable here. {INSTALL_HINT}") from None

    def make(frames: Sequence[np.ndarray], static: bool, faces: int, tmp: Path) -> Any:
        return MediaPipeBaseline(frames, static, faces, python, tmp, tasks)

    return make


# ----------------------------------------------------------------------------- the run


@dataclass
class BenchConfig:
    """Options of :func:`run_bench` (the ``facegraph bench`` flags)."""

    graph: str
    input: str
    frames: int = 100
    warmup: int = 10
    side_packets: dict[str, Any] = field(default_factory=dict)
    threads: Threads | None = None
    #: "lower" / "split": how the landmark model runs its custom ops (None: the graph's).
    custom_ops: str | None = None
    mode: str = "deterministic"
    baseline: str | None = None
    baseline_python: str | None = None
    block: int = 10
    size: tuple[int, int] | None = None
    profile_pass: bool = True
    #: Frame starts this many ms apart (a camera's cadence, :class:`Pacer`); None: back to back.
    interval_ms: float | None = None
    allow_imports: bool = False


#: Pause before each timed block of ours and of the floor (see run_bench).
_BLOCK_PAUSE_S = 0.01


def _static_mode(spec: GraphSpec) -> bool:
    """MediaPipe's static_image_mode for a face graph: no tracking back edge → static."""
    return not any(b.back_edge for n in spec.nodes for b in n.inputs)


def _blocks(n: int, size: int) -> Iterable[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(n, start + size)


def run_bench(config: BenchConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the JSON-ready result (what ``facegraph bench --json`` writes).

    Keys: ``graph``, ``input``, ``frame_size`` [w, h], ``frames``, ``warmup``, ``mode``,
    ``threads``, ``custom_ops`` (how the landmark model ran), ``side_packets``,
    ``static_image_mode``, ``block``, ``interval_ms`` (None: frames back to back),
    ``load_average`` (1, 5, 15 min), ``cpu_count``;
    ``ours``: the :func:`summarize` figures (``mean_ms``, ``p50_ms``, ``p99_ms``,
    ``min_ms``, ``max_ms``, ``fps``) + ``cpu_ms_per_frame``, ``peak_rss_mb``,
    ``faces_per_frame``, ``detector_frames``, ``in_block`` (:func:`block_positions`),
    ``per_frame_ms``; ``nodes``: per node
    ``node``, ``calculator``, ``calls``, ``mean_ms``, ``p50_ms``, ``p99_ms``,
    ``ms_per_frame`` (empty without the profiled pass); ``engine_ms_per_frame``: the
    profiled pass's per-frame time outside every node's ``process`` (deterministic mode
    only, else None); ``floor``: ``landmark_model``, ``detector``, ``model_threads``,
    ``detector_threads``, ``notes``, the summary figures, ``per_frame_ms``,
    ``share_of_ours_p50``; ``baseline``: None, or ``name``, ``version``, ``where``,
    ``static_image_mode``, ``refine_landmarks``, ``max_num_faces``, the summary figures,
    ``cpu_ms_per_frame``, ``peak_rss_mb``, ``faces_per_frame``, ``in_block``,
    ``per_frame_ms``; ``ratio``: None, or ours / baseline for ``p50``, ``mean``, ``p99``,
    ``cpu``, and (blocks of 4+ frames) ``first_in_block_p50``, ``late_in_block_p50``.
    """
    from facegraph import load_graph
    from facegraph.errors import FacegraphError

    say = progress or (lambda _msg: None)
    try:
        spec = load_graph(config.graph, allow_imports=config.allow_imports)
    except (FacegraphError, OSError) as exc:
        raise BenchError(f"cannot load graph {config.graph}: {exc}") from None
    if config.threads is not None:
        if not threaded_nodes(spec):
            raise BenchError(f"graph {spec.name} has no node with a threads option")
        spec = with_threads(spec, config.threads)
    if config.custom_ops is not None:
        if config.custom_ops not in ("lower", "split"):
            raise BenchError(f"custom_ops must be 'lower' or 'split', got {config.custom_ops!r}")
        spec = with_node_option(spec, "custom_ops", config.custom_ops)
    if "image" not in spec.input_streams:
        raise BenchError(f"graph {spec.name} has no 'image' input stream")
    n, warm = config.frames, config.warmup
    frames = _input_frames(config, n + warm)
    timed = frames[warm:]
    h, w = timed[0].shape[:2]
    static = _static_mode(spec)
    max_faces = int(config.side_packets.get("num_faces", _side_default(spec, "num_faces", 1)))
    make_baseline = (
        baseline_for(config.baseline, config.baseline_python, config.side_packets)
        if config.baseline
        else None
    )

    if config.interval_ms is not None and not config.interval_ms > 0:
        raise BenchError(f"interval must be > 0 ms, got {config.interval_ms}")
    interval_s = None if config.interval_ms is None else config.interval_ms / 1e3
    pacer = Pacer(interval_s)
    say(f"opening {spec.name}")
    ours = GraphContender(spec, config.side_packets, config.mode)
    models = graph_models(spec, config.side_packets)
    floor = InferenceFloor(models)
    ours_ms: list[float] = []
    floor_ms: list[float] = []
    outputs: list[dict[str, Any]] = []
    cpu_ms = 0.0
    base_ms: list[float] = []
    base_faces: list[int] = []
    base_cpu = 0.0
    base_info: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="facegraph-bench-") as tmp:
        baseline = None
        try:
            if make_baseline is not None:
                say("starting the mediapipe baseline")
                baseline = make_baseline(frames, static, max_faces, Path(tmp))
            # Warm-up: both contenders on the warm-up frames, untimed.
            for f in frames[:warm]:
                ours.step(f)
            if baseline is not None and warm:
                baseline.run(0, warm)
            say(f"timing {n} frames")
            # Alternating blocks: ours then theirs on the same frames, so both see the
            # same machine load (a shared machine's load drifts over seconds).
            for start, stop in _blocks(n, config.block):
                # Each contender starts its block from a short sleep, as the baseline worker
                # does (it waits on its pipe): on a loaded machine the kernel favours a task
                # waking from sleep, and without this only the baseline would get that.
                time.sleep(_BLOCK_PAUSE_S)
                pacer.block()
                c0 = time.process_time()
                for f in timed[start:stop]:
                    pacer.wait()
                    ms, out = ours.step(f)
                    ours_ms.append(ms)
                    outputs.append(out)
                cpu_ms += (time.process_time() - c0) * 1e3
                # The floor of the same block right after it: same machine conditions.
                time.sleep(_BLOCK_PAUSE_S)
                pacer.block()
                for f, out in zip(timed[start:stop], outputs[start:stop], strict=True):
                    pacer.wait()
                    floor_ms.append(floor.step(f, out))
                if baseline is not None:
                    r = baseline.run(warm + start, warm + stop, interval_s)
                    base_ms += r["ms"]
                    base_faces += r["faces"]
                    base_cpu += r["cpu_ms"]
            if baseline is not None:
                base_info = {
                    "name": config.baseline,
                    "version": baseline.version,
                    "where": baseline.where,
                    "static_image_mode": static,
                    "refine_landmarks": True,
                    "max_num_faces": max_faces,
                    **summarize(base_ms),
                    "cpu_ms_per_frame": base_cpu / n,
                    "peak_rss_mb": baseline.peak_rss_mb(),
                    "faces_per_frame": sum(base_faces) / n,
                    "in_block": block_positions(base_ms, config.block),
                    "per_frame_ms": base_ms,
                }
        finally:
            ours.close()
            if baseline is not None:
                baseline.close()
    ours_rss = peak_rss_mb()

    nodes: list[dict[str, Any]] = []
    engine_ms: float | None = None
    if config.profile_pass:
        say("profiled pass (per-node breakdown)")
        prof = GraphContender(spec, config.side_packets, config.mode, profile=True)
        # Paced as the timed pass: at a camera's cadence every frame starts cold, and the
        # breakdown should say where that time goes, not where a back-to-back frame's does.
        pacer.block()
        prof_ms = 0.0
        try:
            for f in frames:
                pacer.wait()
                prof_ms += prof.step(f)[0]
            stats = prof.graph.stats()
        finally:
            prof.close()
        if config.mode == "deterministic":
            # Every node runs on the caller's thread there, so what run_once took beyond
            # the nodes' own process() calls is the engine's (scheduling, queues, packets;
            # plus the profiler's clock reads).
            in_nodes = sum(s.total_ms for s in stats.nodes if not s.inside)
            engine_ms = max(0.0, prof_ms - in_nodes) / len(frames)
        for s in sorted(stats.nodes, key=lambda s: -s.total_ms):
            if s.timed_calls:
                nodes.append(
                    {
                        "node": s.node,
                        "calculator": s.calculator,
                        "calls": s.timed_calls,
                        "mean_ms": s.mean_ms,
                        "p50_ms": s.p50_ms,
                        "p99_ms": s.p99_ms,
                        "ms_per_frame": s.total_ms / len(frames),
                    }
                )

    faces = [len(o.get("faces") or []) for o in outputs]
    result: dict[str, Any] = {
        "graph": spec.name,
        "input": config.input,
        "frame_size": [w, h],
        "frames": n,
        "warmup": warm,
        "mode": config.mode,
        "threads": config.threads if config.threads is not None else models.threads,
        "custom_ops": models.custom_ops,
        "side_packets": config.side_packets,
        "static_image_mode": static,
        "block": config.block,
        "interval_ms": config.interval_ms,
        "load_average": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "ours": {
            **summarize(ours_ms),
            "cpu_ms_per_frame": cpu_ms / n,
            "peak_rss_mb": ours_rss,
            "faces_per_frame": sum(faces) / n,
            "detector_frames": sum("detections" in o for o in outputs),
            "in_block": block_positions(ours_ms, config.block),
            "per_frame_ms": ours_ms,
        },
        "nodes": nodes,
        "engine_ms_per_frame": engine_ms,
        "floor": {
            "landmark_model": models.landmark,
            "detector": models.detector,
            "blendshapes_model": models.blendshapes,
            "model_threads": models.threads,
            "detector_threads": models.detector_threads,
            "notes": models.notes,
            **summarize(floor_ms),
            "per_frame_ms": floor_ms,
        },
        "baseline": base_info,
        "ratio": None,
    }
    o = result["ours"]
    result["floor"]["share_of_ours_p50"] = (
        result["floor"]["p50_ms"] / o["p50_ms"] if o["p50_ms"] else None
    )
    if base_info is not None:
        result["ratio"] = {
            "p50": o["p50_ms"] / base_info["p50_ms"],
            "mean": o["mean_ms"] / base_info["mean_ms"],
            "p99": o["p99_ms"] / base_info["p99_ms"],
            "cpu": o["cpu_ms_per_frame"] / base_info["cpu_ms_per_frame"]
            if base_info["cpu_ms_per_frame"]
            else None,
        }
        ob, bb = o["in_block"], base_info["in_block"]
        if ob is not None and bb is not None:
            result["ratio"]["first_in_block_p50"] = ob["first_p50_ms"] / bb["first_p50_ms"]
            result["ratio"]["late_in_block_p50"] = ob["late_p50_ms"] / bb["late_p50_ms"]
    return result


def _input_frames(config: BenchConfig, n: int) -> list[np.ndarray]:
    """``synthetic`` / ``synthetic:K``: K (default num_faces or 1) faces on a grid at
    ``size`` (default 640x480); anything else goes to :func:`read_frames`."""
    kind, _, count = config.input.partition(":")
    if kind != "synthetic":
        return read_frames(config.input, n, config.size)
    if count and not count.isdigit():
        raise BenchError(f"synthetic input: expected synthetic:FACES, got {config.input!r}")
    faces = int(count) if count else int(config.side_packets.get("num_faces", 1))
    w, h = config.size or (640, 480)
    return grid_photo_frames(n, w, h, max(1, faces))


def _side_default(spec: GraphSpec, name: str, fallback: Any) -> Any:
    decl = spec.side_inputs.get(name)
    return decl.default if decl is not None and decl.default is not None else fallback


# ----------------------------------------------------------------------------- output


def write_plot(result: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """PNG of per-frame latency over the timed frames: ours, the baseline, the floor
    (written whole or not at all; OSError when it cannot be)."""
    from facegraph.app.figures import png_bytes, pyplot

    fig, ax = pyplot().subplots(figsize=(10, 4.5), dpi=100)
    series = [("facegraph " + result["graph"], result["ours"]["per_frame_ms"])]
    if result.get("baseline"):
        b = result["baseline"]
        series.append((f"MediaPipe {b['version']} FaceMesh", b["per_frame_ms"]))
    series.append(("LiteRT inference floor", result["floor"]["per_frame_ms"]))
    for label, ms in series:
        p50 = statistics.median(ms) if ms else 0.0
        ax.plot(range(len(ms)), ms, linewidth=0.9, label=f"{label} (p50 {p50:.2f} ms)")
    w, h = result["frame_size"]
    ax.set_title(
        f"{result['graph']} on {Path(str(result['input'])).name} ({w}x{h}), per-frame latency"
    )
    ax.set_xlabel("frame")
    ax.set_ylabel("ms")
    # A single stall (another process on a shared machine) must not flatten the plot.
    top = max(float(np.percentile(ms, 99)) for _, ms in series if ms) * 1.6
    clipped = sum(sum(1 for v in ms if v > top) for _, ms in series)
    ax.set_ylim(0, top)
    if clipped:
        ax.text(
            0.01,
            0.97,
            f"{clipped} point(s) above {top:.1f} ms not shown",
            transform=ax.transAxes,
            fontsize=8,
            va="top",
        )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    write_whole(path, png_bytes(fig))


# ----------------------------------------------------------------------------- scaling


SCALING_SIZES: tuple[tuple[int, int], ...] = ((320, 240), (640, 480), (1280, 720), (1920, 1080))


def run_scaling(
    graph: str,
    *,
    faces: Sequence[int] = (1, 2, 3, 4),
    sizes: Sequence[tuple[int, int]] = SCALING_SIZES,
    threads: Sequence[Threads] = (1, 2, "auto"),
    frames: int = 60,
    warmup: int = 5,
    block: int = 10,
    mode: str = "deterministic",
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """ms/frame of ``graph`` on synthetic frames for every (faces, size, threads).

    For one (faces, size) the thread settings run side by side, alternating blocks of
    ``block`` frames, so they share the machine's load. Each row: faces, width, height,
    threads, faces_found (mean per frame) and the :func:`summarize` figures. ``num_faces``
    is set to the number of faces drawn.
    """
    from facegraph import load_graph

    base = load_graph(graph)
    rows: list[dict[str, Any]] = []
    for k in faces:
        for w, h in sizes:
            if progress:
                progress(f"{k} face(s) {w}x{h}")
            # One 24-frame motion period, replayed (rendering 1080p costs ~0.1 s per face).
            period = grid_photo_frames(min(24, frames + warmup), w, h, k)
            clip = [period[i % len(period)] for i in range(frames + warmup)]
            contenders = {
                t: GraphContender(with_threads(base, t), {"num_faces": k}, mode) for t in threads
            }
            ms: dict[Threads, list[float]] = {t: [] for t in threads}
            found: dict[Threads, list[int]] = {t: [] for t in threads}
            try:
                for g in contenders.values():
                    for f in clip[:warmup]:
                        g.step(f)
                for start, stop in _blocks(frames, block):
                    for t, g in contenders.items():
                        for f in clip[warmup + start : warmup + stop]:
                            dt, out = g.step(f)
                            ms[t].append(dt)
                            found[t].append(len(out.get("faces") or []))
            finally:
                for g in contenders.values():
                    g.close()
            for t in threads:
                rows.append(
                    {
                        "faces": k,
                        "width": w,
                        "height": h,
                        "threads": t,
                        "faces_found": sum(found[t]) / len(found[t]),
                        **summarize(ms[t]),
                    }
                )
    return rows


# ----------------------------------------------------------------------------- the table

#: The rows of ``facegraph bench --table`` (issue 13): graph, width, height, faces.
STANDARD_ROWS: tuple[tuple[str, int, int, int], ...] = (
    ("face_mesh", 640, 480, 1),
    ("face_mesh", 960, 540, 2),
    ("face_mesh_static", 640, 480, 1),
    ("face_mesh_static", 960, 540, 2),
)


def run_table(
    *,
    frames: int = 100,
    warmup: int = 10,
    block: int = 10,
    interval_ms: float | None = None,
    baseline_python: str | None = None,
    with_baseline: bool = True,
    threads: Threads | None = None,
    custom_ops: str | None = None,
    mode: str = "deterministic",
    rows: Sequence[tuple[str, int, int, int]] = STANDARD_ROWS,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """:func:`run_bench` of each standard row on synthetic frames (K faces at W×H,
    ``num_faces`` = K), each against MediaPipe in the same run (alternating blocks;
    ``interval_ms``: frames paced as a camera delivers them, :class:`Pacer`)."""
    say = progress or (lambda _msg: None)
    out = []
    for graph, w, h, faces in rows:
        say(f"{graph} {w}x{h}, {faces} face(s)")
        result = run_bench(
            BenchConfig(
                graph=graph,
                input=f"synthetic:{faces}",
                frames=frames,
                warmup=warmup,
                side_packets={"num_faces": faces},
                threads=threads,
                custom_ops=custom_ops,
                mode=mode,
                baseline="mediapipe" if with_baseline else None,
                baseline_python=baseline_python,
                block=block,
                size=(w, h),
                profile_pass=False,
                interval_ms=interval_ms,
            ),
            progress=progress,
        )
        for key in ("per_frame_ms",):
            result["ours"].pop(key, None)
            result["floor"].pop(key, None)
            if result["baseline"] is not None:
                result["baseline"].pop(key, None)
        out.append({"row": f"{w}x{h}, {faces} face(s), {graph}", **result})
    return out


def summarize_table_runs(runs: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Per standard row, over repeated :func:`run_table` runs (``facegraph bench --table
    --repeat N``): the median, min and max of our p50 and CPU ms per frame and, against
    MediaPipe, of MP/ours p50, CPU and late p50 (None without a baseline).

    One run's ratio moves by ±10 % on a shared machine whose speed drifts between rows;
    runs of all rows one after another spread that drift over every row alike, and their
    median is the figure to judge.
    """

    def spread(values: Sequence[float]) -> dict[str, float] | None:
        if not values:
            return None
        return {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
        }

    out = []
    for i, first in enumerate(runs[0]):
        rows = [run[i] for run in runs]
        ratios = [r["ratio"] for r in rows if r.get("ratio")]
        out.append(
            {
                "row": first["row"],
                "runs": len(rows),
                "p50_ms": spread([r["ours"]["p50_ms"] for r in rows]),
                "cpu_ms_per_frame": spread([r["ours"]["cpu_ms_per_frame"] for r in rows]),
                # ratio: ours / MediaPipe's; reported the other way round, as in the table
                "mp_over_ours_p50": spread([1 / q["p50"] for q in ratios]),
                "mp_over_ours_cpu": spread([1 / q["cpu"] for q in ratios]),
                "mp_over_ours_late_p50": spread(
                    [1 / q["late_in_block_p50"] for q in ratios if q.get("late_in_block_p50")]
                ),
            }
        )
    return out
