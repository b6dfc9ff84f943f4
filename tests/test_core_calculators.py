"""The core calculators (facegraph.calculators), run through real graphs: YAML → Graph.

Each test builds a small graph from YAML, feeds packets, and checks what comes
out, with timestamps. Helper nodes used only here are registered under
``CoreTest*`` names. Tests marked with both modes run in the deterministic and
the thread-pool scheduler and must give the same results.
"""

from __future__ import annotations

import logging
import textwrap
import threading
import time
from itertools import accumulate
from typing import Any

import pytest
from facegraph import (
    Calculator,
    CalculatorContext,
    FacegraphError,
    Graph,
    GraphConfigError,
    Input,
    Output,
    Packet,
    SideInput,
    register,
)
from facegraph.config import graph_from_yaml
from facegraph.timestamp import PRE_STREAM
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

MODES = ["deterministic", "threads"]


# -- helper nodes ------------------------------------------------------------------------------


class _Opts(BaseModel):
    model_config = ConfigDict(extra="forbid")


@register("CoreTestFoldAdd")
class FoldAdd(Calculator):
    """Test node: SUM = X + PREV (PREV missing counts as 0); X values in ``skip`` emit nothing."""

    class Options(_Opts):
        skip: list[int] = []

    X: Input[int] = Input("X", int)
    PREV: Input[int] = Input("PREV", int)
    SUM: Output[int] = Output("SUM", int)

    def process(self, ctx: CalculatorContext) -> None:
        x = ctx.get(self.X)
        if x is None or x in self.options.skip:
            return
        ctx.emit(self.SUM, x + (ctx.get(self.PREV) or 0))


@register("CoreTestJoin")
class Join(Calculator):
    """Test node: emits (a, b) at each timestamp with an A packet (b is None when B has none).

    With ``require_b`` it emits only when B carries a truthy value.
    """

    class Options(_Opts):
        require_b: bool = False

    A: Input[Any] = Input("A")
    B: Input[Any] = Input("B")
    OUT: Output[Any] = Output("OUT")

    def process(self, ctx: CalculatorContext) -> None:
        a, b = ctx.get(self.A), ctx.get(self.B)
        if a is None or (self.options.require_b and not b):
            return
        ctx.emit(self.OUT, (a, b))


@register("CoreTestMap")
class Map(Calculator):
    """Test node: squares (optionally) each value; values in ``drop`` emit nothing."""

    class Options(_Opts):
        square: bool = False
        drop: list[int] = []
        sleep_s: float = 0.0

    IN: Input[Any] = Input("IN")
    OUT: Output[Any] = Output("OUT")

    def process(self, ctx: CalculatorContext) -> None:
        value = ctx.get(self.IN)
        if self.options.sleep_s:
            time.sleep(self.options.sleep_s)
        if value is None or value in self.options.drop:
            return
        ctx.emit(self.OUT, value * value if self.options.square else value)


@register("CoreTestHold")
class Hold(Calculator):
    """Test node: waits for GATES[t] (a threading.Event) before passing the packet at t on.

    Values in ``drop`` are swallowed (no output at t, only the bound advances).
    """

    class Options(_Opts):
        drop: list[Any] = []

    IN: Input[Any] = Input("IN")
    GATES: SideInput[dict[int, threading.Event]] = SideInput("GATES")
    OUT: Output[Any] = Output("OUT")

    def process(self, ctx: CalculatorContext) -> None:
        gate = (ctx.side(self.GATES) or {}).get(ctx.timestamp)
        if gate is not None and not gate.wait(10):
            raise TimeoutError(f"gate {ctx.timestamp} never opened")
        value = ctx.get(self.IN)
        if value is not None and value not in self.options.drop:
            ctx.emit(self.OUT, value)


@register("CoreTestSwallow")
class Swallow(Calculator):
    """Test node that changes nothing but never advances its bound on its own.

    Passes IN on at the same timestamp, except values in ``drop``, for which it emits
    nothing and (unlike offset-0 nodes) says nothing: downstream cannot tell "not yet"
    from "never" until its next packet or the end of the stream.
    """

    class Options(_Opts):
        drop: list[Any] = []

    IN: Input[Any] = Input("IN")
    OUT: Output[Any] = Output("OUT")
    timestamp_offset = None

    def process(self, ctx: CalculatorContext) -> None:
        value = ctx.get(self.IN)
        if value is not None and value not in self.options.drop:
            ctx.emit(self.OUT, value, timestamp=ctx.timestamp)


# -- running graphs ----------------------------------------------------------------------------

Feed = list[tuple[str, int, Any]]


def build(yaml_text: str, mode: str = "deterministic") -> tuple[Graph, dict[str, list]]:
    """A graph from YAML, with every graph output observed into a list of (ts, value)."""
    spec = graph_from_yaml(textwrap.dedent(yaml_text))
    graph = Graph(spec, mode=mode)
    got: dict[str, list[tuple[int, Any]]] = {s: [] for s in spec.output_streams}
    for stream, sink in got.items():
        graph.observe(stream, lambda p, sink=sink: sink.append((p.timestamp, p.value)))
    return graph, got


def run(
    yaml_text: str,
    feed: Feed,
    *,
    sides: dict[str, Any] | None = None,
    mode: str = "deterministic",
) -> dict[str, list[tuple[int, Any]]]:
    """Run a graph over ``feed`` ((stream, timestamp, value) in order) to the end."""
    graph, got = build(yaml_text, mode)
    graph.start(sides or {})
    for stream, ts, value in feed:
        graph.add_packet(stream, value, ts)
    graph.close_all_inputs()
    graph.wait_until_done()
    return {k: sorted(v, key=lambda tv: tv[0]) for k, v in got.items()}


# -- PassThrough -------------------------------------------------------------------------------

PASS_THROUGH = """
inputs: [a, b]
outputs: [a2, b2, side_stream]
side_inputs: {s: {}}
nodes:
  - calculator: PassThrough
    inputs: {IN: [a, b]}
    outputs: {OUT: [a2, b2]}
    side_inputs: {SIDE: s}
    side_outputs: {SIDE: s2}
  - calculator: SidePacketToStream
    side_inputs: {VALUE: s2}
    outputs: {OUT: side_stream}
    options: {timestamp_us: 7}
"""


def test_pass_through_forwards_each_indexed_stream_and_side_packet() -> None:
    got = run(
        PASS_THROUGH,
        [("a", 0, "a0"), ("b", 0, "b0"), ("a", 1, "a1"), ("b", 2, "b2")],
        sides={"s": "hello"},
    )
    assert got["a2"] == [(0, "a0"), (1, "a1")]
    assert got["b2"] == [(0, "b0"), (2, "b2")]
    assert got["side_stream"] == [(7, "hello")]


# -- PreviousLoopback: the running fold --------------------------------------------------------

FOLD = """
inputs: [x]
outputs: [sum, prev]
nodes:
  - calculator: PreviousLoopback
    inputs: {MAIN: x, LOOP: {stream: sum, back_edge: true}}
    outputs: {PREV_LOOP: prev}
  - calculator: CoreTestFoldAdd
    inputs: {X: x, PREV: prev}
    outputs: {SUM: sum}
    options: {skip: SKIP}
"""


def fold_graph(skip: list[int] | None = None) -> str:
    return FOLD.replace("SKIP", str(skip or []))


@pytest.mark.parametrize("mode", MODES)
def test_loopback_running_fold(mode: str) -> None:
    xs = [3, 1, 4, 1, 5, 9, 2, 6]
    stamps = [100 * (i + 1) for i in range(len(xs))]
    got = run(fold_graph(), [("x", t, x) for t, x in zip(stamps, xs, strict=True)], mode=mode)
    sums = list(accumulate(xs))
    assert got["sum"] == list(zip(stamps, sums, strict=True))
    # The previous sum, re-stamped to the current frame; nothing on the first frame.
    assert got["prev"] == list(zip(stamps[1:], sums[:-1], strict=True))


@pytest.mark.parametrize("mode", MODES)
def test_loopback_emits_nothing_after_a_frame_without_a_loop_value(mode: str) -> None:
    # Frame 30 produces no sum (skipped), so frame 40 gets no PREV_LOOP packet, only a bound:
    # its sum restarts from 0, and the fold carries on from there.
    feed = [("x", 10, 1), ("x", 20, 2), ("x", 30, -1), ("x", 40, 3), ("x", 50, 4)]
    got = run(fold_graph(skip=[-1]), feed, mode=mode)
    assert got["sum"] == [(10, 1), (20, 3), (40, 3), (50, 7)]
    assert got["prev"] == [(20, 1), (30, 3), (50, 3)]


@settings(max_examples=25, deadline=None)
@given(
    xs=st.lists(st.integers(-50, 50), min_size=1, max_size=30),
    gaps=st.lists(st.integers(1, 1000), min_size=30, max_size=30),
)
def test_loopback_fold_matches_accumulate(xs: list[int], gaps: list[int]) -> None:
    stamps = list(accumulate(gaps[: len(xs)]))
    got = run(fold_graph(), [("x", t, x) for t, x in zip(stamps, xs, strict=True)])
    assert got["sum"] == list(zip(stamps, accumulate(xs), strict=True))


def test_loopback_without_any_loop_value_only_advances_bounds() -> None:
    # Every frame is skipped: PREV_LOOP never carries a packet, yet FoldAdd (a sync node
    # waiting on PREV_LOOP) runs at every frame and the graph finishes.
    got = run(fold_graph(skip=[7]), [("x", t, 7) for t in (1, 2, 3)])
    assert got == {"sum": [], "prev": []}


# -- Gate ---------------------------------------------------------------------------------------

GATE_STREAM = """
inputs: [x, allow]
outputs: [gated, joined, changes]
nodes:
  - calculator: Gate
    inputs: {IN: x, CONTROL: allow}
    outputs: {OUT: gated, STATE_CHANGE: changes}
    OPTIONS
  - calculator: CoreTestJoin
    inputs: {A: x, B: gated}
    outputs: {OUT: joined}
"""


def gate_graph(control: str = "ALLOW", options: str = "") -> str:
    return GATE_STREAM.replace("CONTROL", control).replace(
        "OPTIONS", f"options: {options}" if options else ""
    )


@pytest.mark.parametrize("mode", MODES)
def test_gate_by_allow_stream(mode: str) -> None:
    flags = [True, False, False, True, False]
    feed: Feed = []
    for t, flag in enumerate(flags):
        feed += [("x", t, f"x{t}"), ("allow", t, flag)]
    got = run(gate_graph(), feed, mode=mode)
    assert got["gated"] == [(0, "x0"), (3, "x3")]
    # The downstream sync node fires at every timestamp: the gate's bound moved on.
    assert got["joined"] == [(t, (f"x{t}", f"x{t}" if flags[t] else None)) for t in range(5)]
    assert got["changes"] == [(1, False), (3, True), (4, False)]


def test_gate_bounds_let_downstream_run_before_inputs_close() -> None:
    graph, got = build(gate_graph())
    graph.start({})
    for t in range(4):
        graph.add_packet("x", f"x{t}", t)
        graph.add_packet("allow", t % 2 == 0, t)
    graph.wait_until_idle()
    # All four timestamps reached the join although the gate dropped two of them.
    assert [t for t, _ in got["joined"]] == [0, 1, 2, 3]
    graph.close_all_inputs()
    graph.wait_until_done()


def test_gate_by_disallow_stream_and_empty_packets() -> None:
    feed: Feed = [("x", t, t) for t in range(4)] + [("allow", 1, True), ("allow", 2, False)]
    feed.sort(key=lambda e: e[1])
    # DISALLOW at 1 drops x1; no control packet at 0 and 3: disallowed by default...
    got = run(gate_graph("DISALLOW"), feed)
    assert got["gated"] == [(2, 2)]
    # ... allowed with empty_packets_as_allow (the face graph's "skip the detector" gate).
    got = run(gate_graph("DISALLOW", "{empty_packets_as_allow: true}"), feed)
    assert got["gated"] == [(0, 0), (2, 2), (3, 3)]
    assert [t for t, _ in got["joined"]] == [0, 1, 2, 3]


GATE_SIDE = """
inputs: [x]
outputs: [gated, joined]
side_inputs: {flag: {}}
nodes:
  - calculator: Gate
    inputs: {IN: x}
    side_inputs: {CONTROL: flag}
    outputs: {OUT: gated}
  - calculator: CoreTestJoin
    inputs: {A: x, B: gated}
    outputs: {OUT: joined}
"""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("control", "flag", "passes"),
    [("ALLOW", True, True), ("ALLOW", False, False), ("DISALLOW", True, False)],
)
def test_gate_by_side_packet(mode: str, control: str, flag: bool, passes: bool) -> None:
    feed: Feed = [("x", t, t) for t in range(3)]
    got = run(GATE_SIDE.replace("CONTROL", control), feed, sides={"flag": flag}, mode=mode)
    assert got["gated"] == ([(t, t) for t in range(3)] if passes else [])
    assert got["joined"] == [(t, (t, t if passes else None)) for t in range(3)]


def test_gate_without_control_uses_the_allow_option() -> None:
    text = """
    inputs: [x]
    outputs: [gated]
    nodes:
      - calculator: Gate
        inputs: {IN: x}
        outputs: {OUT: gated}
        options: {allow: ALLOW}
    """
    assert run(text.replace("ALLOW", "false"), [("x", 0, 1)])["gated"] == []
    assert run(text.replace("ALLOW", "true"), [("x", 0, 1)])["gated"] == [(0, 1)]


def test_gate_rejects_two_controls() -> None:
    text = """
    inputs: [x, a, d]
    outputs: [gated]
    nodes:
      - calculator: Gate
        inputs: {IN: x, ALLOW: a, DISALLOW: d}
        outputs: {OUT: gated}
    """
    with pytest.raises(FacegraphError, match="one control"):
        run(text, [("x", 0, 1)])


def test_gate_passes_several_streams_together() -> None:
    text = """
    inputs: [a, b, allow]
    outputs: [a2, b2]
    nodes:
      - calculator: Gate
        inputs: {IN: [a, b], ALLOW: allow}
        outputs: {OUT: [a2, b2]}
    """
    feed: Feed = [("a", 0, "a0"), ("b", 0, "b0"), ("allow", 0, True)]
    feed += [("a", 1, "a1"), ("b", 1, "b1"), ("allow", 1, False)]
    feed += [("b", 2, "b2"), ("allow", 2, True)]
    got = run(text, feed)
    assert got == {"a2": [(0, "a0")], "b2": [(0, "b0"), (2, "b2")]}


def test_gate_closed_by_side_packet_closes_its_outputs_at_open() -> None:
    graph, got = build(GATE_SIDE.replace("CONTROL", "ALLOW"))
    graph.start({"flag": False})
    graph.add_packet("x", 1, 0)
    graph.wait_until_idle()
    assert got["joined"] == [(0, (1, None))]
    graph.close_all_inputs()
    graph.wait_until_done()
    assert got["gated"] == []


@pytest.mark.parametrize("mode", MODES)
def test_gate_closed_by_side_packet_is_not_called_per_packet(mode: str) -> None:
    """A branch switched off for the run (the face graphs' blendshapes and head pose)
    costs one call, not one per frame, and the rest of the graph runs as before."""
    graph, got = build(GATE_SIDE.replace("CONTROL", "ALLOW"), mode)
    graph.start({"flag": False})
    for t in range(20):
        graph.add_packet("x", t, t)
    graph.close_all_inputs()
    graph.wait_until_done()
    assert got["gated"] == []
    assert sorted(got["joined"]) == [(t, (t, None)) for t in range(20)]
    calls = {n.calculator: n.calls for n in graph.stats().nodes}  # process + close calls
    assert calls["Gate"] == 2  # one process (it stops there), then close
    assert calls["CoreTestJoin"] == 21


# -- FlowLimiter --------------------------------------------------------------------------------

LIMITED = """
inputs: [frame]
outputs: [out, allowed, limited]
side_inputs: {gates: {}}
nodes:
  - calculator: FlowLimiter
    inputs: {IN: frame, FINISHED: {stream: out, back_edge: true}}
    outputs: {OUT: limited, ALLOW: allowed}
    options: OPTIONS
  - calculator: CoreTestHold
    inputs: {IN: limited}
    outputs: {OUT: out}
    side_inputs: {GATES: gates}
    options: {drop: [f0_dropped]}
"""


def limited_graph(**options: int) -> str:
    return LIMITED.replace("OPTIONS", str(options or {}).replace("'", ""))


def wait_for(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


def test_flow_limiter_drops_while_busy_and_keeps_the_newest() -> None:
    # The section holds frame 0 until the test opens its gate: the limiter is busy.
    gates = {0: threading.Event()}
    graph, got = build(limited_graph(max_in_flight=1, max_in_queue=1), mode="threads")
    graph.start({"gates": gates})
    for t in range(4):
        graph.add_packet("frame", f"f{t}", t)
    wait_for(lambda: len(got["allowed"]) == 3, "decisions on frames 0-2")
    assert got["limited"] == [(0, "f0")]  # 1 and 2 pushed out of the queue, 3 waiting
    assert got["allowed"] == [(0, True), (1, False), (2, False)]
    gates[0].set()  # frame 0 finishes: the newest frame, 3, goes next
    graph.close_all_inputs()
    graph.wait_until_done()
    assert [t for t, _ in got["out"]] == [0, 3]
    assert got["allowed"] == [(0, True), (1, False), (2, False), (3, True)]


def test_flow_limiter_counts_a_frame_without_output_as_finished() -> None:
    # Frame 0 produces no output: FINISHED's bound moving past 0 frees the limiter.
    gates = {0: threading.Event()}
    graph, got = build(limited_graph(max_in_flight=1, max_in_queue=1), mode="threads")
    graph.start({"gates": gates})
    for t, value in enumerate(["f0_dropped", "f1", "f2"]):
        graph.add_packet("frame", value, t)
    wait_for(lambda: len(got["allowed"]) == 2, "decisions on frames 0-1")
    gates[0].set()  # frame 0 ends without output; only FINISHED's bound moves past 0
    wait_for(lambda: (2, "f2") in got["limited"], "the queued frame 2 to be admitted")
    graph.add_packet("frame", "f5", 5)
    graph.close_all_inputs()
    graph.wait_until_done()
    assert got["out"] == [(2, "f2"), (5, "f5")]
    assert got["allowed"] == [(0, True), (1, False), (2, True), (5, True)]


def test_flow_limiter_max_in_flight_two_without_queue() -> None:
    gates = {0: threading.Event(), 1: threading.Event()}
    graph, got = build(limited_graph(max_in_flight=2, max_in_queue=0), mode="threads")
    graph.start({"gates": gates})
    for t in range(4):
        graph.add_packet("frame", f"f{t}", t)
    wait_for(lambda: len(got["allowed"]) == 4, "decisions on frames 0-3")
    assert got["allowed"] == [(0, True), (1, True), (2, False), (3, False)]
    for gate in gates.values():
        gate.set()
    graph.close_all_inputs()
    graph.wait_until_done()
    assert got["out"] == [(0, "f0"), (1, "f1")]


def test_flow_limiter_auxiliary_streams_follow_the_main_decision() -> None:
    text = """
    inputs: [frame, meta]
    outputs: [limited, limited_meta]
    side_inputs: {gates: {}}
    nodes:
      - calculator: FlowLimiter
        inputs: {IN: [frame, meta], FINISHED: {stream: out, back_edge: true}}
        outputs: {OUT: [limited, limited_meta]}
      - calculator: CoreTestHold
        inputs: {IN: limited}
        outputs: {OUT: out}
        side_inputs: {GATES: gates}
    """
    gates = {0: threading.Event()}
    graph, got = build(text, mode="threads")
    graph.start({"gates": gates})
    graph.add_packet("meta", "m0", 0)  # auxiliary packets may come before their frame
    graph.add_packet("frame", "f0", 0)
    graph.add_packet("frame", "f1", 1)
    graph.add_packet("meta", "m1", 1)
    wait_for(lambda: got["limited_meta"] == [(0, "m0")], "frame 0's auxiliary packet")
    gates[0].set()
    graph.add_packet("meta", "m2", 2)
    graph.close_all_inputs()
    graph.wait_until_done()
    assert got["limited"] == [(0, "f0")]  # frame 1 came while 0 was in flight: dropped
    assert got["limited_meta"] == [(0, "m0")]  # m1 follows its dropped frame; m2 has none


def test_flow_limiter_in_flight_timeout() -> None:
    # The section swallows frame 0 without advancing its bound: only the timeout (in
    # stream time) frees the limiter, at the first frame more than 100 us later.
    text = """
    inputs: [frame]
    outputs: [limited]
    nodes:
      - calculator: FlowLimiter
        inputs: {IN: frame, FINISHED: {stream: out, back_edge: true}}
        outputs: {OUT: limited}
        options: {max_in_flight: 1, max_in_queue: 1, in_flight_timeout_us: 100}
      - calculator: CoreTestSwallow
        inputs: {IN: limited}
        outputs: {OUT: out}
        options: {drop: [0]}
    """
    got = run(text, [("frame", t, t) for t in (0, 50, 150, 170)])
    # 50 waits in the queue until 150 (> 0 + 100) times frame 0 out; then 50 and 150
    # finish normally, 170 too.
    assert got["limited"] == [(0, 0), (50, 50), (150, 150), (170, 170)]


def test_flow_limiter_live_camera_with_threads() -> None:
    # A slow section behind the limiter; frames come faster than it can process them.
    text = """
    inputs: [frame]
    outputs: [out, allowed]
    nodes:
      - calculator: FlowLimiter
        inputs: {IN: frame, FINISHED: {stream: out, back_edge: true}}
        outputs: {OUT: limited, ALLOW: allowed}
        options: {max_in_flight: 1, max_in_queue: 1}
      - calculator: CoreTestMap
        inputs: {IN: limited}
        outputs: {OUT: out}
        options: {sleep_s: 0.02}
    """
    n = 30
    got = run(text, [("frame", t, t) for t in range(n)], mode="threads")
    processed = [t for t, _ in got["out"]]
    assert len(processed) < n, "a busy limiter must drop frames"
    assert processed[0] == 0 and processed[-1] == n - 1, "the newest frame is processed"
    assert processed == sorted(set(processed))
    # One ALLOW decision per frame, True exactly for the processed ones.
    assert [t for t, _ in got["allowed"]] == list(range(n))
    assert [t for t, ok in got["allowed"] if ok] == processed


# -- vectors ------------------------------------------------------------------------------------


def one_node(
    calculator: str, options: str = "{}", outputs: str = "{OUT: out}", sides: str = ""
) -> str:
    side_lines = f"    side_inputs: {sides}\n" if sides else ""
    declared = "side_inputs: {n: {}}\n" if sides else ""
    return (
        f"inputs: [x]\noutputs: [{', '.join(_streams(outputs))}]\n{declared}nodes:\n"
        f"  - calculator: {calculator}\n    inputs: {{IN: x}}\n    outputs: {outputs}\n"
        f"    options: {options}\n{side_lines}"
    )


def _streams(outputs: str) -> list[str]:
    inner = outputs.strip("{}").split(":", 1)[1].strip()
    return [s.strip() for s in inner.strip("[]").split(",")]


def test_clip_vector_by_option_and_side_packet() -> None:
    feed: Feed = [("x", 0, [5, 4, 3, 2]), ("x", 1, [9]), ("x", 2, [])]
    got = run(one_node("ClipVector", "{max_size: 2}"), feed)
    assert got["out"] == [(0, [5, 4]), (1, [9]), (2, [])]
    got = run(one_node("ClipVector", "{max_size: 2}", sides="{MAX_SIZE: n}"), feed, sides={"n": 3})
    assert got["out"] == [(0, [5, 4, 3]), (1, [9]), (2, [])]


def test_split_vector_ranges_elements_and_combined() -> None:
    feed: Feed = [("x", 0, ["a", "b", "c", "d"])]
    got = run(one_node("SplitVector", "{ranges: [[0, 1], [1, 3]]}", "{OUT: [p, q]}"), feed)
    assert got == {"p": [(0, ["a"])], "q": [(0, ["b", "c"])]}
    text = one_node(
        "SplitVector", "{ranges: [[0, 1], [3, 4]], element_only: true}", "{OUT: [p, q]}"
    )
    assert run(text, feed) == {"p": [(0, "a")], "q": [(0, "d")]}
    text = one_node("SplitVector", "{ranges: [[0, 1], [2, 4]], combine_outputs: true}")
    assert run(text, feed) == {"out": [(0, ["a", "c", "d"])]}


def test_split_vector_short_lists() -> None:
    feed: Feed = [("x", 0, ["a", "b"])]
    with pytest.raises(FacegraphError, match="ranges reach index 3"):
        run(one_node("SplitVector", "{ranges: [[0, 1], [1, 4]]}", "{OUT: [p, q]}"), feed)
    text = one_node(
        "SplitVector", "{ranges: [[0, 1], [1, 4], [3, 4]], allow_short: true}", "{OUT: [p, q, r]}"
    )
    assert run(text, feed) == {"p": [(0, ["a"])], "q": [(0, ["b"])], "r": []}


def test_concat_vector_skips_missing_inputs() -> None:
    text = """
    inputs: [a, b, c]
    outputs: [out, strict]
    nodes:
      - calculator: ConcatVector
        inputs: {IN: [a, b, c]}
        outputs: {OUT: out}
      - calculator: ConcatVector
        inputs: {IN: [a, b, c]}
        outputs: {OUT: strict}
        options: {only_emit_if_all_present: true}
    """
    feed: Feed = [
        ("a", 0, [1, 2]),
        ("b", 0, [3]),
        ("c", 0, []),
        ("b", 1, [4, 5]),
        ("a", 2, [6]),
        ("c", 2, 7),
    ]
    got = run(text, feed)
    assert got["out"] == [(0, [1, 2, 3]), (1, [4, 5]), (2, [6, 7])]
    assert got["strict"] == [(0, [1, 2, 3])]


def test_has_min_size_and_vector_size() -> None:
    feed: Feed = [("x", 0, []), ("x", 1, ["r1"]), ("x", 2, ["r1", "r2"])]
    got = run(one_node("HasMinSize", "{min_size: 2}"), feed)
    assert got["out"] == [(0, False), (1, False), (2, True)]
    got = run(one_node("HasMinSize", "{}", sides="{MIN_SIZE: n}"), feed, sides={"n": 1})
    assert got["out"] == [(0, False), (1, True), (2, True)]
    assert run(one_node("VectorSize"), feed)["out"] == [(0, 0), (1, 1), (2, 2)]


@pytest.mark.parametrize(
    ("calculator", "options", "message"),
    [
        ("ClipVector", "{max_size: -1}", "max_size"),
        ("SplitVector", "{ranges: [[2, 1]]}", "begin < end"),
        ("SplitVector", "{ranges: [[0, 2]], element_only: true}", "size 1"),
        ("HasMinSize", "{min_size: -3}", "min_size"),
        ("FlowLimiter", "{max_in_flight: 0}", "max_in_flight"),
        ("ClipVector", "{max_sise: 2}", "max_sise"),
    ],
)
def test_options_are_validated_at_load(calculator: str, options: str, message: str) -> None:
    with pytest.raises(GraphConfigError, match=message):
        graph_from_yaml(one_node(calculator, options))


# -- BeginLoop / EndLoop ------------------------------------------------------------------------

LOOP = """
inputs: [lists, tick]
outputs: [results, joined]
nodes:
  - calculator: BeginLoop
    inputs: {ITERABLE: lists, CLONE: tick}
    outputs: {ITEM: item, CLONE: tick_item, BATCH_END: end}
  - calculator: CoreTestMap
    inputs: {IN: item}
    outputs: {OUT: squared}
    options: {square: true, drop: [2, 6]}
  - calculator: CoreTestJoin
    inputs: {A: squared, B: tick_item}
    outputs: {OUT: paired}
  - calculator: EndLoop
    inputs: {ITEM: paired, BATCH_END: end}
    outputs: {ITERABLE: results}
  - calculator: CoreTestJoin
    inputs: {A: tick, B: results}
    outputs: {OUT: joined}
"""


@pytest.mark.parametrize("mode", MODES)
def test_loop_runs_inner_nodes_per_item(mode: str) -> None:
    lists = {10: [1, 2, 3], 20: [], 30: [4], 40: [5, 6, 7], 50: [2], 60: [8]}
    feed: Feed = []
    for t in (10, 20, 25, 30, 40, 50, 60):
        if t in lists:
            feed.append(("lists", t, lists[t]))
        feed.append(("tick", t, f"t{t}"))  # 25: a frame without a list at all
    got = run(LOOP, feed, mode=mode)
    # Items 2 and 6 are dropped inside the loop; empty collections give no packet.
    assert got["results"] == [
        (10, [(1, "t10"), (9, "t10")]),
        (30, [(16, "t30")]),
        (40, [(25, "t40"), (49, "t40")]),
        (60, [(64, "t60")]),
    ]
    results = dict(got["results"])
    assert got["joined"] == [(t, (f"t{t}", results.get(t))) for t in (10, 20, 25, 30, 40, 50, 60)]


def test_loop_answers_bound_only_timestamps() -> None:
    # The list stream is gated: at disallowed timestamps BeginLoop sees only a bound. The
    # downstream join must still fire at every frame, before the inputs are closed.
    text = """
    inputs: [lists, allow]
    outputs: [results, joined]
    nodes:
      - calculator: Gate
        inputs: {IN: lists, ALLOW: allow}
        outputs: {OUT: gated}
      - calculator: BeginLoop
        inputs: {ITERABLE: gated}
        outputs: {ITEM: item, BATCH_END: end}
      - calculator: CoreTestMap
        inputs: {IN: item}
        outputs: {OUT: squared}
        options: {square: true}
      - calculator: EndLoop
        inputs: {ITEM: squared, BATCH_END: end}
        outputs: {ITERABLE: results}
      - calculator: CoreTestJoin
        inputs: {A: lists, B: results}
        outputs: {OUT: joined}
    """
    graph, got = build(text)
    graph.start({})
    for t in range(1, 6):
        graph.add_packet("lists", [t, t + 1], t)
        graph.add_packet("allow", t % 2 == 1, t)
    graph.wait_until_idle()
    assert got["results"] == [(1, [1, 4]), (3, [9, 16]), (5, [25, 36])]
    assert got["joined"] == [(t, ([t, t + 1], dict(got["results"]).get(t))) for t in range(1, 6)]
    graph.close_all_inputs()
    graph.wait_until_done()


TRACKING = """
inputs: [detections]
outputs: [tracked, prev]
nodes:
  - calculator: PreviousLoopback
    inputs: {MAIN: detections, LOOP: {stream: tracked, back_edge: true}}
    outputs: {PREV_LOOP: prev}
  - calculator: ConcatVector
    inputs: {IN: [detections, prev]}
    outputs: {OUT: candidates}
  - calculator: BeginLoop
    inputs: {ITERABLE: candidates}
    outputs: {ITEM: candidate, BATCH_END: end}
  - calculator: CoreTestMap
    inputs: {IN: candidate}
    outputs: {OUT: kept}
    options: {drop: [2, 3]}
  - calculator: EndLoop
    inputs: {ITEM: kept, BATCH_END: end}
    outputs: {ITERABLE: tracked}
"""


@pytest.mark.parametrize("mode", MODES)
def test_tracking_loop_feeds_each_frames_survivors_to_the_next(mode: str) -> None:
    # The multi-face structure: new detections plus the previous frame's survivors go
    # through a per-item loop; the survivors loop back. Frame 0 keeps nothing (2 is
    # dropped), so frame 1 has no previous list at all, only a bound.
    feed: Feed = [("detections", t, d) for t, d in enumerate([[2], [1, 2], [3], [], [5]])]
    got = run(TRACKING, feed, mode=mode)
    assert got["tracked"] == [(1, [1]), (2, [1]), (3, [1]), (4, [5, 1])]
    assert got["prev"] == [(2, [1]), (3, [1]), (4, [1])]


# -- sources and sinks --------------------------------------------------------------------------


def test_count_source_and_callback_sink() -> None:
    text = """
    side_inputs: {cb: {}}
    nodes:
      - calculator: CountSource
        outputs: {OUT: n}
        options: {count: 4, start_us: 1000, step_us: 500}
      - calculator: Callback
        inputs: {IN: n}
        side_inputs: {CALLBACK: cb}
    """
    seen: list[Packet[Any]] = []
    graph, _ = build(text)
    graph.start({"cb": seen.append})
    graph.wait_until_done()
    assert [(p.timestamp, p.value) for p in seen] == [(1000, 0), (1500, 1), (2000, 2), (2500, 3)]


def test_callback_sink_needs_a_callable() -> None:
    text = """
    inputs: [x]
    side_inputs: {cb: {}}
    nodes:
      - calculator: Callback
        inputs: {IN: x}
        side_inputs: {CALLBACK: cb}
    """
    graph, _ = build(text)
    with pytest.raises(FacegraphError, match="CALLBACK must be callable"):
        graph.start({"cb": "not a function"})


def test_count_source_with_zero_count_finishes() -> None:
    text = """
    outputs: [n]
    nodes:
      - calculator: CountSource
        outputs: {OUT: n}
        options: {count: 0}
    """
    graph, got = build(text)
    graph.start({})
    graph.wait_until_done()
    assert got["n"] == []


def test_log_sink_format(caplog: pytest.LogCaptureFixture) -> None:
    text = """
    inputs: [x]
    nodes:
      - calculator: Log
        inputs: {IN: x}
        options: {prefix: faces}
    """
    with caplog.at_level(logging.INFO, logger="facegraph.calculators.sinks"):
        run(text, [("x", 0, [1, 2]), ("x", 1_000_000, "done")])
    assert caplog.messages == [
        "faces @ 0 (0.000000 s): [1, 2]",
        "faces @ 1000000 (1.000000 s): 'done'",
    ]


def test_log_sink_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    text = """
    inputs: [x, y]
    nodes:
      - calculator: Log
        name: show
        inputs: {IN: [x, y]}
        options: {stdout: true}
    """
    run(text, [("x", 5, 1), ("y", 5, 2)])
    assert capsys.readouterr().out.splitlines() == [
        "show[0] @ 5 (0.000005 s): 1",
        "show[1] @ 5 (0.000005 s): 2",
    ]


def test_side_packet_to_stream_pre_stream() -> None:
    text = """
    outputs: [out]
    side_inputs: {v: {default: 42}}
    nodes:
      - calculator: SidePacketToStream
        side_inputs: {VALUE: v}
        outputs: {OUT: out}
        options: {at: pre_stream}
    """
    graph, got = build(text)
    graph.start({})
    graph.wait_until_done()
    assert got["out"] == [(PRE_STREAM, 42)]


def test_stream_to_side_packet_keeps_the_first_value() -> None:
    text = """
    inputs: [x]
    nodes:
      - calculator: StreamToSidePacket
        inputs: {IN: x}
        side_outputs: {VALUE: first}
    """
    graph, _ = build(text)
    graph.start({})
    for t, value in [(3, "a"), (4, "b")]:
        graph.add_packet("x", value, t)
    graph.close_all_inputs()
    graph.wait_until_done()
    assert graph.side_packet("first") == "a"


def test_idle_loopback_is_not_called_again_and_again() -> None:
    graph, got = build(fold_graph(), mode="threads")
    graph.start({})
    graph.add_packet("x", 1, 0)
    wait_for(lambda: got["sum"] == [(0, 1)], "the first sum")
    # A loopback called again and again would keep a call running or ready forever:
    # the graph could never become idle, and this would time out.
    graph.wait_until_idle(timeout=10)
    calls = {s.node: s.calls for s in graph.stats().nodes}["PreviousLoopback"]
    graph.close_all_inputs()
    graph.wait_until_done()
    # One call for x@0, one for the LOOP packet at 0, a few bound updates at most.
    assert calls <= 5, f"PreviousLoopback was called {calls} times while the graph was idle"
