"""ParallelMap: a body graph per list item on parallel copies, results in item order.

Small pure-Python body graphs; concurrency is proven with a barrier that only opens when
two items run at the same time (no sleep decides anything).
"""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from facegraph import (
    Calculator,
    CalculatorContext,
    CalculatorError,
    Graph,
    GraphConfigError,
    Input,
    Output,
    SideInput,
    load_graph,
    register,
)
from facegraph.calculators.parallel_map import ParallelMap
from pydantic import BaseModel, ConfigDict

MODES = ["deterministic", "threads"]

# -- body nodes ----------------------------------------------------------------------------


class _Opts(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: What PMapTestBarrier waits on (set by the test that uses it).
BARRIER: threading.Barrier | None = None
#: Thread names that ran PMapTestSquare, per item value.
SEEN_THREADS: dict[int, str] = {}


@register("PMapTestSquare")
class Square(Calculator):
    """Test body node: OUT = IN² + OFFSET (side packet); values in ``drop`` emit nothing;
    values in ``fail`` raise."""

    class Options(_Opts):
        drop: list[int] = []
        fail: list[int] = []

    IN: Input[int] = Input("IN", int)
    OUT: Output[int] = Output("OUT", int)
    OFFSET: SideInput[int] = SideInput("OFFSET", int, optional=True)

    def process(self, ctx: CalculatorContext) -> None:
        value = ctx.get(self.IN)
        assert value is not None
        SEEN_THREADS[value] = threading.current_thread().name
        if value in self.options.fail:
            raise ValueError(f"cannot square {value}")
        if value not in self.options.drop:
            ctx.emit(self.OUT, value * value + ctx.side(self.OFFSET, default=0))


@register("PMapTestPair")
class Pair(Calculator):
    """Test body node: (A, B) at each timestamp with an A packet (B None when absent)."""

    A: Input[Any] = Input("A")
    B: Input[Any] = Input("B")
    OUT: Output[Any] = Output("OUT")

    def process(self, ctx: CalculatorContext) -> None:
        a = ctx.get(self.A)
        if a is not None:
            ctx.emit(self.OUT, (a, ctx.get(self.B)))


@register("PMapTestBarrier")
class WaitForPartner(Calculator):
    """Test body node: passes IN on once another item's call reaches the barrier too."""

    IN: Input[Any] = Input("IN")
    OUT: Output[Any] = Output("OUT")

    def process(self, ctx: CalculatorContext) -> None:
        assert BARRIER is not None
        BARRIER.wait()
        ctx.emit(self.OUT, ctx.get(self.IN))


BODY = """
name: square_body
inputs: [x, tag]
outputs: [squared, paired]
side_inputs:
  offset: {default: 0, type: int}
nodes:
  - calculator: PMapTestSquare
    name: square
    inputs: {IN: x}
    outputs: {OUT: squared}
    side_inputs: {OFFSET: offset}
    options: {drop: [2, 6], fail: [13]}
  - calculator: PMapTestPair
    name: pair
    inputs: {A: squared, B: tag}
    outputs: {OUT: paired}
"""

OUTER = """
name: outer
inputs: [lists, tick]
outputs: [squares, pairs, joined]
side_inputs:
  offset: {default: 0, type: int}
nodes:
  - calculator: ParallelMap
    name: map
    inputs: {ITERABLE: lists, CLONE: tick}
    outputs: {ITERABLE: [squares, pairs]}
    side_inputs: {SIDE: offset}
    options: {body: square_body, item: x, clones: [tag], outputs: [squared, paired],
              side_inputs: [offset], workers: WORKERS}
  - calculator: PMapTestPair
    name: join
    inputs: {A: tick, B: squares}
    outputs: {OUT: joined}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def outer(folder: Path, workers: int | str = 2, body: str = BODY) -> Path:
    write(folder, "square_body", body)
    return write(folder, "outer", OUTER.replace("WORKERS", str(workers)))


def run(
    path: Path,
    feed: list[tuple[str, int, Any]],
    *,
    mode: str = "deterministic",
    sides: dict[str, Any] | None = None,
    profile: bool = False,
) -> tuple[dict[str, list[tuple[int, Any]]], Graph]:
    graph = Graph(load_graph(path), mode=mode, profile=profile)  # type: ignore[arg-type]
    got: dict[str, list[tuple[int, Any]]] = {s: [] for s in graph.spec.output_streams}
    for stream, sink in got.items():
        graph.observe(stream, lambda p, sink=sink: sink.append((p.timestamp, p.value)))
    graph.start(sides or {})
    for stream, ts, value in feed:
        graph.add_packet(stream, value, ts)
    graph.close_all_inputs()
    graph.wait_until_done()
    return {k: sorted(v, key=lambda tv: tv[0]) for k, v in got.items()}, graph


LISTS = {10: [1, 2, 3], 20: [], 30: [4], 40: [5, 6, 7, 8, 9], 50: [2], 60: [10, 11]}


def feed_lists(lists: dict[int, list[int]] = LISTS) -> list[tuple[str, int, Any]]:
    feed: list[tuple[str, int, Any]] = []
    for t in (10, 20, 25, 30, 40, 50, 60):
        if t in lists:
            feed.append(("lists", t, lists[t]))
        feed.append(("tick", t, f"t{t}"))  # 25: a frame without a list at all
    return feed


# -- results ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_items_in_order_missing_outputs_absent_empty_is_no_packet(
    tmp_path: Path, mode: str
) -> None:
    got, _ = run(outer(tmp_path, workers=3), feed_lists(), mode=mode)
    # 2 and 6 emit nothing in the body: absent from the lists; [] and [2] give no packet.
    assert got["squares"] == [(10, [1, 9]), (30, [16]), (40, [25, 49, 64, 81]), (60, [100, 121])]
    assert got["pairs"] == [
        (10, [(1, "t10"), (9, "t10")]),
        (30, [(16, "t30")]),
        (40, [(25, "t40"), (49, "t40"), (64, "t40"), (81, "t40")]),
        (60, [(100, "t60"), (121, "t60")]),
    ]
    # The downstream sync join fired at every frame: no list, [] and all-dropped still
    # advanced the bound past T.
    squares = dict(got["squares"])
    ticks = (10, 20, 25, 30, 40, 50, 60)
    assert got["joined"] == [(t, (f"t{t}", squares.get(t))) for t in ticks]


def test_one_worker_and_several_give_the_same_outputs(tmp_path: Path) -> None:
    lists = {t: list(range(t % 7, t % 7 + t % 5)) for t in range(1, 60)}
    feed = [("lists", t, v) for t, v in lists.items()] + [("tick", t, t) for t in lists]
    feed.sort(key=lambda f: f[1])
    results = []
    for workers in (1, 2, 4, "auto"):
        folder = tmp_path / str(workers)
        folder.mkdir()
        got, _ = run(outer(folder, workers=workers), feed)
        results.append(got)
    assert results[0]["squares"]  # not vacuous
    assert all(r == results[0] for r in results[1:])


def test_side_packets_reach_the_body(tmp_path: Path) -> None:
    got, _ = run(outer(tmp_path), [("lists", 1, [1, 3]), ("tick", 1, "a")], sides={"offset": 100})
    assert got["squares"] == [(1, [101, 109])]


def test_a_missing_clone_is_no_packet_in_the_body(tmp_path: Path) -> None:
    got, _ = run(outer(tmp_path), [("lists", 1, [1, 3])])
    assert got["pairs"] == [(1, [(1, None), (9, None)])]


# -- threads ---------------------------------------------------------------------------------

BARRIER_BODY = """
name: barrier_body
inputs: [x]
outputs: [y]
nodes:
  - calculator: PMapTestBarrier
    inputs: {IN: x}
    outputs: {OUT: y}
"""


def test_items_really_run_at_the_same_time(tmp_path: Path) -> None:
    global BARRIER
    write(tmp_path, "barrier_body", BARRIER_BODY)
    path = write(
        tmp_path,
        "outer",
        """
        inputs: [lists]
        outputs: [ys]
        nodes:
          - calculator: ParallelMap
            inputs: {ITERABLE: lists}
            outputs: {ITERABLE: ys}
            options: {body: barrier_body, item: x, outputs: [y], workers: 2}
        """,
    )
    # Each call waits until the other item's call reaches the barrier: this completes only
    # if the two items of a list run at once (the timeout is a hang guard, never reached).
    BARRIER = threading.Barrier(2, timeout=60)
    try:
        got, _ = run(path, [("lists", 0, ["a", "b"]), ("lists", 1, ["c", "d"])])
    finally:
        BARRIER = None
    assert got["ys"] == [(0, ["a", "b"]), (1, ["c", "d"])]


def test_item_zero_runs_on_the_calling_thread_and_close_stops_the_pool(tmp_path: Path) -> None:
    SEEN_THREADS.clear()
    graph_thread = threading.current_thread().name
    got, _ = run(outer(tmp_path, workers=2), [("lists", 0, [4, 5, 7])])
    assert got["squares"] == [(0, [16, 25, 49])]
    # Deterministic mode: the outer node runs here, so item 0 (and 2) do too.
    assert SEEN_THREADS[4] == SEEN_THREADS[7] == graph_thread
    assert SEEN_THREADS[5].startswith("map/map")
    # The run ended, so close() ran: the pool's threads are gone.
    assert not [t for t in threading.enumerate() if t.name.startswith("map/map")]


def test_one_worker_starts_no_thread(tmp_path: Path) -> None:
    SEEN_THREADS.clear()
    run(outer(tmp_path, workers=1), [("lists", 0, [4, 5, 7])])
    assert set(SEEN_THREADS.values()) == {threading.current_thread().name}


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_body_error_names_the_inner_node_under_the_outer_one_and_the_timestamp(
    tmp_path: Path, mode: str
) -> None:
    with pytest.raises(CalculatorError) as err:
        run(outer(tmp_path, workers=2), [("lists", 7, [1, 13, 3])], mode=mode)
    first = str(err.value).splitlines()[0]
    assert first.startswith("node 'map/square' (PMapTestSquare) failed in process at timestamp 7")
    assert "item 1 of 3" in first and "ValueError: cannot square 13" in first
    assert err.value.node == "map/square"


@register("PMapTestOpens")
class CountOpens(Calculator):
    """Test body node: counts its opens; fails to open when ``fail`` is set."""

    class Options(_Opts):
        fail: bool = False

    IN: Input[Any] = Input("IN")
    OUT: Output[Any] = Output("OUT")
    opened = 0

    def open(self, ctx: CalculatorContext) -> None:
        if self.options.fail:
            raise OSError("cannot load model.tflite")
        type(self).opened += 1

    def process(self, ctx: CalculatorContext) -> None:
        ctx.emit(self.OUT, ctx.get(self.IN))


OPENS_BODY = """
name: square_body
inputs: [x, tag]
outputs: [squared, paired]
side_inputs:
  offset: {default: 0, type: int}
nodes:
  - {calculator: PMapTestOpens, name: opens, inputs: {IN: x}, outputs: {OUT: squared},
     options: {fail: FAIL}}
  - {calculator: PMapTestPair, name: pair, inputs: {A: squared, B: tag}, outputs: {OUT: paired}}
"""


@pytest.mark.parametrize("mode", MODES)
def test_the_first_body_copy_opens_with_the_graph(tmp_path: Path, mode: str) -> None:
    # Its models load at start, not in the first frame (whose time is counted as work).
    CountOpens.opened = 0
    path = outer(tmp_path, workers=2, body=OPENS_BODY.replace("FAIL", "false"))
    graph = Graph(load_graph(path), mode=mode).start()  # type: ignore[arg-type]
    assert CountOpens.opened == 1
    graph.close_all_inputs()
    graph.wait_until_done()


@pytest.mark.parametrize("mode", MODES)
def test_a_body_that_cannot_open_fails_the_start_named_outer_slash_inner(
    tmp_path: Path, mode: str
) -> None:
    path = outer(tmp_path, workers=2, body=OPENS_BODY.replace("FAIL", "true"))
    with pytest.raises(CalculatorError) as err:
        Graph(load_graph(path), mode=mode).start()  # type: ignore[arg-type]
    assert err.value.node == "map/opens" and err.value.phase == "open"
    assert "OSError: cannot load model.tflite" in str(err.value).splitlines()[0]


def test_body_problems_are_load_errors_with_the_line(tmp_path: Path) -> None:
    path = outer(tmp_path)
    text = path.read_text()
    for bad, fragment in (
        ("body: square_body", "no graph file or shipped graph 'nope'"),
        ("item: x", "has no input 'z' (its inputs: x, tag)"),
        ("outputs: [squared, paired]", "has no output 'w'"),
        ("side_inputs: [offset]", "has no side input 'scale'"),
    ):
        replacement = {
            "body: square_body": "body: nope",
            "item: x": "item: z",
            "outputs: [squared, paired]": "outputs: [squared, w]",
            "side_inputs: [offset]": "side_inputs: [scale]",
        }[bad]
        path.write_text(text.replace(bad, replacement), encoding="utf-8")
        with pytest.raises(GraphConfigError) as err:
            load_graph(path)
        (problem,) = err.value.problems
        assert fragment in problem.message
        assert problem.node == "map" and problem.line is not None
        assert problem.file == str(path)


def test_a_body_that_includes_its_includer_is_refused(tmp_path: Path) -> None:
    write(
        tmp_path,
        "loop_a",
        """
        inputs: [x]
        outputs: [y]
        nodes:
          - calculator: ParallelMap
            inputs: {ITERABLE: x}
            outputs: {ITERABLE: y}
            options: {body: loop_a, item: x, outputs: [y]}
        """,
    )
    with pytest.raises(GraphConfigError, match="includes itself"):
        load_graph(tmp_path / "loop_a.yaml")


def test_port_counts_must_match_the_options(tmp_path: Path) -> None:
    path = outer(tmp_path)
    path.write_text(path.read_text().replace("side_inputs: {SIDE: offset}", ""))
    with pytest.raises(CalculatorError, match="0 SIDE side inputs connected but the options"):
        run(path, [])


# -- profiling -------------------------------------------------------------------------------


def test_profiled_body_nodes_appear_as_outer_slash_inner(tmp_path: Path) -> None:
    _, graph = run(outer(tmp_path, workers=2), feed_lists(), profile=True)
    stats = graph.stats()
    square = stats.node("map/square")
    assert square.inside == "map" and square.calculator == "PMapTestSquare"
    assert square.timed_calls == sum(len(v) for v in LISTS.values())  # over both copies
    assert stats.node("map").inside == ""
    # Not profiled: no inner rows.
    _, plain = run(outer(tmp_path, workers=2), feed_lists())
    assert [n.node for n in plain.stats().nodes] == ["map", "join"]


def test_options_load_the_body_without_a_graph_file(tmp_path: Path) -> None:
    body = write(tmp_path, "square_body", BODY)
    options = ParallelMap.Options.model_validate(
        {"body": str(body), "item": "x", "outputs": ["squared"]}
    )
    assert options.nested_spec.name == "square_body"


# -- uncollected outputs ---------------------------------------------------------------------

#: Values PMapTestSink saw (its only effect).
SUNK: list[Any] = []


@register("PMapTestSink")
class Sink(Calculator):
    """Test body node without outputs: records what it gets (an effect of its own)."""

    IN: Input[Any] = Input("IN")

    def process(self, ctx: CalculatorContext) -> None:
        SUNK.append(ctx.get(self.IN))


SQUARES_ONLY = """
name: outer
inputs: [lists, tick]
outputs: [squares]
nodes:
  - calculator: ParallelMap
    name: map
    inputs: {ITERABLE: lists, CLONE: tick}
    outputs: {ITERABLE: squares}
    options: {body: square_body, item: x, clones: [tag], outputs: [squared]}
"""


def test_nodes_feeding_only_uncollected_outputs_do_not_run(tmp_path: Path) -> None:
    # The body's `pair` node feeds only `paired`, which this map does not collect; a
    # sink (no outputs) on the same stream still runs, as does everything `squared` needs,
    # and a node whose output nothing reads (it may exist for its effect).
    body = (
        BODY
        + "  - {calculator: PMapTestSink, name: sink, inputs: {IN: paired}}\n"
        + "  - {calculator: PMapTestSquare, name: unread, inputs: {IN: x}, outputs: {OUT: u}}\n"
    )
    write(tmp_path, "square_body", body)
    path = write(tmp_path, "outer", SQUARES_ONLY)
    SUNK.clear()
    got, graph = run(path, feed_lists(), profile=True)
    assert got["squares"] == [(10, [1, 9]), (30, [16]), (40, [25, 49, 64, 81]), (60, [100, 121])]
    calls = {n.node: n.timed_calls for n in graph.stats().nodes}
    assert calls["map/square"] == sum(len(v) for v in LISTS.values())
    # `pair` feeds the sink, so it runs for the sink's sake (and only for it).
    assert calls["map/pair"] == calls["map/square"]
    assert calls["map/sink"] == len(SUNK)  # copies run in parallel: any order
    assert calls["map/unread"] == calls["map/square"]
    squares = [(t, v) for t, vs in got["squares"] for v in vs]
    assert sorted(SUNK) == sorted((v, f"t{t}") for t, v in squares)
    # Without the sink, nothing needs `pair`: it is not part of the copies at all.
    write(tmp_path, "square_body", BODY)
    got_plain, plain = run(path, feed_lists(), profile=True)
    assert got_plain == got
    assert "map/pair" not in {n.node for n in plain.stats().nodes}
