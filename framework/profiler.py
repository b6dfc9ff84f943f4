"""Run statistics and Chrome-trace export.

``Graph(spec, profile=True)`` records the wall time of every ``process`` call
per node; :meth:`Graph.stats` then reports count, mean, p50 and p99 in
milliseconds. Queue statistics (largest depth seen per input queue, packets
dropped by ``keep_latest``) and call counts are kept always, since they cost
one comparison per packet. :func:`stats_table` renders the numbers as a rich
table (the CLI prints it after ``facegraph run --profile``).

``Graph(spec, trace="run.json")`` additionally records one Chrome-trace
"complete" event (``"ph": "X"``) per ``open``/``process``/``close`` call, with
the node name, thread id, microsecond start and duration, and the packet
timestamp in ``args``; the file is written when the run ends and opens in
``chrome://tracing`` or https://ui.perfetto.dev. With both flags off the
scheduler skips the clock reads entirely.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .timestamp import Timestamp, is_range_value

if TYPE_CHECKING:
    from rich.table import Table


@dataclass(frozen=True, slots=True)
class NodeStats:
    """Per-node call statistics (timings only when profiling was on)."""

    node: str
    calculator: str
    calls: int
    timed_calls: int
    mean_ms: float
    p50_ms: float
    p99_ms: float
    total_ms: float
    #: The node whose own ``process`` time already includes this one's, for the nodes a
    #: calculator runs inside itself (ParallelMap's body: ``landmarks/crop`` inside
    #: ``landmarks``); "" for a node of the graph. Sum only these ""-rows for totals.
    inside: str = ""
    #: The raw call durations (ns), so that the stats of several runs merge exactly.
    durations_ns: tuple[int, ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class QueueStats:
    """One input queue: the stream feeding a node's input port."""

    node: str
    port: str
    stream: str
    max_depth: int
    drops: int
    queued: int


@dataclass(frozen=True, slots=True)
class GraphStats:
    """Everything :meth:`facegraph.Graph.stats` reports."""

    graph: str
    nodes: tuple[NodeStats, ...]
    queues: tuple[QueueStats, ...]

    def node(self, name: str) -> NodeStats:
        for n in self.nodes:
            if n.node == name:
                return n
        raise KeyError(name)

    def queue(self, node: str, port: str) -> QueueStats:
        for q in self.queues:
            if q.node == node and q.port == port:
                return q
        raise KeyError((node, port))


def _percentile(sorted_values: list[int], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (ns in, ns out)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, math.ceil(fraction * len(sorted_values)) - 1))
    return float(sorted_values[rank])


def summarize(
    node: str, calculator: str, calls: int, durations_ns: list[int], *, inside: str = ""
) -> NodeStats:
    """Turn raw durations into a :class:`NodeStats`."""
    if not durations_ns:
        return NodeStats(node, calculator, calls, 0, 0.0, 0.0, 0.0, 0.0, inside)
    ordered = sorted(durations_ns)
    total = float(sum(ordered))
    return NodeStats(
        node=node,
        calculator=calculator,
        calls=calls,
        timed_calls=len(ordered),
        mean_ms=total / len(ordered) / 1e6,
        p50_ms=_percentile(ordered, 0.50) / 1e6,
        p99_ms=_percentile(ordered, 0.99) / 1e6,
        total_ms=total / 1e6,
        inside=inside,
        durations_ns=tuple(durations_ns),
    )


def merge_stats(runs: list[GraphStats], *, inside: str) -> list[NodeStats]:
    """The node stats of several runs of one graph (copies of it), merged exactly.

    Nodes are matched by name in the first run's order and renamed ``{inside}/{node}``;
    call counts and durations add up (percentiles come from all durations together).
    """
    calls: dict[str, int] = {}
    durations: dict[str, list[int]] = {}
    calculators: dict[str, str] = {}
    for run in runs:
        for n in run.nodes:
            calculators.setdefault(n.node, n.calculator)
            calls[n.node] = calls.get(n.node, 0) + n.calls
            durations.setdefault(n.node, []).extend(n.durations_ns)
    return [
        summarize(
            f"{inside}/{name}", calculators[name], calls[name], durations[name], inside=inside
        )
        for name in calculators
    ]


#: Receives one trace event: (node name, phase, start ns, end ns, packet timestamp), times
#: from ``time.perf_counter_ns``. A traced graph gives one to each node that runs graphs of
#: its own (``CalculatorContext.trace_sink``), so their calls land in the same trace.
TraceSink = Callable[[str, str, int, int, Timestamp], None]


class Recorder:
    """Collects timings (and trace events) while a graph runs.

    ``record`` is called by the scheduler after each timed call, from whichever
    thread ran it; ``list.append`` is atomic under the GIL, so no lock is taken.
    """

    def __init__(self, node_count: int, *, trace: bool, sink: TraceSink | None = None) -> None:
        self.durations: list[list[int]] = [[] for _ in range(node_count)]
        self.trace = trace or sink is not None
        self._sink = sink  # trace events go there instead of into ``events``
        self.events: list[tuple[str, str, int, int, int, Timestamp]] = []
        self.thread_names: dict[int, str] = {}
        self.origin_ns = 0

    def record(
        self, node_index: int, name: str, phase: str, start_ns: int, end_ns: int, ts: Timestamp
    ) -> None:
        if phase == "process":
            self.durations[node_index].append(end_ns - start_ns)
        if self.trace:
            self._event(name, phase, start_ns, end_ns, ts)

    def _event(self, name: str, phase: str, start_ns: int, end_ns: int, ts: Timestamp) -> None:
        if self._sink is not None:
            self._sink(name, phase, start_ns, end_ns, ts)
        else:
            tid = threading.get_ident()
            if tid not in self.thread_names:
                self.thread_names[tid] = threading.current_thread().name
            self.events.append((name, phase, start_ns, end_ns - start_ns, tid, ts))

    def sink_for(self, prefix: str) -> TraceSink:
        """A sink adding events to this trace as ``{prefix}/{name}`` (a node's inner graphs)."""

        def record(name: str, phase: str, start_ns: int, end_ns: int, ts: Timestamp) -> None:
            self._event(f"{prefix}/{name}", phase, start_ns, end_ns, ts)

        return record

    def trace_json(self) -> dict[str, Any]:
        """The Chrome-trace document (JSON object format)."""
        pid = os.getpid()
        origin = self.origin_ns
        events: list[dict[str, Any]] = [
            {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": tname}}
            for tid, tname in self.thread_names.items()
        ]
        for name, phase, start, dur, tid, ts in self.events:
            args: dict[str, Any] = {"phase": phase}
            if is_range_value(ts):
                args["timestamp"] = ts
            events.append(
                {
                    "name": name,
                    "cat": phase,
                    "ph": "X",
                    "ts": (start - origin) / 1000.0,
                    "dur": dur / 1000.0,
                    "pid": pid,
                    "tid": tid,
                    "args": args,
                }
            )
        return {"traceEvents": events, "displayTimeUnit": "ms"}

    def write_trace(self, path: str | Path) -> None:
        """Write :meth:`trace_json` to ``path`` whole (a temporary beside it, moved into
        place): a failed write raises OSError and leaves an earlier file there as it was."""
        from .atomic_files import write_whole

        write_whole(path, json.dumps(self.trace_json()))


def stats_table(stats: GraphStats) -> Table:
    """A rich table of node timings, then one of queue depths and drops."""
    from rich.table import Table

    table = Table(title=f"graph '{stats.graph}': node timings (ms)")
    for column in ("node", "calculator", "calls", "mean", "p50", "p99", "total"):
        table.add_column(column, justify="left" if column in ("node", "calculator") else "right")
    for n in stats.nodes:
        timed = n.timed_calls > 0
        table.add_row(
            n.node,
            n.calculator,
            str(n.calls),
            f"{n.mean_ms:.3f}" if timed else "-",
            f"{n.p50_ms:.3f}" if timed else "-",
            f"{n.p99_ms:.3f}" if timed else "-",
            f"{n.total_ms:.1f}" if timed else "-",
        )
    if not stats.queues:
        return table
    table.add_section()
    table.add_row("[b]input queue[/b]", "[b]stream[/b]", "", "[b]max depth[/b]", "[b]drops[/b]")
    for q in stats.queues:
        table.add_row(f"{q.node}.{q.port}", q.stream, "", str(q.max_depth), str(q.drops))
    return table


def print_stats(stats: GraphStats) -> None:
    """Print :func:`stats_table` to the terminal."""
    from rich.console import Console

    Console().print(stats_table(stats))
