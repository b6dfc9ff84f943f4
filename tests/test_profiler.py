"""Profiling (per-node timings, queue depths, drops) and Chrome-trace export."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from facegraph import CalculatorContext, CalculatorError, Graph
from facegraph.profiler import stats_table, summarize
from rich.console import Console

from tests.helpers import Counter, Pass, file_size_limit, graph, node


class Sleepy(Pass):
    def process(self, ctx: CalculatorContext) -> None:
        time.sleep(0.002)
        super().process(ctx)


def spec() -> object:
    return graph(
        node("src", Counter, outputs={"OUT": "n"}, options={"n": 20}),
        node("sleepy", Sleepy, inputs={"IN": "n"}, outputs={"OUT": "out"}),
        outputs=("out",),
        max_queue_size=4,
    )


def test_profile_reports_timings_per_node() -> None:
    g = Graph(spec(), mode="threads", profile=True)  # type: ignore[arg-type]
    g.start()
    g.wait_until_done(timeout=10)
    stats = g.stats()
    sleepy = stats.node("sleepy")
    assert sleepy.calls == 21  # 20 packets + close
    assert sleepy.timed_calls == 20
    assert 2.0 <= sleepy.p50_ms <= sleepy.p99_ms < 100
    assert 2.0 <= sleepy.mean_ms < 100
    assert stats.node("src").timed_calls == 21  # 20 emits + the call returning STOP
    assert stats.queue("sleepy", "IN:0").max_depth <= 4
    text = _render(stats)
    assert "sleepy" in text and "max depth" in text


def test_without_profile_no_timings_are_taken() -> None:
    g = Graph(spec(), mode="deterministic")  # type: ignore[arg-type]
    g.start()
    g.wait_until_done()
    sleepy = g.stats().node("sleepy")
    assert sleepy.calls == 21 and sleepy.timed_calls == 0 and sleepy.mean_ms == 0.0


def test_percentiles_use_nearest_rank() -> None:
    s = summarize("n", "C", 100, [i * 1_000_000 for i in range(1, 101)])  # 1..100 ms
    assert (s.p50_ms, s.p99_ms, s.mean_ms) == (50.0, 99.0, 50.5)


def test_trace_file_is_valid_chrome_trace_json(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    g = Graph(spec(), mode="threads", trace=path)  # type: ignore[arg-type]
    g.start()
    g.wait_until_done(timeout=10)
    doc = json.loads(path.read_text())
    events = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    process = [e for e in events if e["name"] == "sleepy" and e["cat"] == "process"]
    assert len(process) == 20
    assert sorted(e["args"]["timestamp"] for e in process) == [i * 10 for i in range(20)]
    assert all(e["dur"] >= 2000 for e in process)  # µs
    phases = {(e["name"], e["cat"]) for e in events}
    assert {("sleepy", "open"), ("sleepy", "close"), ("src", "process")} <= phases
    names = {e["args"]["name"] for e in doc["traceEvents"] if e["ph"] == "M"}
    assert any(n.startswith("facegraph-default") for n in names)
    for e in events:
        assert isinstance(e["ts"], float) and isinstance(e["tid"], int) and e["ts"] >= 0


def test_trace_is_written_when_the_run_fails(tmp_path: Path) -> None:
    from tests.helpers import Boom

    path = tmp_path / "fail.json"
    g = Graph(
        graph(node("b", Boom, inputs={"IN": "a"}, outputs={"OUT": "o"}), inputs=("a",)),
        mode="deterministic",
        trace=path,
    )
    g.start()
    g.add_packet("a", 3, 1)
    with pytest.raises(CalculatorError):
        g.wait_until_done()
    assert json.loads(path.read_text())["traceEvents"]


def test_a_trace_that_cannot_be_written_leaves_the_earlier_one_and_says_why(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.json"
    path.write_text('{"traceEvents": []}')  # an earlier run's trace
    g = Graph(
        graph(node("p", Pass, inputs={"IN": "a"}, outputs={"OUT": "o"}), inputs=("a",)),
        mode="deterministic",
        trace=path,
    )
    g.start()
    for t in range(5):
        g.add_packet("a", t, t)
    with file_size_limit(64):  # no room for the new trace (a full disk; real for root too)
        g.close_all_inputs()
        g.wait_until_done()
    assert path.read_text() == '{"traceEvents": []}'
    assert isinstance(g.trace_error, OSError) and g.trace_error.filename == str(path)
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary left


def _render(stats: object) -> str:
    console = Console(record=True, width=140)
    console.print(stats_table(stats))  # type: ignore[arg-type]
    return console.export_text()
