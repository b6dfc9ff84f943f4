"""Run a graph over a collection of videos and image sets: local processes or a Ray cluster.

::

    from facegraph.app.batch import run_batch

    summary = run_batch("face_mesh", "dataset/", "landmarks/", workers=2)
    summary = run_batch("face_mesh", "dataset/", "landmarks/", ray_address="auto")
    print(summary.done, summary.failed, summary.skipped, summary.frames, summary.fps)

Every input is one task, processed by :func:`~.runner.run_source` (so each output is
byte for byte what ``facegraph run GRAPH --input X --output Y`` writes for the same
input path):

- **Inputs** (:func:`discover_inputs`): a directory (every video file under it, and every
  folder under it that holds images, as one image set), a glob pattern (each match), a
  text file listing paths one per line (``#`` comments allowed), or one video.
  Paths are made absolute, which is also how they appear in the records' ``source``.
- **Outputs**: ``OUTPUT_DIR/<path relative to the collection>.jsonl``: ``a/clip.mp4`` gives
  ``a/clip.mp4.jsonl``, so equal names in different folders (or ``clip.mp4`` next to
  ``clip.avi``) never collide; an image set ``a/frames/`` gives ``a/frames.jsonl``. Each is
  written to a hidden temporary file and moved into place with ``os.replace``, then a
  sidecar ``<output>.done`` (JSON) records the input's fingerprint (size and mtime of the
  file, or of every image of a set), the graph, the side packets, the output's size and
  the counts. A rerun skips an input whose sidecar matches all of these, so a changed
  input, graph or side packet is processed again.
- **Failures**: an input that raises (unreadable video, graph error, a worker that died)
  is retried up to ``retries`` times, then listed in ``OUTPUT_DIR/failures.jsonl`` and in
  the summary; the other inputs go on.
- **Workers** build each graph once: the loaded spec is cached per process and the
  LiteRT models are reused from one input to the next (:mod:`facegraph.models.reuse`),
  so models load once per worker, not once per input (counted in
  :attr:`BatchSummary.model_loads`). Each worker runs LiteRT and OpenCV on one thread:
  parallelism comes from the workers.
- **Executors**: a local pool of spawned processes (default: one per CPU), or Ray actors
  (``ray_address="local"`` starts a local Ray instance, or joins ``$RAY_ADDRESS`` when
  set; ``"auto"`` or ``"HOST:PORT"`` joins a cluster; an already initialised Ray is used
  as is). Ray is optional: ``pip install "facegraph[ray]"``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from facegraph import FacegraphError
from facegraph.atomic_files import (
    clean_stale_temps_of,
    describe_os_error,
    replace_into_place,
    temp_path,
    write_whole,
)

__all__ = [
    "VIDEO_EXTENSIONS",
    "BatchConfig",
    "BatchError",
    "BatchInput",
    "BatchSummary",
    "TaskResult",
    "discover_inputs",
    "is_complete",
    "process_input",
    "run_batch",
]

#: File name extensions taken as videos when scanning a directory (lower case, with the dot).
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".mpg",
        ".mpeg",
        ".wmv",
        ".flv",
        ".ts",
        ".mts",
        ".m2ts",
        ".3gp",
        ".ogv",
    }
)

FAILURES_FILE = "failures.jsonl"
#: Attempts of one input lost with a cluster node (not counted as tries) before giving up.
MAX_LOST_RETRIES = 5
DONE_SUFFIX = ".done"
_RAY_INSTALL = 'pip install "facegraph[ray]"'
_GLOB_CHARS = frozenset("*?[")


class BatchError(FacegraphError):
    """The batch cannot start (no inputs, output names collide, Ray missing or unreachable)."""


# ------------------------------------------------------------------------------ inputs


@dataclass(frozen=True, slots=True)
class BatchInput:
    """One task: an absolute input path (video file, image, or folder of images) and the
    output's path relative to the output directory (POSIX separators)."""

    path: str
    output: str


def _image_extensions() -> frozenset[str]:
    from facegraph.vision.media import IMAGE_EXTENSIONS

    return IMAGE_EXTENSIONS


def _visible(name: str) -> bool:
    return not name.startswith(".")


#: A directory scan stops (with an error) after visiting this many folders or files.
MAX_SCANNED = 1_000_000


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _scan_directory(root: Path, warn: Callable[[str], object] = _note) -> list[Path]:
    """Video files under ``root`` and folders under it (``root`` included) holding images.

    Symbolic links are followed, but never back into a folder already visited (a loop, or
    an ancestor), so each file is found once; the scan ends with a :class:`BatchError`
    after :data:`MAX_SCANNED` entries. Entries that are not regular files (FIFOs,
    devices) are skipped with a note: reading them would block.
    """
    images = _image_extensions()
    from facegraph.vision.media import walk_once

    found: list[Path] = []
    seen = 0
    odd: list[str] = []
    for folder, dirs, files in walk_once(root):
        seen += len(dirs) + len(files)
        if seen > MAX_SCANNED:
            raise BatchError(
                f"{root} holds more than {MAX_SCANNED:,} entries; give a narrower folder, a "
                "glob or a list file"
            )
        dirs[:] = [d for d in dirs if _visible(d)]
        here = Path(folder)
        regular = []
        for f in files:
            if not _visible(f):
                continue
            ext = Path(f).suffix.lower()
            if ext not in images and ext not in VIDEO_EXTENSIONS:
                continue
            if _is_regular(here / f):
                regular.append(f)
            else:
                odd.append(str(here / f))
        if {Path(f).suffix.lower() for f in regular} & images:
            found.append(here)
        found.extend(
            here / f for f in sorted(regular) if Path(f).suffix.lower() in VIDEO_EXTENSIONS
        )
    if odd:
        more = f" and {len(odd) - 3} more" if len(odd) > 3 else ""
        warn(
            f"note: skipping {len(odd)} non-regular file(s) (FIFOs, devices): "
            f"{', '.join(odd[:3])}{more}"
        )
    return found


def _is_regular(path: Path) -> bool:
    import stat

    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _read_list(list_file: Path) -> list[Path]:
    paths: list[Path] = []
    for line in list_file.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text and not text.startswith("#"):
            paths.append(Path(text).expanduser())
    return paths


def _output_name(path: Path, base: Path) -> str:
    try:
        rel = path.relative_to(base)
    except ValueError:
        rel = Path(path.name)
    if rel == Path("."):
        rel = Path(path.name or "input")
    return rel.as_posix() + ".jsonl"


def discover_inputs(inputs: str | os.PathLike[str]) -> list[BatchInput]:
    """The tasks of a collection: ``DIR``, ``GLOB``, ``LIST`` (a text file) or one video.

    Output names keep each input's path relative to the collection's root (the directory,
    or the deepest folder common to every glob match or listed path). Raises
    :class:`BatchError` for an empty collection, a missing listed path, or two inputs
    that would write the same output.
    """
    text = os.fspath(inputs).strip()
    if not text:
        raise BatchError("--inputs is empty: give a directory, a glob pattern or a list file")
    spec = Path(text).expanduser()
    base: Path | None = None
    if spec.is_dir():
        base = Path(os.path.abspath(spec))
        paths = _scan_directory(base)
        if not paths:
            raise BatchError(
                f"no videos ({', '.join(sorted(VIDEO_EXTENSIONS)[:5])}, ...) or image folders "
                f"under {text}"
            )
    elif spec.exists() and not spec.is_dir() and not _is_regular(spec):
        raise BatchError(f"--inputs {text} is not a regular file (a FIFO or device would block)")
    elif spec.is_file():
        suffix = spec.suffix.lower()
        if suffix in VIDEO_EXTENSIONS or suffix in _image_extensions():
            paths = [spec]
        else:
            paths = _read_list(spec)
            if not paths:
                raise BatchError(f"the list file {text} names no inputs")
            missing = [str(p) for p in paths if not p.exists()]
            if missing:
                more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
                raise BatchError(
                    f"{len(missing)} path(s) of list {text} do not exist: "
                    f"{', '.join(missing[:3])}{more}"
                )
            odd = [str(p) for p in paths if not p.is_dir() and not _is_regular(p)]
            if odd:
                more = f" (and {len(odd) - 3} more)" if len(odd) > 3 else ""
                raise BatchError(
                    f"{len(odd)} path(s) of list {text} are not regular files (a FIFO or "
                    f"device would block): {', '.join(odd[:3])}{more}"
                )
    elif _GLOB_CHARS & set(text):
        from facegraph.vision.media import SourceError, expand_glob

        try:
            paths = [Path(match) for match in expand_glob(os.path.expanduser(text))]
        except SourceError as exc:
            raise BatchError(str(exc)) from None
        paths = [p for p in sorted(paths) if _is_regular(p) or p.is_dir()]
        if not paths:
            raise BatchError(f"no files match {text!r}")
    else:
        raise BatchError(f"--inputs not found: {text} (not a directory, file or glob pattern)")

    # One input per file: links to the same file (or a walk around a loop) count once.
    by_real: dict[str, Path] = {}
    for p in paths:
        by_real.setdefault(os.path.realpath(p), Path(os.path.abspath(p)))
    absolute = list(by_real.values())
    if base is None:
        parents = [str(p if p.is_dir() else p.parent) for p in absolute]
        base = Path(os.path.commonpath(parents)) if parents else Path.cwd()
        if len(absolute) == 1 and absolute[0].is_dir():
            base = absolute[0].parent
    seen: dict[str, str] = {}
    result: list[BatchInput] = []
    for p in dict.fromkeys(absolute):  # the same path listed twice is one input
        name = _output_name(p, base)
        if name in seen:
            raise BatchError(f"inputs {seen[name]} and {p} would both write {name}")
        seen[name] = str(p)
        result.append(BatchInput(str(p), name))
    return result


def _fingerprint(path: str) -> dict[str, Any]:
    """Size and mtime of a file, or a digest of (name, size, mtime) of a folder's images."""
    p = Path(path)
    if p.is_dir():
        images = _image_extensions()
        digest = hashlib.sha256()
        count = 0
        for child in sorted(p.iterdir()):
            if child.is_file() and _visible(child.name) and child.suffix.lower() in images:
                st = child.stat()
                digest.update(f"{child.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
                count += 1
        return {"images": count, "digest": digest.hexdigest()}
    st = p.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _count_frames(items: list[BatchInput], result: list[int | None]) -> None:
    """Sum the inputs' frame counts (container counts, image files) into ``result[0]``.

    Run on a thread of the driver for the frames bar's total; an input whose count is not
    known leaves the total unknown (None).
    """
    from facegraph.vision.media import open_source

    total = 0
    with open(os.devnull, "w") as quiet:
        for item in items:
            try:
                with open_source(item.path, stderr=quiet) as source:
                    count = source.frame_count
            except Exception:
                count = None
            if not count:
                return
            total += count
    result[0] = total


# ------------------------------------------------------------------------------ the work


@dataclass(frozen=True)
class BatchConfig:
    """What every task of a batch shares (sent to the workers; keep it picklable)."""

    graph: str
    """Shipped graph name or absolute path of a YAML file."""
    output_dir: str
    side_packets: dict[str, Any] = field(default_factory=dict)
    allow_imports: bool = False
    mode: str = "deterministic"
    """Scheduler mode in the workers; the results do not depend on it (``facegraph run``
    uses ``threads``), the speed does: one thread per worker leaves the cores to the
    other workers and saves the thread hand-offs (25% faster per frame on the sample)."""

    def graph_identity(self) -> str:
        """The graph as recorded in the sidecars: its name, or its path and content digest."""
        p = Path(self.graph)
        if p.is_file():
            return f"{self.graph}#sha256:{hashlib.sha256(p.read_bytes()).hexdigest()[:16]}"
        from facegraph import __version__

        return f"{self.graph}@facegraph-{__version__}"


@dataclass(slots=True)
class TaskResult:
    """The outcome of one attempt at one input."""

    input: BatchInput
    ok: bool
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    error: str | None = None
    worker: str = ""
    """``host:pid`` of the process that ran it."""
    model_loads: int = 0
    """Models this attempt loaded from their files (0 when all were reused)."""
    model_reuses: int = 0
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    crashed: bool = False
    """The worker process died (this input, or another one running with it, killed it)."""
    lost: bool = False
    """The worker's node (or the connection to it) was lost: not the input's fault."""


def _done_path(output: Path) -> Path:
    return output.with_name(output.name + DONE_SUFFIX)


def is_complete(config: BatchConfig, item: BatchInput, identity: str | None = None) -> bool:
    """Whether ``item``'s output is complete and up to date (its sidecar matches)."""
    output = Path(config.output_dir) / item.output
    try:
        record = json.loads(_done_path(output).read_text(encoding="utf-8"))
        return bool(
            record.get("input") == item.path
            and record.get("fingerprint") == _fingerprint(item.path)
            and record.get("graph") == (identity or config.graph_identity())
            and record.get("side_packets") == _jsonable(config.side_packets)
            and record.get("bytes") == output.stat().st_size
        )
    except (OSError, ValueError, AttributeError):
        return False


def _completed(config: BatchConfig, item: BatchInput, identity: str) -> dict[str, Any] | None:
    """The ``.done`` record of a complete, up-to-date output of ``item``, else None."""
    if not is_complete(config, item, identity):
        return None
    try:
        record = json.loads(_done_path(Path(config.output_dir) / item.output).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _jsonable(value: Mapping[str, Any]) -> Any:
    return json.loads(json.dumps(dict(value), sort_keys=True, default=str))


class _WorkerState:
    """Per-process cache: loaded graph specs, and the model reuse switched on."""

    def __init__(self) -> None:
        self.specs: dict[tuple[str, bool], Any] = {}
        self.identities: dict[str, str] = {}
        self.report: Callable[[tuple[Any, ...]], None] | None = None
        #: How the results name this worker (``host:pid``; Ray adds ``@node``).
        self.name = _worker_name()

    def spec(self, config: BatchConfig) -> Any:
        key = (config.graph, config.allow_imports)
        spec = self.specs.get(key)
        if spec is None:
            from facegraph import load_graph

            spec = load_graph(config.graph, allow_imports=config.allow_imports)
            self.specs[key] = spec
        return spec

    def identity(self, config: BatchConfig) -> str:
        if config.graph not in self.identities:
            self.identities[config.graph] = config.graph_identity()
        return self.identities[config.graph]


_STATE: _WorkerState | None = None


def _single_threaded() -> None:
    """One compute thread per worker process: the workers are the parallelism."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    import cv2

    cv2.setNumThreads(1)


def _worker_state() -> _WorkerState:
    global _STATE
    if _STATE is None:
        from facegraph.models import reuse

        _single_threaded()
        reuse.enable()
        _STATE = _WorkerState()
    return _STATE


def _worker_name() -> str:
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


#: Seconds between two progress messages of a worker (frames done so far).
_REPORT_EVERY = 0.25


def process_input(config: BatchConfig, item: BatchInput, attempt: int = 0) -> TaskResult:
    """Process one input in this process (a batch worker's job); never raises.

    Runs :func:`~.runner.run_source` into a hidden temporary ``.jsonl`` beside the output,
    moves it into place, then writes the ``.done`` sidecar. The graph spec and the models
    loaded by earlier inputs of this process are reused.
    """
    from facegraph.models import reuse

    state = _worker_state()
    if state.report is not None:
        state.report(("start", item.output))
    result = TaskResult(item, ok=False, worker=state.name)
    output = Path(config.output_dir) / item.output
    # Left by a worker that died mid-input (its PID is gone). The old output and its
    # .done sidecar stay until this attempt has replaced them: completed work is never
    # un-completed by an attempt that fails.
    with contextlib.suppress(OSError):  # (a loop of symbolic links fails the input below)
        clean_stale_temps_of(output)
    if attempt > 0 and (done := _completed(config, item, state.identity(config))) is not None:
        # An earlier attempt finished, but its worker (or node) died before the driver
        # heard of it: the input is complete, and is not processed a second time.
        result.ok, result.frames, result.faces = True, done["frames"], done["faces"]
        result.skipped_files = [(str(a), str(b)) for a, b in done.get("skipped_files", [])]
        result.worker = str(done.get("worker", result.worker))
        return result
    before = reuse.stats()
    t0 = time.perf_counter()
    tmp: Path | None = None
    try:
        from facegraph.app.runner import run_source

        tmp = temp_path(output, keep_suffix=True)
        output.parent.mkdir(parents=True, exist_ok=True)
        spec = state.spec(config)
        fingerprint = _fingerprint(item.path)
        report = state.report
        last = [time.perf_counter()]
        counts = [0, 0]

        def on_frame(frame_result: Any) -> None:
            counts[0] += 1
            counts[1] += len(frame_result.faces)
            now = time.perf_counter()
            if report is not None and now - last[0] >= _REPORT_EVERY:
                last[0] = now
                report(("frames", item.output, counts[0]))

        reuse.next_run()  # the previous input's graph is done: its models are free again
        summary = run_source(
            spec,
            item.path,
            output=tmp,
            side_packets=config.side_packets,
            on_frame=on_frame,
            allow_imports=config.allow_imports,
            mode="threads" if config.mode == "threads" else "deterministic",
        )
        if summary.stopped not in ("end", "max_frames"):
            raise BatchError(f"run ended early ({summary.stopped})")
        if summary.frames == 0:
            raise BatchError("no frame could be read")
        replace_into_place(tmp, output)
        result.frames, result.faces = summary.frames, summary.faces
        result.skipped_files = list(summary.errors)
        result.seconds = time.perf_counter() - t0
        record = {
            "input": item.path,
            "fingerprint": fingerprint,
            "graph": state.identity(config),
            "side_packets": _jsonable(config.side_packets),
            "bytes": output.stat().st_size,
            "frames": result.frames,
            "faces": result.faces,
            "seconds": round(result.seconds, 3),
            "skipped_files": [list(e) for e in result.skipped_files],
            "worker": result.worker,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_whole(_done_path(output), json.dumps(record) + "\n")
        result.ok = True
    except Exception as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        result.error = _describe(exc)
        result.seconds = time.perf_counter() - t0
    after = reuse.stats()
    result.model_loads = after.loads - before.loads
    result.model_reuses = after.reuses - before.reuses
    return result


def _describe(exc: BaseException) -> str:
    if isinstance(exc, FacegraphError):
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # Unexpected: keep where it happened (last frame of the traceback), on one line.
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" ({Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}".replace("\n", " ")


# ------------------------------------------------------------------------------ executors


class _Executor(Protocol):
    workers: int
    description: str

    def capacity(self) -> int: ...
    def submit(self, item: BatchInput, attempt: int) -> None: ...
    def collect(self, timeout: float) -> list[TaskResult]: ...
    def progress(self) -> list[tuple[Any, ...]]: ...
    def close(self) -> None: ...


def _init_local_worker(queue: Any) -> None:
    state = _worker_state()
    state.report = queue.put


class _LocalExecutor:
    """A pool of spawned processes (no fork: LiteRT and OpenCV threads do not survive it)."""

    def __init__(self, config: BatchConfig, workers: int) -> None:
        import multiprocessing

        self.config = config
        self.workers = workers
        self.description = f"{workers} local process{'es' if workers != 1 else ''}"
        self._ctx = multiprocessing.get_context("spawn")
        self._queue = self._ctx.SimpleQueue()
        self._pool: Any = None
        self._futures: dict[Any, tuple[BatchInput, int]] = {}

    def _executor(self) -> Any:
        if self._pool is None:
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=self._ctx,
                initializer=_init_local_worker,
                initargs=(self._queue,),
            )
        return self._pool

    def capacity(self) -> int:
        # Two per worker: each finds its next input queued, yet retries run soon.
        return 2 * self.workers - len(self._futures)

    def submit(self, item: BatchInput, attempt: int) -> None:
        future = self._executor().submit(process_input, self.config, item, attempt)
        self._futures[future] = (item, attempt)

    def collect(self, timeout: float) -> list[TaskResult]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        if not self._futures:
            return []
        done, _ = wait(list(self._futures), timeout=timeout, return_when=FIRST_COMPLETED)
        results = []
        broken = False
        for future in done:
            item, _attempt = self._futures.pop(future)
            try:
                results.append(future.result())
            except BrokenProcessPool:
                broken = True
                results.append(
                    TaskResult(item, ok=False, error="a worker process died", crashed=True)
                )
            except Exception as exc:
                results.append(TaskResult(item, ok=False, error=_describe(exc)))
        if broken:  # every other task of the dead pool fails with it; start a new pool
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        return results

    def progress(self) -> list[tuple[Any, ...]]:
        messages = []
        while not self._queue.empty():
            messages.append(self._queue.get())
        return messages

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._queue.close()


class _RayWorker:
    """A Ray actor: one long-lived process that keeps its graphs and models."""

    def __init__(self) -> None:
        _worker_state()

    def process(
        self, config: BatchConfig, item: BatchInput, attempt: int, queue: Any
    ) -> TaskResult:
        # The progress queue comes with each call, not to __init__: an actor that Ray
        # restarts (after a crash) must not depend on constructor arguments.
        import ray

        state = _worker_state()

        def report(message: tuple[Any, ...]) -> None:
            # Progress is best effort: a lost queue (its node died) must not fail the input.
            with contextlib.suppress(Exception):
                queue.put_nowait(message)

        state.report = report
        # host:pid@node: the .done sidecars say which node of a cluster did the work.
        state.name = f"{_worker_name()}@{ray.get_runtime_context().get_node_id()[:12]}"
        return process_input(config, item, attempt)


def _head_node_id(ray: Any) -> str:
    """The cluster's head node (it lives as long as the cluster), else the driver's node."""
    with contextlib.suppress(Exception):
        for node in ray.nodes():
            if node.get("Alive") and "node:__internal_head__" in node.get("Resources", {}):
                return str(node["NodeID"])
    return str(ray.get_runtime_context().get_node_id())


def _node_lost(exc: BaseException) -> bool:
    """Whether a Ray task failed because its actor's node or connection was lost (not
    because of the input: a worker that crashed on its own is ``ActorDiedError`` without
    a dead node)."""
    import ray.exceptions as errors

    if isinstance(exc, getattr(errors, "ActorUnavailableError", ())):
        return True
    text = str(exc).lower()
    return (
        isinstance(exc, errors.ActorDiedError)
        and "node" in text
        and ("died" in text or "dead" in text)
    )


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BatchError(f"--ray needs Ray, which is not installed: {_RAY_INSTALL}") from None
    return ray


class _RayExecutor:
    """Ray actors (one CPU each), fed one input at a time each (two queued)."""

    def __init__(self, config: BatchConfig, workers: int | None, address: str) -> None:
        ray = _import_ray()
        from ray.util.queue import Queue

        self._ray = ray
        self.config = config
        self._owns_ray = not ray.is_initialized()
        if address == "local" and os.environ.get("RAY_ADDRESS"):
            address = os.environ["RAY_ADDRESS"]  # Ray's own convention: join that cluster
        if self._owns_ray:
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "configure_logging": False,
                "log_to_driver": False,
            }
            if address == "local":
                if workers is not None:
                    kwargs["num_cpus"] = workers
            else:
                kwargs["address"] = address
            try:
                ray.init(**kwargs)
            except Exception as exc:
                raise BatchError(f"cannot start or join Ray at {address!r}: {exc}") from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = workers or max(cpus, 1)
        where = "local Ray" if address == "local" else f"Ray cluster {address}"
        self.description = f"{self.workers} Ray actor{'s' if self.workers != 1 else ''} ({where})"
        # The progress queue lives on the head node: a worker node that dies must not take
        # it along (the driver reads it every 0.2 s).
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(_head_node_id(ray), soft=True)
        self._queue = Queue(actor_options={"scheduling_strategy": here, "num_cpus": 0})
        # SPREAD: one actor per node first, so that a cluster's nodes all work, and a node
        # that dies takes as few actors with it as possible (Ray restarts them elsewhere).
        options: dict[str, Any] = {"scheduling_strategy": "SPREAD"}
        if os.environ.get("FACEGRAPH_CACHE_DIR"):
            # Only when needed: a runtime_env costs seconds of actor start-up.
            cache = {"FACEGRAPH_CACHE_DIR": os.environ["FACEGRAPH_CACHE_DIR"]}
            options["runtime_env"] = {"env_vars": cache}
        self._actor_class = ray.remote(num_cpus=1, max_restarts=-1)(_RayWorker)
        self._actor_options = options
        self._actors = [self._new_actor() for _ in range(self.workers)]
        self._busy: dict[int, int] = {i: 0 for i in range(self.workers)}
        self._refs: dict[Any, tuple[BatchInput, int, int, Any]] = {}

    def _new_actor(self) -> Any:
        return self._actor_class.options(**self._actor_options).remote()

    def _replace_lost(self, index: int, actor: Any) -> None:
        """An actor whose node is gone: start a new one (Ray places it on a live node)
        instead of resubmitting to one that cannot answer. Once per lost actor."""
        if self._actors[index] is not actor:
            return  # already replaced after another of its tasks failed
        with contextlib.suppress(Exception):
            self._ray.kill(actor, no_restart=True)
        self._actors[index] = self._new_actor()

    def capacity(self) -> int:
        return 2 * self.workers - len(self._refs)

    def submit(self, item: BatchInput, attempt: int) -> None:
        index = min(self._busy, key=lambda i: self._busy[i])
        actor = self._actors[index]
        ref = actor.process.remote(self.config, item, attempt, self._queue)
        self._busy[index] += 1
        self._refs[ref] = (item, attempt, index, actor)

    def collect(self, timeout: float) -> list[TaskResult]:
        if not self._refs:
            return []
        ready, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        results = []
        for ref in ready:
            item, _attempt, index, actor = self._refs.pop(ref)
            self._busy[index] -= 1
            try:
                results.append(self._ray.get(ref))
            except Exception as exc:  # the actor died (restarted by Ray) or could not run
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                lost = _node_lost(exc)
                if lost:
                    self._replace_lost(index, actor)
                results.append(
                    TaskResult(
                        item,
                        ok=False,
                        error=f"a Ray worker died ({type(exc).__name__}: {first})"[:500],
                        crashed=True,
                        lost=lost,
                    )
                )
        return results

    def progress(self) -> list[tuple[Any, ...]]:
        try:
            n = self._queue.size()
            return list(self._queue.get_nowait_batch(n)) if n else []
        except Exception:  # progress is best effort; results come through the task refs
            return []

    def close(self) -> None:
        for actor in self._actors:
            with contextlib.suppress(Exception):
                self._ray.kill(actor)
        with contextlib.suppress(Exception):
            self._queue.shutdown()
        if self._owns_ray:
            self._ray.shutdown()


# ------------------------------------------------------------------------------ the driver


@dataclass(slots=True)
class Failure:
    """An input that failed every attempt."""

    input: str
    output: str
    attempts: int
    error: str


@dataclass(slots=True)
class BatchSummary:
    """What :func:`run_batch` did."""

    total: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    """Inputs whose complete output was already there."""
    frames: int = 0
    faces: int = 0
    elapsed: float = 0.0
    workers: int = 0
    executor: str = ""
    model_loads: int = 0
    """Models loaded from files, over all workers (once per worker and model when reused)."""
    model_reuses: int = 0
    failures: list[Failure] = field(default_factory=list)
    results: list[TaskResult] = field(default_factory=list)
    """The successful attempts."""
    interrupted: bool = False

    @property
    def fps(self) -> float:
        """Frames processed per second of wall-clock time (worker start-up included)."""
        return self.frames / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def worker_processes(self) -> set[str]:
        return {r.worker for r in self.results}


class _Bar:
    """Files and frames across the collection, on stderr (a terminal) or nothing."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._progress: Any = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True)
        if not console.is_terminal:
            return
        self._progress = Progress(
            TextColumn("{task.description:<7}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._files = self._progress.add_task("inputs", total=total, info="")
        self._frames = self._progress.add_task("frames", total=None, info="")
        self._progress.start()

    def update(
        self, files: int, failed: int, frames: int, fps: float, total_frames: int | None
    ) -> None:
        if self._progress is None:
            return
        info = f"[red]{failed} failed[/]" if failed else ""
        self._progress.update(self._files, completed=files, info=info)
        self._progress.update(
            self._frames, completed=frames, total=total_frames, info=f"{fps:7.1f} frames/s"
        )

    @property
    def enabled(self) -> bool:
        return self._progress is not None

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def _write_failures(output_dir: Path, failures: list[Failure]) -> None:
    path = output_dir / FAILURES_FILE
    if not failures:
        path.unlink(missing_ok=True)  # an earlier run's failures are stale now
        return
    text = "".join(json.dumps(asdict(f)) + "\n" for f in failures)
    write_whole(path, text)


def _check_output_dir(out: Path) -> Path:
    """Create ``out`` if needed and prove it takes new files; BatchError in one line if not."""
    if out.exists() and not out.is_dir():
        raise BatchError(f"--output-dir {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = temp_path(out / "probe")
        with open(probe, "x"):
            pass
        probe.unlink()
    except (FileExistsError, NotADirectoryError):
        raise BatchError(f"--output-dir {out}: a part of that path is a file") from None
    except OSError as exc:
        reason = describe_os_error(exc)
        raise BatchError(f"cannot write into --output-dir {out}: {reason}") from None
    return out


def _check_side_packets(spec: Any, side_packets: dict[str, Any]) -> None:
    """Start the graph once with the side packets (no frame): a bad value fails here, once.

    Unknown or missing side packets, and values a node refuses when it opens
    (``num_faces=abc``), are configuration errors: retrying them on every input would
    only repeat them.
    """
    from facegraph import CalculatorError, Graph, GraphConfigError

    graph = Graph(spec, mode="deterministic")
    try:
        graph.start(side_packets)
    except GraphConfigError:
        raise
    except CalculatorError as exc:
        first = str(exc).strip().splitlines()[0]
        raise BatchError(f"the graph does not start with these side packets: {first}") from None
    graph.cancel()


def run_batch(
    graph: str | os.PathLike[str],
    inputs: str | os.PathLike[str] | Iterable[BatchInput],
    output_dir: str | os.PathLike[str],
    *,
    workers: int | None = None,
    ray_address: str | None = None,
    side_packets: Mapping[str, Any] | None = None,
    retries: int = 2,
    allow_imports: bool = False,
    mode: str = "deterministic",
    progress: bool = False,
    on_result: Callable[[TaskResult], object] | None = None,
) -> BatchSummary:
    """Process every input of a collection; skip the complete ones; retry, then report failures.

    - ``graph``: a shipped graph name or a YAML file; ``inputs``: see
      :func:`discover_inputs` (or the inputs themselves); ``output_dir``: created if needed.
    - ``workers``: processes (default: the CPU count, at most one per input); with
      ``ray_address`` (``"local"``, ``"auto"``, ``"HOST:PORT"``, ``"ray://..."``): Ray actors
      (default: the cluster's CPUs).
    - ``retries``: further attempts for an input that failed.
    - ``mode``: the workers' scheduler mode, ``deterministic`` (one thread) or ``threads``;
      the outputs are the same.
    - ``progress``: rich bars on stderr (when it is a terminal).
    - ``on_result(result)``: after each attempt (successful or not).

    Raises :class:`BatchError` before any work when the batch cannot start; a failing
    input never raises, it is reported in :attr:`BatchSummary.failures` and
    ``failures.jsonl``. A ``KeyboardInterrupt`` stops the batch (completed outputs stay
    complete; the summary says ``interrupted``).
    """
    if mode not in ("deterministic", "threads"):
        raise BatchError(f"mode must be 'deterministic' or 'threads', not {mode!r}")
    if retries < 0:
        raise BatchError(f"retries must be >= 0, got {retries}")
    if workers is not None and workers < 1:
        raise BatchError(f"workers must be >= 1, got {workers}")
    graph_text = os.fspath(graph)
    graph_path = Path(graph_text).expanduser()
    if graph_path.is_file():
        graph_text = os.path.abspath(graph_path)
    from facegraph import load_graph

    # Configuration errors fail fast, once, before any input or output is touched.
    spec = load_graph(graph_text, allow_imports=allow_imports)
    out = _check_output_dir(Path(output_dir).expanduser())
    _check_side_packets(spec, dict(side_packets or {}))
    items = discover_inputs(inputs) if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    config = BatchConfig(
        graph=graph_text,
        output_dir=os.path.abspath(out),
        side_packets=dict(side_packets or {}),
        allow_imports=allow_imports,
        mode=mode,
    )
    identity = config.graph_identity()
    summary = BatchSummary(total=len(items))
    todo = [item for item in items if not is_complete(config, item, identity)]
    summary.skipped = len(items) - len(todo)
    t0 = time.perf_counter()
    if not todo:
        _write_failures(out, [])
        return summary

    executor: _Executor
    if ray_address is not None:
        executor = _RayExecutor(config, workers, ray_address)
    else:
        executor = _LocalExecutor(config, workers or min(os.cpu_count() or 1, len(todo)))
    summary.workers = executor.workers
    summary.executor = executor.description

    pending: deque[tuple[BatchInput, int]] = deque((item, 0) for item in todo)
    in_flight = 0
    live: dict[str, int] = {}  # frames reported by running attempts, by output name
    attempts: dict[str, int] = {}  # failed attempts, by output name
    started: set[str] = set()  # inputs a worker has begun and not finished
    spared: Counter[str] = Counter()  # crashes not counted against an input
    lost: Counter[str] = Counter()  # attempts lost with a cluster node
    bar = _Bar(len(items), progress)
    bar.update(summary.skipped, 0, 0, 0.0, None)
    total_frames: list[int | None] = [None]
    if bar.enabled:
        threading.Thread(
            target=_count_frames, args=(todo, total_frames), name="count frames", daemon=True
        ).start()
    try:
        while pending or in_flight:
            while pending and executor.capacity() > 0:
                item, attempt = pending.popleft()
                executor.submit(item, attempt)
                in_flight += 1
                live[item.output] = 0
            results = executor.collect(timeout=0.2)
            for message in executor.progress():
                if message[0] == "start":
                    started.add(message[1])
                elif message[1] in live:
                    live[message[1]] = max(live[message[1]], message[2])
            for result in results:
                in_flight -= 1
                live.pop(result.input.output, None)
                was_running = result.input.output in started
                started.discard(result.input.output)
                if result.lost and lost[result.input.output] < MAX_LOST_RETRIES:
                    # A node of the cluster went away with this input: not its fault, no
                    # try used (bounded, should the cluster keep losing nodes).
                    lost[result.input.output] += 1
                    pending.appendleft((result.input, attempts.get(result.input.output, 0)))
                    continue
                if result.crashed and not was_running and spared[result.input.output] < 3:
                    # Queued behind the input that killed the worker: not its fault, no try used
                    # (a few times: a worker that dies before starting anything is no one's).
                    spared[result.input.output] += 1
                    pending.appendleft((result.input, attempts.get(result.input.output, 0)))
                    continue
                summary.model_loads += result.model_loads
                summary.model_reuses += result.model_reuses
                if on_result is not None:
                    on_result(result)
                if result.ok:
                    summary.done += 1
                    summary.frames += result.frames
                    summary.faces += result.faces
                    summary.results.append(result)
                    continue
                tries = attempts[result.input.output] = attempts.get(result.input.output, 0) + 1
                if tries <= retries:
                    pending.append((result.input, tries))
                else:
                    summary.failed += 1
                    summary.failures.append(
                        Failure(
                            result.input.path,
                            result.input.output,
                            tries,
                            result.error or "unknown error",
                        )
                    )
            elapsed = time.perf_counter() - t0
            frames = summary.frames + sum(live.values())
            bar.update(
                summary.done + summary.failed + summary.skipped,
                summary.failed,
                frames,
                frames / elapsed if elapsed > 0 else 0.0,
                total_frames[0],
            )
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
        executor.close()
        summary.elapsed = time.perf_counter() - t0
    _write_failures(out, summary.failures)
    return summary
