"""Property tests: random graphs deliver exactly what a reference model predicts.

1. Random DAGs of pass-through, dropping and merging (sync) nodes fed with random
   sparse inputs deliver every packet exactly once, in timestamp order, without
   deadlock, and identically in the deterministic and thread-pool modes.
2. The same graphs with one node made to wait on its own output (a back edge that can
   never advance) always fail with a stall report naming that node and edge, in both
   modes, and never hang; every stream the stuck node does not feed carries a prefix
   of what the reference predicts.
3. A loop through a loopback node (previous value re-stamped to the current
   timestamp, ``process_on_bounds``) behaves like a running fold over the input.

The suite runs with ``FACEGRAPH_CHECK_SCHEDULER=1`` (tests/conftest.py), so every
step of these runs also passes the scheduler's ``validate_state()``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import pytest
from facegraph import (
    STOP,
    Calculator,
    CalculatorContext,
    Graph,
    GraphStalledError,
    Input,
    Output,
)
from facegraph.calculator import Signal
from facegraph.timestamp import DONE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from tests.helpers import Merge, Pass, graph, node

MODES = ("deterministic", "threads")


class Drop(Calculator):
    """Drops the packets whose value hashes to 0 modulo ``modulus``."""

    class Options(BaseModel):
        modulus: int = 3

    IN = Input("IN")
    OUT = Output("OUT")

    def process(self, ctx: CalculatorContext) -> None:
        v = ctx.get(self.IN)
        if v is not None and keep(v, self.options.modulus):
            ctx.emit(self.OUT, v)


def keep(value: Any, modulus: int) -> bool:
    return zlib.crc32(repr(value).encode()) % modulus != 0


@dataclass(frozen=True)
class NodeDesc:
    kind: str  # "pass" | "drop" | "merge"
    inputs: tuple[int, ...]  # indices into the list of streams built so far
    modulus: int = 3


@st.composite
def random_graphs(draw: st.DrawFn) -> tuple[int, list[NodeDesc], list[dict[int, int]], int]:
    n_inputs = draw(st.integers(1, 2))
    n_nodes = draw(st.integers(1, 7))
    nodes = []
    for i in range(n_nodes):
        available = n_inputs + i  # graph inputs, then one output per earlier node
        kind = draw(st.sampled_from(["pass", "drop", "merge"]))
        if kind == "merge" and available >= 2:
            k = draw(st.integers(2, min(3, available)))
            ins = tuple(draw(st.permutations(range(available)))[:k])
        else:
            kind = "drop" if kind == "merge" else kind
            ins = (draw(st.integers(0, available - 1)),)
        nodes.append(NodeDesc(kind, ins, draw(st.integers(2, 4))))
    timeline = draw(st.lists(st.integers(0, 200), min_size=1, max_size=30, unique=True))
    timeline.sort()
    feeds: list[dict[int, int]] = []
    for _ in range(n_inputs):
        present = draw(st.lists(st.booleans(), min_size=len(timeline), max_size=len(timeline)))
        feeds.append(
            {t: draw(st.integers(-50, 50)) for t, p in zip(timeline, present, strict=True) if p}
        )
    max_queue = draw(st.integers(1, 6))
    return n_inputs, nodes, feeds, max_queue


def stream_names(n_inputs: int, nodes: list[NodeDesc]) -> list[str]:
    return [f"in{i}" for i in range(n_inputs)] + [f"s{i}" for i in range(len(nodes))]


def reference(
    n_inputs: int, nodes: list[NodeDesc], feeds: list[dict[int, int]]
) -> dict[str, list[tuple[int, Any]]]:
    """What each stream must carry, computed without any scheduler."""
    contents: list[dict[int, Any]] = [dict(f) for f in feeds]
    for d in nodes:
        srcs = [contents[i] for i in d.inputs]
        if d.kind == "pass":
            out = dict(srcs[0])
        elif d.kind == "drop":
            out = {t: v for t, v in srcs[0].items() if keep(v, d.modulus)}
        else:
            stamps = sorted(set().union(*srcs))
            out = {t: tuple(s.get(t) for s in srcs) for t in stamps}
        contents.append(out)
    names = stream_names(n_inputs, nodes)
    return {names[i]: sorted(c.items()) for i, c in enumerate(contents)}


def build(
    mode: str,
    n_inputs: int,
    nodes: list[NodeDesc],
    max_queue: int,
    stuck: int | None = None,
) -> tuple[Graph, dict[str, list[tuple[int, Any]]]]:
    """The graph, started, with every stream observed.

    ``stuck``: that node becomes a merge that also waits on its own output through a
    back edge, which can never advance: it can never run.
    """
    names = stream_names(n_inputs, nodes)
    specs = []
    for i, d in enumerate(nodes):
        cls: type[Calculator] = {"pass": Pass, "drop": Drop, "merge": Merge}[d.kind]
        ins = (
            {f"IN:{k}": names[j] for k, j in enumerate(d.inputs)}
            if d.kind == "merge"
            else {"IN": names[d.inputs[0]]}
        )
        opts = {"modulus": d.modulus} if d.kind == "drop" else None
        if i == stuck:
            cls, opts = Merge, None
            ins = {f"IN:{k}": names[j] for k, j in enumerate(d.inputs)}
            ins[f"IN:{len(ins)}"] = f"s{i}!"
        specs.append(node(f"n{i}", cls, inputs=ins, outputs={"OUT": f"s{i}"}, options=opts))
    spec = graph(*specs, inputs=tuple(names[:n_inputs]), max_queue_size=max_queue)
    g = Graph(spec, mode=mode)  # type: ignore[arg-type]
    seen: dict[str, list[tuple[int, Any]]] = {n: [] for n in names}
    for name in names:
        g.observe(name, lambda p, name=name: seen[name].append((p.timestamp, p.value)))
    g.start()
    return g, seen


def feed(g: Graph, feeds: list[dict[int, int]], t: int) -> None:
    """Every graph input at ``t``: its packet, or "no packet at t" as a bound."""
    for i, values in enumerate(feeds):
        if t in values:
            g.add_packet(f"in{i}", values[t], t)
        else:  # "no packet at t" must still reach the merges
            g.set_input_bound(f"in{i}", t + 1)


def run(
    mode: str,
    n_inputs: int,
    nodes: list[NodeDesc],
    feeds: list[dict[int, int]],
    max_queue: int,
    expected: dict[str, list[tuple[int, Any]]] | None = None,
) -> dict[str, list[tuple[int, Any]]]:
    """Run the graph; with ``expected``, also check progress after every timestamp."""
    g, seen = build(mode, n_inputs, nodes, max_queue)
    timeline = sorted(set().union(*feeds))
    for t in timeline:
        feed(g, feeds, t)
        if expected is not None:
            # Every input is settled past t, so bounds alone must have let every node
            # deliver everything up to t: no waiting for the inputs to close.
            g.wait_until_idle(timeout=20)
            for name, packets in expected.items():
                assert seen[name] == [(ts, v) for ts, v in packets if ts <= t], (name, t)
    g.close_all_inputs()
    g.wait_until_done(timeout=20)
    return seen


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs())
def test_random_dags_deliver_every_packet_once_in_order_in_both_modes(
    case: tuple[int, list[NodeDesc], list[dict[int, int]], int],
) -> None:
    n_inputs, nodes, feeds, max_queue = case
    expected = reference(n_inputs, nodes, feeds)
    results = [
        run("deterministic", n_inputs, nodes, feeds, max_queue, expected),
        run("threads", n_inputs, nodes, feeds, max_queue),
    ]
    assert results[0] == expected
    assert results[1] == expected


def fed_by(n_inputs: int, nodes: list[NodeDesc], stuck: int) -> set[str]:
    """The streams that carry nothing while node ``stuck`` never runs."""
    names = stream_names(n_inputs, nodes)
    dead = {names[n_inputs + stuck]}
    for i, d in enumerate(nodes):
        if any(names[j] in dead for j in d.inputs):
            dead.add(names[n_inputs + i])
    return dead


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(), st.data())
def test_every_stall_is_reported_in_both_modes(
    case: tuple[int, list[NodeDesc], list[dict[int, int]], int], data: st.DataObject
) -> None:
    n_inputs, nodes, feeds, max_queue = case
    stuck = data.draw(st.integers(0, len(nodes) - 1), label="stuck node")
    expected = reference(n_inputs, nodes, feeds)
    dead = fed_by(n_inputs, nodes, stuck)
    for mode in MODES:
        g, seen = build(mode, n_inputs, nodes, max_queue, stuck=stuck)
        # The stall surfaces where the caller first waits on the stuck node: a full
        # queue in add_packet, or the final wait. Either way it is an error, not a hang.
        with pytest.raises(GraphStalledError) as info:
            for t in sorted(set().union(*feeds)):
                feed(g, feeds, t)
            g.close_all_inputs()
            g.wait_until_done(timeout=20)
        report = str(info.value)
        assert f"node 'n{stuck}'" in report, (mode, report)
        assert f"stream 's{stuck}' (back edge)" in report, (mode, report)
        for name, packets in seen.items():
            if name in dead:
                assert packets == [], (mode, name)
            else:
                assert packets == expected[name][: len(packets)], (mode, name)


# ------------------------------------------------------------------ loops


class Loopback(Calculator):
    """Previous LOOP value re-stamped to the current MAIN timestamp (test's own loopback).

    Emits nothing but a bound on the first MAIN timestamp, and also when the loop had no
    packet at the previous MAIN timestamp. Ends itself (STOP) once MAIN is done and every
    MAIN timestamp is answered, since its back edge can only close after it does.
    """

    MAIN = Input("MAIN")
    LOOP = Input("LOOP")
    PREV = Output("PREV")
    input_policy = "immediate"
    process_on_bounds = True
    timestamp_offset = None

    def open(self, ctx: CalculatorContext) -> None:
        self.pending: list[int] = []
        self.previous_main: int | None = None
        self.loop: tuple[int, Any] | None = None

    def process(self, ctx: CalculatorContext) -> Signal | None:
        if ctx.has(self.MAIN):
            self.pending.append(ctx.timestamp)
        p = ctx.packet(self.LOOP)
        if p is not None:
            self.loop = (p.timestamp, p.value)
        while self.pending:
            t = self.pending[0]
            prev = self.previous_main
            if prev is not None and ctx.input_bound(self.LOOP) <= prev:
                break  # the loop's value for the previous frame is not settled yet
            if prev is not None and self.loop is not None and self.loop[0] == prev:
                ctx.emit(self.PREV, self.loop[1], timestamp=t)
            else:
                ctx.set_bound(self.PREV, t + 1)
            self.pending.pop(0)
            self.previous_main = t
        if ctx.input_bound(self.MAIN) == DONE and not self.pending:
            return STOP
        return None


class Add(Calculator):
    """acc = x + previous acc (0 on the first frame, where PREV has only a bound)."""

    X = Input("X")
    PREV = Input("PREV")
    SUM = Output("SUM")

    def process(self, ctx: CalculatorContext) -> None:
        x = ctx.get(self.X)
        if x is not None:
            ctx.emit(self.SUM, x + (ctx.get(self.PREV) or 0))


def loop_spec(max_queue: int) -> Any:
    return graph(
        node("loop", Loopback, inputs={"MAIN": "x", "LOOP": "acc!"}, outputs={"PREV": "prev"}),
        node("add", Add, inputs={"X": "x", "PREV": "prev"}, outputs={"SUM": "acc"}),
        inputs=("x",),
        outputs=("acc",),
        max_queue_size=max_queue,
    )


@settings(max_examples=25, deadline=None)
@given(
    st.dictionaries(st.integers(0, 10_000), st.integers(-100, 100), max_size=40),
    st.integers(1, 5),
)
def test_loop_through_loopback_is_a_running_fold(values: dict[int, int], max_queue: int) -> None:
    expected = []
    total = 0
    for t in sorted(values):
        total += values[t]
        expected.append((t, total))
    for mode in MODES:
        g = Graph(loop_spec(max_queue), mode=mode)  # type: ignore[arg-type]
        got: list[tuple[int, int]] = []
        g.observe("acc", lambda p, got=got: got.append((p.timestamp, p.value)))
        with g.start():
            for t in sorted(values):
                g.add_packet("x", values[t], t)
        assert got == expected, mode
