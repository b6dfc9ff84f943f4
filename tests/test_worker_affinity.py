"""XNNPACK's worker threads are kept off the CPU of the thread that invokes the model
(models/worker_affinity.py), except while invokes overlap; results never change.

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
    """Start as if no two invokes had overlapped lately (other tests run faces side by
    side, and the module remembers that for half a second)."""
    from facegraph.models import worker_affinity

    monkeypatch.setattr(worker_affinity._in_flight, "last_overlap", -float("inf"))


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


def test_overlapping_invokes_leave_the_workers_free(model_cache: Path) -> None:
    """While another model's invoke is running, pinning would put this worker on that
    caller's CPU: the workers are left to the kernel instead."""
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    model, workers = _new_workers(lambda: TfLiteModel(model_path(MODEL), threads=2))
    x = _input(model)
    _on_cpu(cpu, lambda: model.run(x))
    assert all(os.sched_getaffinity(w) == allowed - {cpu} for w in workers)

    # Another model whose invoke is held open while ours runs: a LiteRT step whose
    # invoke blocks on an event (the real interpreter runs once it is released).
    other = TfLiteModel(model_path(MODEL), threads=1)
    step = other._plain
    assert step is not None
    entered, release = threading.Event(), threading.Event()
    real = step.interpreter.invoke

    def held_invoke() -> None:
        entered.set()
        assert release.wait(10)
        real()

    from facegraph.models.worker_affinity import WorkerAffinity, wrap_invoke

    step.invoke = wrap_invoke(held_invoke, WorkerAffinity([]))
    holder = threading.Thread(target=lambda: other.run(_input(other)))
    holder.start()
    try:
        assert entered.wait(10)
        _on_cpu(cpu, lambda: model.run(x))
        assert all(os.sched_getaffinity(w) == allowed for w in workers)
    finally:
        release.set()
        holder.join()


def test_the_switch_turns_it_off(model_cache: Path, tmp_path: Path) -> None:
    """``FACEGRAPH_WORKER_AFFINITY=0``: the workers keep every allowed CPU."""
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
    env = {**os.environ, "FACEGRAPH_WORKER_AFFINITY": "0"}
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
