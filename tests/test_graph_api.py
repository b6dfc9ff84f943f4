"""The runtime API as a user calls it: start, feed, observe, poll, run_once, side packets."""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import pytest
from facegraph import (
    Calculator,
    CalculatorContext,
    FacegraphError,
    Graph,
    GraphClosedError,
    GraphConfigError,
    Input,
    Output,
    SideInput,
    SideOutput,
)
from facegraph.spec import SidePacketSpec

from tests.helpers import Counter, DropOdd, Pass, graph, node

MODES = ["deterministic", "threads"]


class Scale(Calculator):
    """Multiplies by the FACTOR side packet and publishes it doubled as DOUBLE."""

    IN = Input("IN")
    OUT = Output("OUT")
    FACTOR = SideInput("FACTOR", int)
    DOUBLE = SideOutput("DOUBLE", int, optional=True)
    opened: ClassVar[list[str]] = []

    def open(self, ctx: CalculatorContext) -> None:
        Scale.opened.append(ctx.node_name)
        self.factor = ctx.side(self.FACTOR)
        ctx.set_side(self.DOUBLE, 2 * self.factor)  # type: ignore[operator]

    def process(self, ctx: CalculatorContext) -> None:
        ctx.emit(self.OUT, ctx.get(self.IN) * self.factor)  # type: ignore[operator]


def scale_chain() -> Any:
    # "second" takes its FACTOR from the side packet "first" sets in open, so "first"
    # must be opened first even though "second" sorts earlier by name.
    return graph(
        node(
            "second",
            Scale,
            inputs={"IN": "b"},
            outputs={"OUT": "c"},
            side_inputs={"FACTOR": "double"},
            side_outputs={"DOUBLE": "quad"},
        ),
        node(
            "first",
            Scale,
            inputs={"IN": "a"},
            outputs={"OUT": "b"},
            side_inputs={"FACTOR": "factor"},
            side_outputs={"DOUBLE": "double"},
        ),
        inputs=("a",),
        outputs=("c",),
        side={"factor": SidePacketSpec("factor", default=3, required=False)},
    )


@pytest.mark.parametrize("mode", MODES)
def test_side_packets_flow_from_start_and_from_open(mode: str) -> None:
    Scale.opened = []
    g = Graph(scale_chain(), mode=mode).start(side_packets={"factor": 5})  # type: ignore[arg-type]
    assert Scale.opened == ["first", "second"]
    assert g.run_once({"a": 1}) == {"c": 50}  # 1 * 5 * 10
    g.close_all_inputs()
    g.wait_until_done(timeout=5)
    assert (g.side_packet("factor"), g.side_packet("double"), g.side_packet("quad")) == (5, 10, 20)


def test_side_packet_defaults_apply() -> None:
    g = Graph(scale_chain(), mode="deterministic").start()
    assert g.run_once({"a": 1}) == {"c": 18}  # 3 * 6


def test_missing_required_side_packet_fails_before_any_node_opens() -> None:
    Scale.opened = []
    spec = graph(
        node("s", Scale, inputs={"IN": "a"}, side_inputs={"FACTOR": "factor"}),
        inputs=("a",),
        side={"factor": SidePacketSpec("factor")},
    )
    with pytest.raises(GraphConfigError, match="required input side packet 'factor'"):
        Graph(spec).start()
    assert Scale.opened == []
    with pytest.raises(GraphConfigError, match="unknown side packet 'factr'"):
        Graph(spec).start({"factor": 1, "factr": 2})


@pytest.mark.parametrize("mode", MODES)
def test_run_once_returns_outputs_at_its_timestamp_and_omits_missing(mode: str) -> None:
    spec = graph(
        node("p", Pass, inputs={"IN": "a"}, outputs={"OUT": "all"}),
        node("odd", DropOdd, inputs={"IN": "a"}, outputs={"OUT": "even"}),
        inputs=("a",),
        outputs=("all", "even"),
    )
    g = Graph(spec, mode=mode).start()  # type: ignore[arg-type]
    assert g.run_once({"a": 2}) == {"all": 2, "even": 2}
    assert g.run_once({"a": 3}) == {"all": 3}  # no packet on "even" at that timestamp
    assert g.run_once({"a": 4}, timestamp=1000) == {"all": 4, "even": 4}
    g.close_all_inputs()
    g.wait_until_done(timeout=5)


def test_run_once_does_not_wait_for_the_rest_of_the_graph() -> None:
    release = threading.Event()

    class SlowSink(Calculator):
        IN = Input("IN")

        def process(self, ctx: CalculatorContext) -> None:
            release.wait(5)

    spec = graph(
        node("p", Pass, inputs={"IN": "a"}, outputs={"OUT": "out"}),
        node("slow", SlowSink, inputs={"IN": "a"}),
        inputs=("a",),
        outputs=("out",),
    )
    g = Graph(spec, mode="threads").start()
    results = [g.run_once({"a": i}) for i in range(3)]
    assert results == [{"out": 0}, {"out": 1}, {"out": 2}]
    # run_once returned while the sink is still blocked on the first item
    assert g.stats().node("slow").calls == 0
    release.set()
    g.close_all_inputs()
    g.wait_until_done(timeout=5)
    assert g.stats().node("slow").calls == 4  # 3 packets + close


@pytest.mark.parametrize("mode", MODES)
def test_poll_iterates_a_stream_until_it_is_done(mode: str) -> None:
    spec = graph(
        node("src", Counter, outputs={"OUT": "n"}, options={"n": 30}),
        node("odd", DropOdd, inputs={"IN": "n"}, outputs={"OUT": "even"}),
        outputs=("even",),
        max_queue_size=3,
    )
    g = Graph(spec, mode=mode)  # type: ignore[arg-type]
    packets = g.poll("even")  # before start: nothing is missed
    g.start()
    got = [(p.timestamp, p.value) for p in packets]
    assert got == [(i * 10, i) for i in range(0, 30, 2)]
    g.wait_until_done(timeout=5)


@pytest.mark.parametrize("mode", MODES)
def test_observe_sees_every_packet_in_timestamp_order(mode: str) -> None:
    spec = graph(
        node("p", Pass, inputs={"IN": "a"}, outputs={"OUT": "b"}),
        inputs=("a",),
        outputs=("b",),
        max_queue_size=2,
    )
    g = Graph(spec, mode=mode)  # type: ignore[arg-type]
    seen: list[int] = []
    g.observe("b", lambda p: seen.append(p.timestamp))
    with g.start():
        for t in range(200):
            g.add_packet("a", t, t)
    assert seen == list(range(200))
    with pytest.raises(FacegraphError, match="before start"):
        g.observe("b", print)


def test_context_manager_cancels_on_exception_and_closes_calculators() -> None:
    closed: list[str] = []

    class Tracked(Pass):
        def close(self, ctx: CalculatorContext) -> None:
            closed.append(ctx.node_name)

    spec = graph(node("t", Tracked, inputs={"IN": "a"}, outputs={"OUT": "b"}), inputs=("a",))
    g = Graph(spec)
    with pytest.raises(RuntimeError, match="user code"), g.start():
        g.add_packet("a", 1, 1)
        raise RuntimeError("user code failed")
    assert closed == ["t"] and g.done
    with pytest.raises(GraphClosedError):
        g.add_packet("a", 2, 2)


@pytest.mark.parametrize("mode", MODES)
def test_cancel_stops_a_running_source_graph(mode: str) -> None:
    spec = graph(
        node("src", Counter, outputs={"OUT": "n"}, options={"n": 10**9}),
        node("p", Pass, inputs={"IN": "n"}, outputs={"OUT": "o"}),
    )
    g = Graph(spec, mode=mode)  # type: ignore[arg-type]
    running = threading.Event()
    g.observe("o", lambda p: running.set())
    g.start()
    if mode == "threads":
        assert running.wait(5)  # the source is running on its own thread
    g.cancel()
    assert g.done
    g.wait_until_done(timeout=1)  # a cancelled run is finished, without error


def test_unknown_streams_and_executors_are_clear_errors() -> None:
    spec = graph(node("p", Pass, inputs={"IN": "a"}, outputs={"OUT": "b"}), inputs=("a",))
    g = Graph(spec, mode="deterministic").start()
    with pytest.raises(FacegraphError, match=r"'x' is not an input stream .*'a'"):
        g.add_packet("x", 1, 1)
    bad = graph(
        node("p", Pass, inputs={"IN": "nowhere"}, outputs={"OUT": "b"}, executor="gpu"),
    )
    with pytest.raises(FacegraphError) as info:
        Graph(bad)
    assert "unknown executor 'gpu'" in str(info.value)
    assert "'nowhere' has no producer" in str(info.value)


def test_named_executors_run_nodes_on_their_own_threads() -> None:
    threads: dict[str, str] = {}

    class Where(Pass):
        def process(self, ctx: CalculatorContext) -> None:
            threads[ctx.node_name] = threading.current_thread().name
            super().process(ctx)

    spec = graph(
        node("a", Where, inputs={"IN": "x"}, outputs={"OUT": "y"}),
        node("b", Where, inputs={"IN": "y"}, outputs={"OUT": "z"}, executor="io"),
        inputs=("x",),
        outputs=("z",),
        executors={"default": 1, "io": 1},
    )
    g = Graph(spec).start()
    assert g.run_once({"x": 1}) == {"z": 1}
    g.close_all_inputs()
    g.wait_until_done(timeout=5)
    assert threads["a"].startswith("facegraph-default")
    assert threads["b"].startswith("facegraph-io")


def test_run_once_from_many_threads_pipelines_and_answers_each_caller() -> None:
    class Slow(Pass):
        def process(self, ctx: CalculatorContext) -> None:
            time.sleep(0.002)
            super().process(ctx)

    spec = graph(
        node("s1", Slow, inputs={"IN": "a"}, outputs={"OUT": "b"}),
        node("s2", Slow, inputs={"IN": "b"}, outputs={"OUT": "out"}),
        inputs=("a",),
        outputs=("out",),
    )
    g = Graph(spec, mode="threads").start()
    answers: dict[int, list[tuple[int, Any]]] = {k: [] for k in range(4)}

    def client(k: int) -> None:
        for i in range(10):
            value = k * 100 + i
            answers[k].append((value, g.run_once({"a": value})["out"]))

    workers = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(10)
    g.close_all_inputs()
    g.wait_until_done(timeout=5)
    for k in range(4):
        assert [sent for sent, _ in answers[k]] == [got for _, got in answers[k]]
        assert len(answers[k]) == 10


def test_graph_load_reads_yaml(tmp_path: Any) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(
        "name: counted\n"
        "outputs: [n]\n"
        "nodes:\n"
        "  - {calculator: CountSource, options: {count: 4, step_us: 5}, outputs: {OUT: n}}\n"
    )
    g = Graph.load(path, mode="deterministic")
    assert g.spec.name == "counted"
    got = [(p.timestamp, p.value) for p in g.start().poll("n")]
    assert got == [(0, 0), (5, 1), (10, 2), (15, 3)]


class OffsetBy(Calculator):
    """Adds the OFFSET side packet, or 100 when it is not given."""

    IN = Input("IN", int)
    OUT = Output("OUT", int)
    OFFSET = SideInput("OFFSET", int, optional=True)

    def open(self, ctx: CalculatorContext) -> None:
        self.offset: int = ctx.side(self.OFFSET, default=100)

    def process(self, ctx: CalculatorContext) -> None:
        value = ctx.get(self.IN)
        if value is not None:
            ctx.emit(self.OUT, value + self.offset)


@pytest.mark.parametrize(
    ("connected", "side_packets", "expected"),
    [
        (False, {}, 101),  # unconnected optional port: the default
        (True, {}, 101),  # connected, graph default null, caller gave none: the default
        (True, {"offset": 7}, 8),  # given: the value
        (True, {"offset": 0}, 1),  # a falsy value is a value, not "not given"
    ],
)
def test_side_default_applies_when_the_side_packet_is_not_given(
    connected: bool, side_packets: dict[str, int], expected: int
) -> None:
    spec = graph(
        node(
            "add",
            OffsetBy,
            inputs={"IN": "a"},
            outputs={"OUT": "b"},
            side_inputs={"OFFSET": "offset"} if connected else {},
        ),
        inputs=("a",),
        outputs=("b",),
        side={"offset": SidePacketSpec("offset", default=None, required=False)}
        if connected
        else {},
    )
    g = Graph(spec, mode="deterministic").start(side_packets=side_packets)
    assert g.run_once({"a": 1}) == {"b": expected}
    g.close_all_inputs()
    g.wait_until_done(timeout=5)
