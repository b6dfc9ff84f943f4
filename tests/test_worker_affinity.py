"""XNNPACK's worker threads are kept off the CPU of the thread that invokes the model
(models/worker_affinity.py), except for models whose invokes overlap others; results
never change.

The workers are found here independently of the implementation: the native threads that
appear while the model is made and that are not Python threads. Each call runs on a
Python thread pinned to one CPU, so "the caller's CPU" is known; the test's own thread
is never pinned.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from facegraph.models import model_path
from facegraph.models.inference import TfLiteModel

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
    reason="CPU affinity of threads: Linux with 2+ CPUs",
)

MODEL = "face_detection_short_range"


@pytest.fixture(autouse=True)
def no_recent_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start as if no other thread of ours had worked beside the models lately (the
    module remembers that for half a second; each model made here is new, so it has no
    overlaps of its own yet)."""
    from facegraph.models import worker_affinity

    monkeypatch.setattr(worker_affinity._in_flight, "beside", -float("inf"))


def _native_threads() -> set[int]:
    return {int(t) for t in os.listdir("/proc/self/task")}


def _new_workers(make: Callable[[], Any]) -> tuple[Any, set[int]]:
    before = _native_threads()
    made = make()
    python = {t.native_id for t in threading.enumerate()}
    return made, _native_threads() - before - python


def _on_cpu(cpu: int, fn: Callable[[], Any]) -> Any:
    """``fn()`` on a new thread pinned to ``cpu`` (the caller stays as it is)."""
    out: list[Any] = []

    def run() -> None:
        os.sched_setaffinity(0, {cpu})
        out.append(fn())

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return out[0]


def _input(model: TfLiteModel) -> np.ndarray:
    d = model.input_details[0]
    return np.random.default_rng(1).integers(0, 256, d.shape).astype(d.dtype)


def test_the_worker_leaves_the_cpu_of_each_caller(model_cache: Path) -> None:
    allowed = os.sched_getaffinity(0)
    first, second = sorted(allowed)[:2]
    model, workers = _new_workers(lambda: TfLiteModel(model_path(MODEL), threads=2))
    assert len(workers) == 1  # pthreadpool's one worker beside the caller
    x = _input(model)
    want = TfLiteModel(model_path(MODEL), threads=1).run(x)
    for cpu in (first, second, first):
        got = _on_cpu(cpu, lambda: model.run(x))
        for w in workers:
            assert os.sched_getaffinity(w) == allowed - {cpu}, (cpu, w)
        for key in want:  # the same bits, wherever the worker runs
            np.testing.assert_array_equal(got[key], want[key])


class _HeldInvoke:
    """A one-thread model whose next invoke blocks until released (the real interpreter
    runs then), on its own thread: an invoke of ours held in flight."""

    def __init__(self) -> None:
        from facegraph.models.worker_affinity import WorkerAffinity, wrap_invoke

        self.model = TfLiteModel(model_path(MODEL), threads=1)
        step = self.model._plain
        assert step is not None
        self.entered, self.release = threading.Event(), threading.Event()
        real = step.interpreter.invoke

        def held_invoke() -> None:
            self.entered.set()
            assert self.release.wait(10)
            real()

        step.invoke = wrap_invoke(held_invoke, WorkerAffinity([]))
        x = _input(self.model)
        self.thread = threading.Thread(target=lambda: self.model.run(x))

    def __enter__(self) -> _HeldInvoke:
        self.thread.start()
        assert self.entered.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join()


def test_overlapping_invokes_leave_the_workers_free(
    model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another model's invoke is running, pinning would put this worker on that
    caller's CPU: the workers are left to the kernel instead, and stay so on the model's
    next invokes (faces side by side overlap frame after frame)."""
    from facegraph.models import worker_affinity

    # "Frame after frame": however slow the machine, the next invoke is within memory.
    monkeypatch.setattr(worker_affinity, "_OVERLAP_MEMORY_S", 1e9)
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    model, workers = _new_workers(lambda: TfLiteModel(model_path(MODEL), threads=2))
    x = _input(model)
    _on_cpu(cpu, lambda: model.run(x))
    assert all(os.sched_getaffinity(w) == allowed - {cpu} for w in workers)

    with _HeldInvoke():
        _on_cpu(cpu, lambda: model.run(x))
        assert all(os.sched_getaffinity(w) == allowed for w in workers)
    _on_cpu(cpu, lambda: model.run(x))  # alone now, but it overlapped a moment ago
    assert all(os.sched_getaffinity(w) == allowed for w in workers)


def test_a_model_alone_between_overlapping_ones_keeps_its_worker_off(
    model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """face_mesh_static's detector runs alone, then its faces side by side: the faces'
    overlap does not free the detector's worker."""
    from facegraph.models import worker_affinity

    monkeypatch.setattr(worker_affinity, "_OVERLAP_MEMORY_S", 1e9)
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    detector, workers = _new_workers(lambda: TfLiteModel(model_path(MODEL), threads=2))
    face = TfLiteModel(model_path(MODEL), threads=1)
    with _HeldInvoke():  # the other face, in flight
        face.run(_input(face))
    _on_cpu(cpu, lambda: detector.run(_input(detector)))
    assert all(os.sched_getaffinity(w) == allowed - {cpu} for w in workers)


@pytest.mark.parametrize("value", ["0", "off"])
def test_the_switch_turns_it_off(model_cache: Path, tmp_path: Path, value: str) -> None:
    """``FACEGRAPH_WORKER_AFFINITY=0`` (or ``off``): the workers keep every allowed CPU."""
    code = (
        "import os, threading\n"
        "from facegraph.models import model_path\n"
        "from facegraph.models.inference import TfLiteModel\n"
        "before = {int(t) for t in os.listdir('/proc/self/task')}\n"
        f"m = TfLiteModel(model_path({MODEL!r}), threads=2)\n"
        "new = {int(t) for t in os.listdir('/proc/self/task')} - before\n"
        "new -= {t.native_id for t in threading.enumerate()}\n"
        "d = m.input_details[0]\n"
        "import numpy as np; m.run(np.zeros(d.shape, d.dtype))\n"
        "allowed = os.sched_getaffinity(0)\n"
        "print(len(new), all(os.sched_getaffinity(w) == allowed for w in new))\n"
    )
    env = {**os.environ, "FACEGRAPH_WORKER_AFFINITY": value}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["1", "True"]
