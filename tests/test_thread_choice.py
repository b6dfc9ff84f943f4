"""threads="auto": the chooser's policy (made-up timings, no clock) and real models whose
outputs do not depend on which interpreter ran."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from facegraph.models import model_path
from facegraph.models.inference import TfLiteModel
from facegraph.models.thread_choice import ThreadChooser, auto_thread_count, check_threads


def drive(
    chooser: ThreadChooser,
    ms: dict[int, float],
    calls: int,
    switch_factor: float = 1.0,
    block: int | None = None,
) -> list[int]:
    """Run ``calls`` picks where arm i (by thread count) takes ms[count]; a call on another
    arm than the call before takes ``switch_factor`` times that (its weights were evicted
    from the cache; 2 is what this machine's 2 cores measured). With ``block``, every
    ``block``-th call (from the first) comes after a pause and takes 3 times as long on
    either arm (``facegraph bench`` runs frames in blocks of 10 after a pause)."""
    picked: list[int] = []
    for i in range(calls):
        arm = chooser.pick()
        threads = chooser.arms[arm]
        cold = not picked or picked[-1] != threads
        picked.append(threads)
        paused = 3.0 if block is not None and i % block == 0 else 1.0
        chooser.record(arm, ms[threads] * (switch_factor if cold else 1.0) * paused / 1000)
    return picked


def test_warm_up_runs_one_arm_at_a_time_and_ignores_each_arms_first_run() -> None:
    chooser = ThreadChooser([1, 2], warmup=3)
    # The first run of each arm is cold and not counted, so 4 runs each before any choice.
    assert drive(chooser, {1: 1.0, 2: 0.5}, 8) == [1] * 4 + [2] * 4
    assert chooser.runs == {1: 4, 2: 4}


def test_the_faster_arm_is_used_and_the_other_explored_in_bursts() -> None:
    chooser = ThreadChooser([1, 2], warmup=3, explore_every=25, burst=2)
    picked = drive(chooser, {1: 0.9, 2: 0.6}, 8 + 200)[8:]
    assert chooser.arms[chooser.best] == 2
    # Calls 25-26, 50-51, ..., 200-201 (counting from the first call of all).
    assert picked.count(1) == 16
    runs = "".join(str(p) for p in picked)
    assert "11" in runs and "111" not in runs and "212" not in runs
    assert picked.count(2) == 184


def test_an_arm_is_judged_on_warm_runs_not_on_the_cold_call_after_a_switch() -> None:
    # One thread is faster when run continuously (0.6 vs 0.8 ms), but every switch to it
    # costs a cold call (1.2 ms). Counting those calls would keep two threads forever.
    chooser = ThreadChooser([1, 2], warmup=3, explore_every=10, burst=2)
    drive(chooser, {1: 0.9, 2: 0.6}, 40, switch_factor=2.0)  # two threads first
    assert chooser.arms[chooser.best] == 2
    picked = drive(chooser, {1: 0.6, 2: 0.8}, 200, switch_factor=2.0)
    assert chooser.arms[chooser.best] == 1
    assert picked[-100:].count(1) > 75  # settled on one thread, exploring two


def test_exploration_does_not_alias_with_blocks_of_frames() -> None:
    """Frames in blocks of 10 after a pause, two threads faster once warm (as measured in
    the benchmark: 0.43 vs 0.65 ms) and a switch costing a cold call. With explorations
    every 50 calls exactly, each one's counted call fell on a block's slow first frame and
    one thread won for good; at random gaps two threads win."""
    chooser = ThreadChooser([1, 2], warmup=3, explore_every=50, burst=2)
    # A busy spell first (two threads slower), so one thread is in use; 60 calls, so that
    # with a fixed period the counted call of each exploration is a block's first.
    drive(chooser, {1: 0.65, 2: 1.5}, 60)
    assert chooser.arms[chooser.best] == 1
    picked = drive(chooser, {1: 0.65, 2: 0.43}, 1000, switch_factor=1.3, block=10)
    assert chooser.arms[chooser.best] == 2
    assert picked[-300:].count(2) > 250


def test_a_cold_first_run_does_not_decide() -> None:
    chooser = ThreadChooser([1, 2], warmup=2)
    arm = chooser.pick()
    chooser.record(arm, 1.0)  # arm 1's first run: 1 s (weights packed), not counted
    drive(chooser, {1: 0.5, 2: 0.9}, 60)
    assert chooser.arms[chooser.best] == 1


def test_load_change_moves_the_choice_and_back() -> None:
    chooser = ThreadChooser([1, 2], window=9, warmup=3, explore_every=10)
    drive(chooser, {1: 0.9, 2: 0.6}, 50)  # idle: two threads win
    assert chooser.arms[chooser.best] == 2
    # Busy machine: the second thread waits for a core, two threads get slower than one.
    drive(chooser, {1: 1.2, 2: 2.5}, 50)
    assert chooser.arms[chooser.best] == 1
    # Idle again: exploration sees two threads fast again and switches back.
    drive(chooser, {1: 0.9, 2: 0.6}, 200)
    assert chooser.arms[chooser.best] == 2


def test_the_first_exploration_after_a_busy_spell_switches_back() -> None:
    """The explored arm's figures from the busy spell are stale: one exploration that
    finds it fast again replaces them with fresh runs and switches (before, each
    exploration replaced one of nine busy figures, and switching back took five)."""
    chooser = ThreadChooser([1, 2], window=9, warmup=3, explore_every=10, burst=2)
    drive(chooser, {1: 0.9, 2: 0.6}, 50)
    drive(chooser, {1: 1.2, 2: 2.5}, 50)  # nine busy figures of two threads
    assert chooser.arms[chooser.best] == 1
    picked = drive(chooser, {1: 0.9, 2: 0.6}, 25)  # gaps of 5-15 calls: one exploration
    assert chooser.arms[chooser.best] == 2
    assert picked[-10:].count(2) >= 7  # in use, but for the next exploration


def test_an_exploration_slower_than_the_arm_in_use_stays_short() -> None:
    """On a steady machine an exploration costs its burst only: the explored arm's
    counted run is slower than the arm in use, so its figures stay and it is not run on."""
    chooser = ThreadChooser([1, 2], warmup=3, explore_every=25, burst=2)
    picked = drive(chooser, {1: 0.9, 2: 0.6}, 8 + 400)[8:]
    runs = "".join(str(p) for p in picked)
    assert "111" not in runs and picked.count(1) == 2 * runs.count("211")


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="at least two arms"):
        ThreadChooser([1])
    with pytest.raises(ValueError, match="warmup"):
        ThreadChooser([1, 2], window=2, warmup=3)
    with pytest.raises(ValueError, match="burst"):
        ThreadChooser([1, 2], burst=1)
    with pytest.raises(ValueError, match="burst"):
        ThreadChooser([1, 2], burst=5, explore_every=5)
    assert check_threads("auto") == "auto" and check_threads(3) == 3
    for bad in (0, -1, "two", 1.5, True, None):
        with pytest.raises(ValueError, match="threads must be an integer >= 1 or 'auto'"):
            check_threads(bad)
    assert 1 <= auto_thread_count() <= 2


def test_an_untimed_call_counts_as_a_run_and_makes_the_next_switch_cold() -> None:
    chooser = ThreadChooser([1, 2], warmup=3, explore_every=25, burst=2)
    drive(chooser, {1: 0.9, 2: 0.6}, 8)  # warmed up: two threads best
    assert chooser.arms[chooser.best] == 2
    times = [list(t) for t in chooser._times]
    chooser.record_untimed(0)  # a call on one thread that pick() did not choose
    assert chooser.runs == {1: 5, 2: 4}
    arm = chooser.pick()
    assert chooser.arms[arm] == 2
    chooser.record(arm, 5.0)  # cold after the one-thread call: not counted
    assert [list(t) for t in chooser._times] == times


MODELS = [
    "face_detection_short_range",
    "face_landmark_with_attention",
    "iris_landmark",
    "face_landmarks_v2",
    "face_blendshapes",
    "face_landmarker_detector",
]


@pytest.mark.parametrize("name", MODELS)
def test_auto_gives_the_one_thread_bits_whichever_arm_runs(name: str, model_cache: Path) -> None:
    """Every shipped model: a threads="auto" model's outputs equal a 1-thread model's, bit
    for bit, on every call — so warm-up, exploration and load never change a result."""
    one = TfLiteModel(model_path(name), threads=1)
    auto = TfLiteModel(model_path(name), threads="auto")
    rng = np.random.default_rng(7)
    inputs = [
        {d.name: rng.uniform(0, 1, d.shape).astype(d.dtype) for d in one.input_details}
        for _ in range(3)
    ]
    for k in range(40):  # warm-up turns, then exploitation with one exploration
        x = inputs[k % 3]
        want, got = one.run(x), auto.run(x)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    runs = auto.thread_runs
    assert sum(runs.values()) == 40
    if auto_thread_count() > 1:
        assert set(runs) == {1, 2} and min(runs.values()) >= 4  # both ran (warm-up)
    assert one.thread_runs == {}


def test_nodes_default_to_auto_and_accept_a_count(model_cache: Path) -> None:
    from facegraph import load_graph
    from facegraph.spec import walk_nodes

    spec = load_graph("face_landmarker")
    threaded = {
        name: n.options.threads
        for name, n in walk_nodes(spec)
        if "threads" in type(n.options).model_fields
    }
    assert threaded and set(threaded.values()) == {"auto"}


def test_a_bad_threads_option_names_the_node_and_line() -> None:
    from facegraph.config import graph_from_yaml
    from facegraph.errors import FacegraphError

    text = (
        "inputs: [x]\n"
        "nodes:\n"
        "  - calculator: TfLiteInference\n"
        "    name: infer\n"
        "    inputs: {TENSORS: x}\n"
        "    outputs: {TENSORS: y}\n"
        "    options: {model: iris_landmark, threads: two}\n"
    )
    with pytest.raises(FacegraphError) as info:
        graph_from_yaml(text, file="g.yaml")
    problems = [line for line in str(info.value).splitlines() if "g.yaml" in line]
    assert len(problems) == 1  # one problem, not one per member of int | "auto"
    assert "g.yaml:7: node 'infer': option 'threads'" in problems[0]
    assert "integer >= 1 or 'auto', got 'two'" in problems[0]


def test_a_model_beside_another_runs_one_thread_on_a_machine_they_fill(
    model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two CPUs, two models invoking at once (faces side by side): each already has a
    CPU, so an "auto" model runs its one-thread interpreter there, untimed; once the
    overlap is over it chooses again."""
    import threading

    from facegraph.models import inference, worker_affinity

    monkeypatch.setattr(inference, "allowed_cpu_count", lambda: 2)
    monkeypatch.setattr(inference, "auto_thread_count", lambda: 2)
    name = "face_detection_short_range"
    model = TfLiteModel(model_path(name), threads="auto")
    other = TfLiteModel(model_path(name), threads=1)
    d = model.input_details[0]
    x = np.zeros(d.shape, d.dtype)
    for _ in range(12):  # warm-up of both arms, alone
        model.run(x)
    alone = model.thread_runs
    assert set(alone) == {1, 2}

    stop, started = threading.Event(), threading.Event()

    def beside() -> None:
        while not stop.is_set():
            started.set()
            other.run(x)

    thread = threading.Thread(target=beside)
    thread.start()
    try:
        assert started.wait(30)
        # Until one of our invokes starts while the other model's runs (back to back
        # there, so within a few calls), then 30 more calls beside it.
        for _ in range(2000):
            model.run(x)
            if model._overlaps.recent():
                break
        assert model._overlaps.recent()
        chooser = model._chooser
        assert chooser is not None
        before, picks = model.thread_runs, chooser._calls
        times = [list(t) for t in chooser._times]
        for _ in range(30):
            model.run(x)
        after = model.thread_runs
        assert after[1] - before[1] == 30 and after[2] == before[2]
        assert chooser._calls == picks  # not chosen per call, and not timed:
        assert [list(t) for t in chooser._times] == times
    finally:
        stop.set()
        thread.join()
    # Overlap over (its memory set to nothing here, instead of waiting half a second):
    # the chooser picks every call again.
    monkeypatch.setattr(worker_affinity, "_OVERLAP_MEMORY_S", -1.0)
    chooser = model._chooser
    assert chooser is not None
    picks = chooser._calls
    for _ in range(10):
        model.run(x)
    assert chooser._calls == picks + 10
