"""Keep an interpreter's XNNPACK worker threads off the CPU of the thread that invokes it.

Why: the Linux kernel places a woken thread by heuristics, and some kernels pack it onto
the waker's CPU. This project's 2-vCPU test machine does so whenever the other CPU ran
another process in the last tens of milliseconds (a MediaPipe block in ``facegraph
bench``, a decoder, a browser): XNNPACK's worker, woken by ``invoke``, then shares the
caller's CPU, the two take turns while the other CPU idles, and two threads run slower than
one. Detector + Attention Mesh invokes, two threads, after another process ran 40 ms:
3.3 ms per frame against 2.0 ms after a plain pause (one thread: 3.0 ms either way);
with the worker kept off the caller's CPU, 2.0-2.2 ms after either.

So before each invoke of an interpreter with worker threads, the workers' CPU affinity
becomes "any allowed CPU but the caller's" when the caller runs on another CPU than at
the last invoke (``sched_getcpu``, ~0.1 µs; the re-pin, a few µs, only on a change). The
caller itself is never pinned, and nothing else changes: the same kernels, the same
split of the work, the same bits.

Except for a model whose invokes overlap another's (two faces side by side, two graphs in
two threads), and while other threads of ours work beside the models (``facegraph run``'s
reader and writer call :func:`note_work_beside`): then the other CPU is another caller's, a
worker kept off its own caller's CPU would land there, and each model's own timing (what
``threads="auto"`` judges by) would favour two threads while the frame as a whole slows
down (two faces: 3.7 -> 4.7 ms per frame). Every invoke of ours is counted in flight; for
half a second after a model's invoke overlapped another, that model's workers are left to
the kernel (all of a model's interpreters share one record, see :class:`OverlapRecord`).
A model that runs alone between overlapping ones keeps its workers off its caller's CPU:
the detector of ``face_mesh_static`` before its two faces side by side (one CPU-heavy
process beside: 1.26 ms per detector invoke with its worker free, 0.8 with it kept off).

The workers are found as the native threads that appear while the interpreter is made
(pthreadpool starts them in the XNNPACK delegate's constructor), minus Python threads;
interpreters are made one at a time under a lock, and if the count is not ``threads - 1``
(another library started a thread meanwhile) nothing is pinned. Linux only; elsewhere,
with one allowed CPU, or if a re-pin fails, the workers are left alone.
``FACEGRAPH_WORKER_AFFINITY=0`` turns it off (for comparisons).
"""

from __future__ import annotations

import ctypes
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from facegraph.env_flags import env_flag

__all__ = [
    "OverlapRecord",
    "WorkerAffinity",
    "new_worker_threads",
    "note_work_beside",
    "wrap_invoke",
]

_TASKS = "/proc/self/task"
_lock = threading.Lock()


def _sched_getcpu() -> Callable[[], int] | None:
    if not env_flag("FACEGRAPH_WORKER_AFFINITY", default=True):
        return None
    if not hasattr(os, "sched_setaffinity") or not os.path.isdir(_TASKS):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).sched_getcpu
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = []
    getcpu: Callable[[], int] = fn
    return getcpu


_getcpu = _sched_getcpu()


def _native_threads() -> set[int]:
    try:
        return {int(t) for t in os.listdir(_TASKS)}
    except OSError:
        return set()


@contextmanager
def new_worker_threads(expected: int) -> Iterator[list[int]]:
    """Collects the native non-Python threads started inside the block (their thread
    ids, into the yielded list, filled on exit) when exactly ``expected`` start; else
    leaves the list empty. Blocks run one at a time."""
    found: list[int] = []
    if _getcpu is None or expected < 1:
        yield found
        return
    with _lock:
        before = _native_threads()
        yield found
        new = _native_threads() - before
    new -= {t.native_id for t in threading.enumerate() if t.native_id is not None}
    if len(new) == expected:
        found.extend(sorted(new))


#: How long after a model's invoke overlapped another the model's workers stay free (module
#: docstring): many frames at any camera's rate, so faces side by side never see a pinned
#: worker.
_OVERLAP_MEMORY_S = 0.5


class OverlapRecord:
    """When one model's invokes last overlapped another invoke of ours (monotonic seconds);
    shared by the model's interpreters (one per thread count), so that the one the
    thread chooser tries next is not judged pinned while the others run free."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last = -math.inf

    def recent(self) -> bool:
        """Whether the model's invokes overlapped another within ``_OVERLAP_MEMORY_S``."""
        return time.monotonic() - self.last <= _OVERLAP_MEMORY_S


class _InFlight:
    """Records of the invokes now running, and when other threads of ours last worked
    beside the models (:func:`note_work_beside`)."""

    __slots__ = ("beside", "running")

    def __init__(self) -> None:
        self.running: list[OverlapRecord] = []
        self.beside = -math.inf


_in_flight = _InFlight()
_in_flight_lock = threading.Lock()


def note_work_beside() -> None:
    """Another thread of ours is busy beside the models now (a video decoder, a writer):
    leave every model's workers to the kernel for the next half second. A worker kept off
    the models' CPU would share that thread's: with a video decoded on a reader thread,
    5-15 % more CPU and no faster (measured)."""
    _in_flight.beside = time.monotonic()  # one store: atomic under the GIL


class WorkerAffinity:
    """Called before each invoke: keeps ``workers`` (thread ids) off the caller's CPU,
    or, while the model's invokes overlap others, leaves them to the kernel (see
    ``_OVERLAP_MEMORY_S``). ``record``: the model's :class:`OverlapRecord` (default: one
    of its own)."""

    __slots__ = ("_allowed", "_cpu", "_pid", "_workers", "record")

    def __init__(self, workers: list[int], record: OverlapRecord | None = None) -> None:
        self.record = OverlapRecord() if record is None else record
        self._workers = list(workers) if _getcpu is not None else []
        try:
            self._allowed = frozenset(os.sched_getaffinity(0)) if self._workers else frozenset()
        except OSError:
            self._allowed = frozenset()
        if len(self._allowed) < 2:
            self._workers = []
        self._cpu = -1  # the CPU the workers are kept off; -1: they are free
        self._pid = os.getpid()

    def __call__(self, solo: bool = True) -> None:
        if not self._workers:
            return
        if not solo:
            if self._cpu != -1:
                self._set(self._allowed, -1)
            return
        cpu = _getcpu() if _getcpu is not None else -1
        if cpu == self._cpu or cpu < 0:
            return
        self._set(self._allowed - {cpu}, cpu)  # never empty: two or more are allowed

    def _set(self, cpus: frozenset[int], kept_off: int) -> None:
        if os.getpid() != self._pid:  # a forked child: the workers are the parent's threads
            self._workers = []
            return
        try:
            for tid in self._workers:
                os.sched_setaffinity(tid, cpus)
        except OSError:  # a worker gone (interpreter freed), or not ours to set
            self._workers = []
        self._cpu = kept_off


def wrap_invoke(invoke: Callable[[], Any], affinity: WorkerAffinity) -> Callable[[], Any]:
    """``invoke``, counted among the invokes in flight (every interpreter's, so that an
    overlap with a one-thread model shows too), preceded by ``affinity`` (which returns
    at once for an interpreter without workers). An invoke that starts while others run
    marks its own model and theirs as overlapping."""
    state, lock, monotonic = _in_flight, _in_flight_lock, time.monotonic
    record, running = affinity.record, _in_flight.running

    def counted_invoke() -> Any:
        now = monotonic()
        with lock:
            if running:
                record.last = now
                for other in running:
                    other.last = now
            running.append(record)
            solo = now - max(record.last, state.beside) > _OVERLAP_MEMORY_S
        try:
            affinity(solo)
            return invoke()
        finally:
            with lock:
                running.remove(record)

    return counted_invoke
