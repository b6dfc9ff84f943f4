"""The scheduler: input queues, timestamp bounds, readiness, priority, executors.

This module is the engine behind :class:`facegraph.Graph`. It implements
MediaPipe's timing model; the rules, exactly:

**Streams and bounds.** A stream carries packets with strictly increasing
timestamps and a *bound*: the lowest timestamp a future packet may carry
(initially ``PRE_STREAM``; ``DONE`` once closed). Each node keeps its own view of
its output bounds (see :mod:`facegraph.context`); emitting below it raises a
:class:`~facegraph.TimestampError`. Each consumer input has a queue: a deque of
packets plus the upstream bound.

**Bound propagation.** After a ``process`` call at input timestamp T of a node with
``timestamp_offset == 0``, each open output's bound becomes ``max(bound, T+1)``;
after a bound-only call (below) it becomes the node's settled input bound. When
such a node's inputs advance without delivering a packet (``settled`` = min over
inputs of head timestamp, or bound for an empty queue, grows), its output bounds
follow without calling the calculator, so "no packet at t" reaches every node
downstream. Calculators with ``timestamp_offset = None`` set bounds themselves.

**sync** (MediaPipe's DefaultInputStreamHandler). T = min over inputs of (head
timestamp, else bound). The node is ready when some input has a packet at T and
every empty input's bound is above T; the input set holds the packets at T
(others None). When every input is done (bound DONE, queue empty) the node is
closed: ``close`` runs, then all its outputs get bound DONE.

**immediate.** Ready whenever any queue is non-empty: T = min head timestamp; the
input set holds the packets at T from the queues whose head is at T. Closed when
every input is done.

**process_on_bounds.** Such nodes are also called with an empty input set when
their inputs advanced without a packet: for sync when the settled bound S moved
past the last call's timestamp (``ctx.timestamp = S - 1``), for immediate when any
input's bound grew since the last call (``ctx.timestamp`` = largest new bound - 1;
an input that became DONE gives ``POST_STREAM``).

**STOP.** A source's ``process`` is called repeatedly until it returns
:data:`~facegraph.STOP`. Any other node may return STOP too: it is closed at once
(MediaPipe's ``tool::StatusStop``), its queued and future input packets are
discarded, and its outputs are closed. That is how a loopback node ends a loop
whose back edge can only close after the loopback itself.

**Back edges** are ignored when ranking nodes; otherwise they are ordinary streams.

**Priority.** Among ready nodes: higher rank first (rank = longest path from the
graph's roots, back edges excluded: nodes nearer the outputs), then lower
timestamp, then name. So the graph drains before admitting new input. Sources
run only when no other node is ready, the one with the lowest output bound first;
a source is throttled while any queue downstream of it (fed, directly or through
other nodes, by its packets; back edges excluded) holds ``max_queue_size`` packets,
so a slow sink bounds the memory of the whole pipeline. Nodes between a source and
a full queue are not paused, so a queue may exceed ``max_queue_size`` by the packets
already admitted upstream of it (at most ``max_queue_size`` per upstream queue). Graph inputs block
(threads) or run scheduler steps (deterministic) while a queue downstream of that
stream is full; ``keep_latest``
queues never block, they drop their oldest packet instead (counted).

**Executors.** In threads mode each executor of the GraphSpec is a thread pool;
a node runs at most one call at a time; a single lock guards all scheduler
state, and calculators run outside it. Emitted packets are buffered in the
node's context and published when the call returns; observers of a stream are
called by the producing thread before the producer may run again, so they see
packets in timestamp order. In deterministic mode everything runs on the
caller's thread, in the same priority order.

**Input bounds seen by a call.** ``ctx.input_bound(port)`` is the lowest timestamp
not yet delivered on that input, snapshotted when the call's input set is taken, so
it agrees with the packets the call sees (and is the same in both modes).

**End of a run.** The run is done when every node has closed and every graph input
is closed (packets sent to inputs whose consumers all stopped are discarded).
``Graph.set_input_bound`` advances a graph input without a packet; ``stop_sources``
ends every source as if it had returned STOP.

**Errors.** An exception in ``open``/``process``/``close`` becomes a
:class:`~facegraph.CalculatorError`; scheduling stops, ``close`` is called on every
opened calculator that is not closed yet (exceptions there are kept in
``close_errors``), and the first error is raised to the caller. A graph that can
make no progress (no node running or ready, not done, all inputs closed) fails
with :class:`~facegraph.GraphStalledError` and a report of what each unfinished
node waits for.
"""

from __future__ import annotations

import heapq
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .calculator import STOP, Calculator
from .context import NodeContext, QueueView
from .errors import (
    CalculatorError,
    FacegraphError,
    GraphClosedError,
    GraphStalledError,
    TimestampError,
)
from .packet import Packet
from .ports import Port
from .profiler import GraphStats, QueueStats, Recorder, summarize
from .spec import GraphSpec, NodeSpec
from .timestamp import (
    DONE,
    MIN,
    POST_STREAM,
    PRE_STREAM,
    UNSTARTED,
    Timestamp,
    describe,
    is_allowed_in_stream,
    next_allowed,
)
from .workers import WorkerPool

# Kinds of readiness / invocation.
NONE, PACKET, BOUND, CLOSE, PROPAGATE, SOURCE = range(6)
_PHASE = {PACKET: "process", BOUND: "process", CLOSE: "close", SOURCE: "process"}
_ABOVE_DONE = DONE + 1  # sentinel larger than any bound

Observer = Callable[[Packet[Any]], None]


class InputQueue(QueueView):
    """A node input: packets not yet consumed plus the upstream stream's bound."""

    __slots__ = (
        "back_edge",
        "closed",
        "drops",
        "keep_latest",
        "limited",
        "max_depth",
        "node",
        "port",
        "stream",
    )

    def __init__(self, node: NodeState, port: str, stream: str, keep_latest: int | None) -> None:
        super().__init__()
        self.bound = PRE_STREAM
        self.node = node
        self.port = port
        self.stream = stream
        self.keep_latest = keep_latest
        self.limited = keep_latest is None  # keep_latest queues drop instead of blocking
        self.back_edge = False
        self.closed = False
        self.drops = 0
        self.max_depth = 0

    def push(self, packet: Packet[Any]) -> None:
        packets = self.packets
        packets.append(packet)
        n = len(packets)
        keep = self.keep_latest
        if keep is not None and n > keep:
            packets.popleft()
            self.drops += 1
            n -= 1
        self.max_depth = max(self.max_depth, n)


class _Poller:
    __slots__ = ("done", "items")

    def __init__(self) -> None:
        self.items: deque[Packet[Any]] = deque()
        self.done = False


class _OnceRequest:
    __slots__ = ("done", "timestamp", "values")

    def __init__(self, timestamp: Timestamp) -> None:
        self.timestamp = timestamp
        self.values: dict[str, Any] = {}
        self.done = False


class StreamState:
    """A named stream: its published bound and everything that listens to it."""

    __slots__ = (
        "bound",
        "consumers",
        "graph_input",
        "graph_output",
        "name",
        "observers",
        "pollers",
        "producer",
        "watched",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.bound: Timestamp = PRE_STREAM
        self.consumers: list[InputQueue] = []
        self.producer: NodeState | None = None
        self.graph_input = False
        self.graph_output = False
        self.observers: list[Observer] = []
        self.pollers: list[_Poller] = []
        self.watched = False  # observers, pollers or graph output: publish does extra work

    def update_watched(self) -> None:
        self.watched = bool(self.observers or self.pollers or self.graph_output)


class _Executor:
    __slots__ = ("busy", "name", "pool", "size")

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self.busy = 0
        self.pool: WorkerPool | None = None


class NodeState:
    """Runtime state of one node."""

    __slots__ = (
        "calc",
        "call_kind",
        "call_started",
        "call_ts",
        "calls",
        "closed",
        "ctx",
        "downstream",
        "executor",
        "index",
        "is_source",
        "last_ts",
        "name",
        "offset_zero",
        "opened",
        "order",
        "outputs",
        "pob",
        "queues",
        "rank",
        "running",
        "scheduled",
        "seen",
        "spec",
        "stop",
        "sync",
    )

    def __init__(self, spec: NodeSpec, index: int) -> None:
        cls = spec.calculator
        self.spec = spec
        self.name = spec.name
        self.index = index
        self.calc: Calculator | None = None
        self.ctx: NodeContext = None  # type: ignore[assignment]  # set by Scheduler
        self.queues: list[InputQueue] = []
        self.outputs: list[StreamState] = []
        self.downstream: list[NodeState] = []
        self.executor: _Executor = None  # type: ignore[assignment]  # set by Scheduler
        self.rank = 0
        self.order = 0
        self.sync = spec.input_policy == "sync"
        self.pob = bool(cls.process_on_bounds)
        self.offset_zero = cls.timestamp_offset == 0
        self.is_source = not spec.inputs
        self.running = False
        self.scheduled = False
        self.opened = False
        self.closed = False
        self.stop = False
        self.last_ts: Timestamp = UNSTARTED
        self.seen: list[Timestamp] = []
        self.calls = 0
        # The call in progress (for reports about a node that does not return).
        self.call_kind = NONE
        self.call_ts: Timestamp = UNSTARTED
        self.call_started = 0.0


class Scheduler:
    """Runs one :class:`GraphSpec` once. :class:`facegraph.Graph` is its public face."""

    def __init__(
        self,
        spec: GraphSpec,
        *,
        threads: bool,
        profile: bool = False,
        trace: str | None = None,
    ) -> None:
        self.spec = spec
        self.threads = threads
        self.max_queue = spec.max_queue_size
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._feed_lock = threading.Lock()  # serializes run_once's feeding (not its waiting)
        self._waiters = 0
        self._heap: list[tuple[int, Timestamp, int, NodeState]] = []
        self._running = 0
        self._open_count = 0
        self._started = False
        self._done = False
        self._stopping = False
        self._finalizing = False
        self._abort_claimed = False
        self._cancelled = False
        self._error: BaseException | None = None
        self.close_errors: list[CalculatorError] = []
        #: Why the trace file could not be written (None when it was, or not asked for).
        self.trace_error: OSError | None = None
        self._once: dict[Timestamp, _OnceRequest] = {}
        self._side: dict[str, Any] = {}
        self._side_producer: dict[str, str] = {}
        self._trace_path = trace
        self._timing = profile or trace is not None
        self._recorder: Recorder | None = None
        if self._timing:
            self._recorder = Recorder(len(spec.nodes), trace=trace is not None)

        self.executors = {name: _Executor(name, max(1, n)) for name, n in spec.executors.items()}
        self.streams: dict[str, StreamState] = {}
        self.nodes: list[NodeState] = [NodeState(n, i) for i, n in enumerate(spec.nodes)]
        self._sources = [n for n in self.nodes if n.is_source]
        self._build()

    # ------------------------------------------------------------------ construction

    def _stream(self, name: str) -> StreamState:
        st = self.streams.get(name)
        if st is None:
            st = self.streams[name] = StreamState(name)
        return st

    def _build(self) -> None:
        problems: list[str] = []
        for name in self.spec.input_streams:
            self._stream(name).graph_input = True
        for node in self.nodes:
            for b in node.spec.outputs:
                st = self._stream(b.stream)
                if st.producer is not None or st.graph_input:
                    problems.append(f"stream '{b.stream}' has two producers (node '{node.name}')")
                st.producer = node
        for node in self.nodes:
            spec = node.spec
            ex = self.executors.get(spec.executor)
            if ex is None:
                problems.append(
                    f"{spec.where()}: unknown executor '{spec.executor}' "
                    f"(graph executors: {', '.join(sorted(self.executors))})"
                )
                ex = next(iter(self.executors.values()), None) or _Executor("default", 1)
            node.executor = ex
            for b in spec.inputs:
                st = self._stream(b.stream)
                if st.producer is None and not st.graph_input:
                    problems.append(
                        f"{spec.where()}: input stream '{b.stream}' has no producer and is not "
                        "a graph input"
                    )
                q = InputQueue(node, f"{b.tag}:{b.index}", b.stream, b.keep_latest)
                q.back_edge = b.back_edge
                node.queues.append(q)
                st.consumers.append(q)
            node.outputs = [self.streams[b.stream] for b in spec.outputs]
            node.seen = [PRE_STREAM] * len(node.queues)
        for name in self.spec.output_streams:
            out = self.streams.get(name)
            if out is None:
                problems.append(f"graph output stream '{name}' is not produced by any node")
            else:
                out.graph_output = True
                out.update_watched()
        if problems:
            raise FacegraphError(
                f"graph '{self.spec.name}' cannot run:\n" + "\n".join(f"  - {p}" for p in problems)
            )
        for node in self.nodes:
            seen: set[int] = set()
            for st in node.outputs:
                for q in st.consumers:
                    if q.node.index not in seen:
                        seen.add(q.node.index)
                        node.downstream.append(q.node)
        self._throttle_queues: dict[int, list[InputQueue]] = {
            n.index: self._queues_fed_by(n.outputs) for n in self.nodes if n.is_source
        }
        self._input_throttle_queues: dict[str, list[InputQueue]] = {
            st.name: self._queues_fed_by([st]) for st in self.streams.values() if st.graph_input
        }
        self._rank()

    def _queues_fed_by(self, streams: list[StreamState]) -> list[InputQueue]:
        """Every limited queue that receives packets derived from ``streams``.

        A full queue anywhere downstream throttles a source (or blocks a graph input),
        not only a full queue of its direct consumers: otherwise a fast node between the
        source and a slow sink moves the backlog into the sink's queue, which then grows
        without limit. Back edges are not followed (a loop's queues drain by themselves).
        """
        found: list[InputQueue] = []
        visited: set[int] = set()
        todo = list(streams)
        while todo:
            st = todo.pop()
            for q in st.consumers:
                if q.back_edge:
                    continue
                if q.limited:
                    found.append(q)
                if q.node.index not in visited:
                    visited.add(q.node.index)
                    todo.extend(q.node.outputs)
        return found

    def _rank(self) -> None:
        """rank = longest path from a root, back edges excluded; order = tie-break by name."""
        preds: dict[int, set[int]] = {n.index: set() for n in self.nodes}
        for node in self.nodes:
            for q in node.queues:
                producer = self.streams[q.stream].producer
                if producer is not None and not q.back_edge:
                    preds[node.index].add(producer.index)
        rank: dict[int, int] = {}
        remaining = set(preds)
        while remaining:
            progressed = False
            for i in sorted(remaining):
                if all(p in rank for p in preds[i]):
                    rank[i] = 1 + max((rank[p] for p in preds[i]), default=-1)
                    remaining.discard(i)
                    progressed = True
            if not progressed:  # a cycle without back edge: validation should have caught it
                for i in remaining:
                    rank[i] = 0
                break
        for node in self.nodes:
            node.rank = rank[node.index]
        for order, node in enumerate(sorted(self.nodes, key=lambda n: n.name)):
            node.order = order

    def _open_order(self) -> list[NodeState]:
        """Topological order over streams (no back edges) and side packets, ties by name."""
        producers_of_side: dict[str, int] = {}
        for node in self.nodes:
            for sb in node.spec.side_outputs:
                producers_of_side[sb.name] = node.index
        preds: dict[int, set[int]] = {n.index: set() for n in self.nodes}
        for node in self.nodes:
            for q in node.queues:
                producer = self.streams[q.stream].producer
                if producer is not None and not q.back_edge and producer is not node:
                    preds[node.index].add(producer.index)
            for sb in node.spec.side_inputs:
                p = producers_of_side.get(sb.name)
                if p is not None and p != node.index:
                    preds[node.index].add(p)
        done: set[int] = set()
        order: list[NodeState] = []
        by_name = sorted(self.nodes, key=lambda n: n.name)
        while len(order) < len(self.nodes):
            ready = [n for n in by_name if n.index not in done and preds[n.index] <= done]
            if not ready:  # cycle: fall back to name order for the rest
                ready = [n for n in by_name if n.index not in done]
            for n in ready:
                done.add(n.index)
                order.append(n)
        return order

    def _make_context(self, node: NodeState, side_values: dict[str, Any]) -> NodeContext:
        spec = node.spec
        contract = spec.calculator.contract
        in_slots: dict[Port[Any], list[int]] = {p: [] for p in contract.inputs.values()}
        for slot, b in enumerate(spec.inputs):
            iport = contract.inputs.get(b.tag)
            if iport is not None:
                _put(in_slots[iport], b.index, slot)
        out_slots: dict[Port[Any], list[int]] = {p: [] for p in contract.outputs.values()}
        for i, b in enumerate(spec.outputs):
            oport = contract.outputs.get(b.tag)
            if oport is not None:
                _put(out_slots[oport], b.index, i)
        side_in: dict[Port[Any], list[Any]] = {p: [] for p in contract.side_inputs.values()}
        for sb in spec.side_inputs:
            siport = contract.side_inputs.get(sb.tag)
            if siport is not None:
                _put(side_in[siport], sb.index, side_values.get(sb.name))
        side_out: dict[Port[Any], list[str]] = {p: [] for p in contract.side_outputs.values()}
        for sb in spec.side_outputs:
            soport = contract.side_outputs.get(sb.tag)
            if soport is not None:
                _put(side_out[soport], sb.index, sb.name)
        ctx = NodeContext(
            node_name=node.name,
            in_slots=in_slots,
            queues=list(node.queues),
            out_slots=out_slots,
            out_names=[st.name for st in node.outputs],
            offset_zero=node.offset_zero,
            is_source=node.is_source,
            side_in=side_in,
            side_out=side_out,
            set_side_packet=self._set_side_packet,
        )
        ctx.out_bounds = [PRE_STREAM] * len(node.outputs)
        return ctx

    # ------------------------------------------------------------------ side packets

    def _set_side_packet(self, name: str, value: Any, node: str) -> None:
        with self._lock:
            if name in self._side_producer:
                raise FacegraphError(
                    f"node '{node}' set side packet '{name}' twice (side packets are set once)"
                )
            self._side_producer[name] = node
            self._side[name] = value

    def side_packet(self, name: str) -> Any:
        with self._lock:
            if name not in self._side:
                known = ", ".join(sorted(self._side)) or "none"
                raise FacegraphError(f"no side packet '{name}' (known: {known})")
            return self._side[name]

    # ------------------------------------------------------------------ start

    def start(self, side_packets: Mapping[str, Any]) -> None:
        """Open every node (caller's thread) and let the graph run."""
        if self._started:
            raise FacegraphError(f"graph '{self.spec.name}' was already started")
        self._started = True
        self._side.update(side_packets)
        if self._recorder is not None:
            self._recorder.origin_ns = time.perf_counter_ns()
        for node in self._open_order():
            self._open_node(node)
            if self._error is not None:
                self._finalize_abort()
                raise self._error
        with self._lock:
            self._open_count = len(self.nodes)
            if self.threads:
                for ex in self.executors.values():
                    ex.pool = WorkerPool(ex.size, f"facegraph-{ex.name}")
            self._evaluate_locked([n for n in self.nodes if not n.is_source])
            self._kick_locked()
        self._after_unlock()

    def _open_node(self, node: NodeState) -> None:
        spec = node.spec
        phase = "init"
        try:
            node.calc = spec.calculator(spec.options)
            phase = "side packets"
            side_values: dict[str, Any] = {}
            for sb in spec.side_inputs:
                if sb.name not in self._side:
                    origin = self._side_producer_hint(sb.name)
                    raise FacegraphError(
                        f"side input {sb.tag}:{sb.index} needs side packet '{sb.name}', "
                        f"which {origin}"
                    )
                side_values[sb.name] = self._side[sb.name]
            node.ctx = self._make_context(node, side_values)
            node.ctx.ts = PRE_STREAM
            phase = "open"
            t0 = time.perf_counter_ns() if self._timing else 0
            node.calc.open(node.ctx)
            if self._recorder is not None:
                self._recorder.record(
                    node.index, node.name, "open", t0, time.perf_counter_ns(), PRE_STREAM
                )
        except Exception as exc:
            with self._lock:
                self._fail_locked(self._wrap(node, phase, PRE_STREAM, exc))
            return
        node.opened = True
        with self._lock:
            calls = self._publish_outputs_locked(node, [])
        self._call_observers(calls)

    def _side_producer_hint(self, name: str) -> str:
        for n in self.nodes:
            for sb in n.spec.side_outputs:
                if sb.name == name:
                    return f"node '{n.name}' did not set in open"
        return "was not given to start() and has no default"

    # ------------------------------------------------------------------ readiness

    def _readiness(self, node: NodeState) -> tuple[int, Timestamp]:
        if node.stop:
            return CLOSE, POST_STREAM
        queues = node.queues
        if node.sync:
            min_head = _ABOVE_DONE
            min_empty = _ABOVE_DONE
            for q in queues:
                pk = q.packets
                if pk:
                    h = pk[0].timestamp
                    min_head = min(min_head, h)
                else:
                    b = q.bound
                    min_empty = min(min_empty, b)
            if min_head < min_empty:
                return PACKET, min_head
            settled = min_empty  # <= min_head here
            if settled >= DONE:
                return CLOSE, POST_STREAM
            if node.pob:
                if settled - 1 > node.last_ts and settled > MIN:
                    return BOUND, settled - 1
                return NONE, 0
        else:
            min_head = _ABOVE_DONE
            settled = _ABOVE_DONE
            for q in queues:
                pk = q.packets
                if pk:
                    h = pk[0].timestamp
                    min_head = min(min_head, h)
                elif q.bound < settled:
                    settled = q.bound
            if min_head < _ABOVE_DONE:
                return PACKET, min_head
            if settled >= DONE:
                return CLOSE, POST_STREAM
            if node.pob:
                best = MIN  # only a bound above MIN gives a valid call timestamp (best - 1)
                seen = node.seen
                for i, q in enumerate(queues):
                    b = q.bound
                    if b > seen[i] and b > best:
                        best = b
                if best > MIN:
                    return BOUND, best - 1
                return NONE, 0
        if node.offset_zero:
            for b in node.ctx.out_bounds:
                if b < settled:
                    return PROPAGATE, settled
        return NONE, 0

    def _settled(self, node: NodeState) -> Timestamp:
        s = DONE
        for q in node.queues:
            pk = q.packets
            v = pk[0].timestamp if pk else q.bound
            s = min(s, v)
        return s

    def _evaluate_locked(self, worklist: list[NodeState]) -> None:
        """Re-check nodes whose inputs changed: schedule the ready ones, propagate bounds."""
        heap = self._heap
        while worklist:
            node = worklist.pop()
            if node.running or node.scheduled or node.closed:
                continue
            if node.is_source and not node.stop:
                continue
            kind, ts = self._readiness(node)
            if kind == NONE:
                continue
            if kind == PROPAGATE:
                self._advance_locked(node, ts, worklist)
                continue
            node.scheduled = True
            heapq.heappush(heap, (-node.rank, ts, node.order, node))

    def _advance_locked(self, node: NodeState, bound: Timestamp, worklist: list[NodeState]) -> None:
        ob = node.ctx.out_bounds
        for i, st in enumerate(node.outputs):
            if ob[i] < bound:
                ob[i] = bound
                self._set_bound_locked(st, bound)
        worklist.extend(node.downstream)

    # ------------------------------------------------------------------ publishing

    def _set_bound_locked(self, st: StreamState, bound: Timestamp) -> None:
        st.bound = bound
        for q in st.consumers:
            q.bound = bound
        if st.watched:
            if bound >= DONE:
                for p in st.pollers:
                    p.done = True
            if st.graph_output and self._once:
                self._check_once_locked()

    def _publish_outputs_locked(
        self, node: NodeState, worklist: list[NodeState]
    ) -> list[tuple[Observer, Packet[Any]]] | None:
        """Move a call's emitted packets and new bounds into the consumers' queues."""
        ctx = node.ctx
        pending = ctx.pending
        outputs = node.outputs
        calls: list[tuple[Observer, Packet[Any]]] | None = None
        if pending:
            for i, p in pending:
                st = outputs[i]
                for q in st.consumers:
                    if not q.closed:
                        q.push(p)
                if st.watched:
                    calls = self._watch_packet_locked(st, p, calls)
            pending.clear()
        ob = ctx.out_bounds
        for i, st in enumerate(outputs):
            if ob[i] != st.bound:
                self._set_bound_locked(st, ob[i])
        worklist.extend(node.downstream)
        return calls

    def _watch_packet_locked(
        self,
        st: StreamState,
        p: Packet[Any],
        calls: list[tuple[Observer, Packet[Any]]] | None,
    ) -> list[tuple[Observer, Packet[Any]]] | None:
        for poller in st.pollers:
            poller.items.append(p)
        if st.graph_output and self._once:
            req = self._once.get(p.timestamp)
            if req is not None:
                req.values[st.name] = p.value
        if st.observers:
            if calls is None:
                calls = []
            calls.extend((cb, p) for cb in st.observers)
        return calls

    def _check_once_locked(self) -> None:
        outs = [st for st in self.streams.values() if st.graph_output]
        low = min((st.bound for st in outs), default=DONE)
        finished = [ts for ts in self._once if ts < low]
        for ts in finished:
            self._once.pop(ts).done = True
        if finished and self._waiters:
            self._cond.notify_all()

    # ------------------------------------------------------------------ picking and running

    def _throttled(self, node: NodeState) -> bool:
        limit = self.max_queue
        for q in self._throttle_queues[node.index]:
            if not q.closed and len(q.packets) >= limit:
                return True
        return False

    def _runnable_sources(self) -> list[NodeState]:
        return [
            n
            for n in self._sources
            if n.opened
            and not (n.closed or n.running or n.scheduled or n.stop)
            and not self._throttled(n)
        ]

    def _pick_locked(self) -> tuple[NodeState, int, Timestamp] | None:
        """Choose the next call by priority, take its input set, mark the node running."""
        if self._stopping or not self._started:
            return None
        heap = self._heap
        deferred: list[tuple[int, Timestamp, int, NodeState]] | None = None
        picked: tuple[NodeState, int, Timestamp] | None = None
        threads = self.threads
        while heap:
            entry = heapq.heappop(heap)
            node = entry[3]
            node.scheduled = False
            if threads and node.executor.busy >= node.executor.size:
                if deferred is None:
                    deferred = []
                deferred.append(entry)
                node.scheduled = True
                continue
            kind, ts = self._readiness(node)
            if kind == NONE:
                continue
            if kind == PROPAGATE:
                worklist: list[NodeState] = []
                self._advance_locked(node, ts, worklist)
                self._evaluate_locked(worklist)
                continue
            ctx = node.ctx
            inputs = ctx.inputs
            # Snapshot each input's bound together with the input set, so that
            # ctx.input_bound() is consistent with the packets delivered (and the same
            # in both modes), however the queues change while the call runs.
            bounds = ctx.in_bounds
            if kind == PACKET:
                for i, q in enumerate(node.queues):
                    pk = q.packets
                    if pk and pk[0].timestamp == ts:
                        inputs[i] = pk.popleft()
                    else:
                        inputs[i] = None
                    bounds[i] = pk[0].timestamp if pk else q.bound
            else:
                for i, q in enumerate(node.queues):
                    inputs[i] = None
                    pk = q.packets
                    bounds[i] = pk[0].timestamp if pk else q.bound
            if node.pob and not node.sync:
                seen = node.seen
                for i, q in enumerate(node.queues):
                    seen[i] = q.bound
            if kind != CLOSE:
                node.last_ts = ts
            picked = (node, kind, ts)
            break
        if deferred:
            for entry in deferred:
                heapq.heappush(heap, entry)
        if picked is None and not deferred:
            sources = self._runnable_sources()
            if threads:
                sources = [n for n in sources if n.executor.busy < n.executor.size]
            if sources:
                node = min(sources, key=lambda n: (min(n.ctx.out_bounds, default=DONE), n.order))
                picked = (node, SOURCE, UNSTARTED)
        if picked is not None:
            node = picked[0]
            node.running = True
            node.executor.busy += 1
            self._running += 1
        return picked

    def _kick_locked(self) -> None:
        """Threads mode: start every call that can start now."""
        if not self.threads:
            return
        while True:
            picked = self._pick_locked()
            if picked is None:
                break
            pool = picked[0].executor.pool
            assert pool is not None
            pool.submit(self._run_call, picked[0], picked[1], picked[2])
        self._check_stall_locked()

    def _run_call(self, node: NodeState, kind: int, ts: Timestamp) -> None:
        """Run one calculator call (outside the lock), then publish its results."""
        ctx = node.ctx
        ctx.ts = ts
        calc = node.calc
        assert calc is not None
        node.call_kind, node.call_ts, node.call_started = kind, ts, time.monotonic()
        result: Any = None
        error: CalculatorError | None = None
        t0 = time.perf_counter_ns() if self._timing else 0
        try:
            if kind == CLOSE:
                calc.close(ctx)
            else:
                result = calc.process(ctx)
        except Exception as exc:
            error = self._wrap(node, _PHASE[kind], ts, exc)
        if self._recorder is not None:
            self._recorder.record(
                node.index, node.name, _PHASE[kind], t0, time.perf_counter_ns(), ts
            )
        with self._lock:
            calls = self._complete_locked(node, kind, ts, result, error)
            if calls is None:
                self._finish_locked(node)
        if calls is not None:
            self._call_observers(calls)
            with self._lock:
                self._finish_locked(node)
        self._after_unlock()

    def _complete_locked(
        self, node: NodeState, kind: int, ts: Timestamp, result: Any, error: CalculatorError | None
    ) -> list[tuple[Observer, Packet[Any]]] | None:
        node.calls += 1
        ctx = node.ctx
        if error is not None or self._stopping:
            if error is not None:
                self._fail_locked(error)
            ctx.pending.clear()
            if kind == CLOSE:
                node.closed = True
            return None
        ob = ctx.out_bounds
        if kind == CLOSE:
            node.closed = True
            self._open_count -= 1
            for q in node.queues:
                q.closed = True
                q.packets.clear()
            for i in range(len(ob)):
                ob[i] = DONE
        else:
            if kind != SOURCE and node.offset_zero:
                adv = next_allowed(ts) if kind == PACKET else self._settled(node)
                for i in range(len(ob)):
                    ob[i] = max(ob[i], adv)
            if result is STOP:
                node.stop = True
        worklist: list[NodeState] = []
        calls = self._publish_outputs_locked(node, worklist)
        self._evaluate_locked(worklist)
        if self.threads:
            self._kick_locked()
        return calls

    def _finish_locked(self, node: NodeState) -> None:
        node.running = False
        node.executor.busy -= 1
        self._running -= 1
        if self._stopping:
            if self._running == 0 and not self._finalizing:
                self._finalizing = True
        else:
            self._evaluate_locked([node])
            if not self._maybe_done_locked() and self.threads:
                self._kick_locked()
        if self._waiters:
            self._cond.notify_all()

    def _maybe_done_locked(self) -> bool:
        """End the run once every node has closed and every graph input is closed.

        Inputs count too: packets added after the last node stopped (say, with STOP)
        are accepted and discarded until the caller closes the inputs.
        """
        if self._done:
            return True
        if (
            self._open_count == 0
            and self._running == 0
            and all(st.bound >= DONE for st in self.streams.values() if st.graph_input)
        ):
            self._finish_run_locked()
            return True
        return False

    def _after_unlock(self) -> None:
        """Work that must happen outside the lock: closing calculators, writing the trace."""
        if self._finalizing and not self._done:
            self._finalize_abort()
        elif self._done and self._recorder is not None and self._trace_path is not None:
            self._write_trace_once()

    def _write_trace_once(self) -> None:
        path = self._trace_path
        if path is None or self._recorder is None:
            return
        with self._lock:
            if self._trace_path is None:
                return
            self._trace_path = None
        try:
            self._recorder.write_trace(path)
        except OSError as exc:  # a full disk: the caller checks the file, no thread crash
            self.trace_error = exc

    def step(self) -> bool:
        """Deterministic mode: run the next call on this thread; False when nothing can run."""
        with self._lock:
            picked = self._pick_locked()
        if picked is None:
            self._after_unlock()
            if self._error is not None:
                raise self._error
            return False
        self._run_call(*picked)
        if self._error is not None:
            raise self._error
        return True

    # ------------------------------------------------------------------ failure and the end

    def _wrap(
        self, node: NodeState, phase: str, ts: Timestamp, exc: BaseException
    ) -> CalculatorError:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return CalculatorError(
            node.name, node.spec.calculator_name, phase, describe(ts), exc, tb.rstrip()
        )

    def _fail_locked(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._stopping = True
        if self._running == 0 and not self._finalizing and not self._done:
            self._finalizing = True
        if self._waiters:
            self._cond.notify_all()

    def _finalize_abort(self) -> None:
        """Close every opened, unclosed calculator; then end the run. Outside the lock."""
        with self._lock:
            # Exactly one thread closes the calculators (a worker, the canceller or a waiter).
            if self._done or self._abort_claimed:
                return
            self._abort_claimed = True
            self._finalizing = True
        for node in self._open_order():
            if not node.opened or node.closed or node.calc is None:
                continue
            node.closed = True
            ctx = node.ctx
            ctx.ts = POST_STREAM
            for i in range(len(ctx.inputs)):
                ctx.inputs[i] = None
            t0 = time.perf_counter_ns() if self._timing else 0
            try:
                node.calc.close(ctx)
            except Exception as exc:
                self.close_errors.append(self._wrap(node, "close", POST_STREAM, exc))
            if self._recorder is not None:
                self._recorder.record(
                    node.index, node.name, "close", t0, time.perf_counter_ns(), POST_STREAM
                )
            ctx.pending.clear()
        with self._lock:
            self._finish_run_locked()
        self._after_unlock()

    def _finish_run_locked(self) -> None:
        self._done = True
        for st in self.streams.values():
            for p in st.pollers:
                p.done = True
        for req in self._once.values():
            req.done = True
        self._once.clear()
        for ex in self.executors.values():
            if ex.pool is not None:
                # Never wait here: this may run on one of the pool's own threads.
                ex.pool.shutdown(wait=False)
        self._cond.notify_all()

    def _join_pools(self) -> None:
        if threading.current_thread().name.startswith("facegraph-"):
            return
        for ex in self.executors.values():
            if ex.pool is not None:
                ex.pool.shutdown(wait=True)

    def _check_stall_locked(self) -> None:
        """Threads mode: nothing running, nothing ready, inputs closed, yet not done."""
        if (
            self._running == 0
            and not self._stopping
            and not self._done
            and self._open_count > 0
            and not self._heap
            and all(st.bound >= DONE for st in self.streams.values() if st.graph_input)
            and not self._runnable_sources()
        ):
            self._fail_locked(GraphStalledError(self.report_locked("graph is stalled")))

    def report_locked(self, headline: str) -> str:
        """What every unfinished node waits for (queued heads, bounds it waits on)."""
        lines = [f"graph '{self.spec.name}': {headline}"]
        open_inputs = [
            st.name for st in self.streams.values() if st.graph_input and st.bound < DONE
        ]
        if open_inputs:
            lines.append(
                "  graph inputs still open: "
                + ", ".join(f"'{n}' (bound {describe(self.streams[n].bound)})" for n in open_inputs)
            )
        for node in self.nodes:
            if node.closed:
                continue
            where = node.spec.where()
            if node.running:
                state = "running"
                if node.call_kind in _PHASE:
                    took = time.monotonic() - node.call_started
                    state = (
                        f"running {_PHASE[node.call_kind]} at timestamp "
                        f"{describe(node.call_ts)} for {took:.1f} s"
                    )
            else:
                state = "ready" if node.scheduled else "waiting"
            lines.append(f"  {where} [{node.spec.calculator_name}, {state}]")
            if node.is_source:
                full = [
                    f"'{q.stream}' -> {q.node.name}.{q.port} ({len(q.packets)}/{self.max_queue})"
                    for q in self._throttle_queues[node.index]
                    if not q.closed and len(q.packets) >= self.max_queue
                ]
                if full:
                    lines.append(f"    source throttled by full queue(s): {', '.join(full)}")
            for q in node.queues:
                edge = " (back edge)" if q.back_edge else ""
                if q.packets:
                    lines.append(
                        f"    input {q.port} stream '{q.stream}'{edge}: {len(q.packets)} queued, "
                        f"head at {describe(q.packets[0].timestamp)}"
                    )
                elif q.bound < DONE:
                    lines.append(
                        f"    input {q.port} stream '{q.stream}'{edge}: empty, waits on its bound "
                        f"{describe(q.bound)}"
                    )
                else:
                    lines.append(f"    input {q.port} stream '{q.stream}'{edge}: done")
        return "\n".join(lines)

    def report(self, headline: str) -> str:
        with self._lock:
            return self.report_locked(headline)

    def _call_observers(self, calls: list[tuple[Observer, Packet[Any]]] | None) -> None:
        if not calls:
            return
        for cb, p in calls:
            try:
                cb(p)
            except Exception as exc:
                tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                err = CalculatorError(
                    f"observer {getattr(cb, '__qualname__', repr(cb))}",
                    "observer",
                    "callback",
                    describe(p.timestamp),
                    exc,
                    tb.rstrip(),
                )
                with self._lock:
                    self._fail_locked(err)
                return

    # ------------------------------------------------------------------ graph inputs

    def _check_running_locked(self) -> None:
        if self._error is not None:
            raise self._error
        if not self._started:
            raise GraphClosedError(f"graph '{self.spec.name}' is not started; call start() first")
        if self._done or self._stopping:
            raise GraphClosedError(f"graph '{self.spec.name}' has finished or was cancelled")

    def _input_stream(self, name: str) -> StreamState:
        st = self.streams.get(name)
        if st is None or not st.graph_input:
            known = ", ".join(f"'{s}'" for s in self.spec.input_streams) or "none"
            raise FacegraphError(
                f"'{name}' is not an input stream of graph '{self.spec.name}' (inputs: {known})"
            )
        return st

    def _full(self, st: StreamState) -> bool:
        limit = self.max_queue
        queues = self._input_throttle_queues.get(st.name, st.consumers)
        return any(q.limited and not q.closed and len(q.packets) >= limit for q in queues)

    def add_packet(self, name: str, value: Any, timestamp: Timestamp) -> None:
        st = self._input_stream(name)
        packet = Packet(value, timestamp)
        stall: GraphStalledError | None = None
        calls: list[tuple[Observer, Packet[Any]]] | None = None
        while True:
            with self._lock:
                self._check_running_locked()
                if timestamp < st.bound:
                    raise TimestampError(
                        f"graph input stream '{name}': packet at timestamp {describe(timestamp)} "
                        f"is below the stream's bound {describe(st.bound)} (timestamps must "
                        "strictly increase)"
                    )
                if not is_allowed_in_stream(timestamp):
                    raise TimestampError(
                        f"graph input stream '{name}': {describe(timestamp)} is not a valid "
                        "packet timestamp"
                    )
                if not self._full(st):
                    for q in st.consumers:
                        if not q.closed:
                            q.push(packet)
                    if st.watched:
                        calls = self._watch_packet_locked(st, packet, None)
                    self._set_bound_locked(st, next_allowed(timestamp))
                    self._evaluate_locked([q.node for q in st.consumers])
                    self._kick_locked()
                    stall = None
                    break
                if self.threads:
                    if self._running == 0 and not self._heap and not self._runnable_sources():
                        stall = GraphStalledError(
                            self.report_locked(
                                f"add_packet('{name}') would block forever: a queue it feeds is "
                                f"full ({self.max_queue} packets) and no node can run"
                            )
                        )
                        self._fail_locked(stall)
                        break
                    self._waiters += 1
                    try:
                        self._cond.wait()
                    finally:
                        self._waiters -= 1
                    continue
            # Deterministic: make room by running the graph on this thread (no other
            # thread touches the queues in this mode, so _full() needs no lock here).
            progressed = self.step()
            while progressed and self._full(st):
                progressed = self.step()
            if not progressed:
                with self._lock:
                    stall = GraphStalledError(
                        self.report_locked(
                            f"add_packet('{name}') cannot make room: a queue it feeds is full "
                            f"({self.max_queue} packets) and no node can run"
                        )
                    )
                    self._fail_locked(stall)
                self._after_unlock()
                raise stall
        if stall is not None:
            self._after_unlock()  # close the calculators before reporting
            raise stall
        self._call_observers(calls)
        self._after_unlock()

    def advance_input(self, name: str, bound: Timestamp) -> None:
        """Raise a graph input's bound without a packet ("nothing before ``bound``")."""
        st = self._input_stream(name)
        with self._lock:
            self._check_running_locked()
            if bound > st.bound:
                self._set_bound_locked(st, bound)
                self._evaluate_locked([q.node for q in st.consumers])
                self._kick_locked()
        self._after_unlock()

    def close_input(self, name: str) -> None:
        st = self._input_stream(name)
        with self._lock:
            if st.bound >= DONE or self._done or self._stopping:
                return
            self._set_bound_locked(st, DONE)
            self._evaluate_locked([q.node for q in st.consumers])
            if not self._maybe_done_locked():
                self._kick_locked()
        self._after_unlock()

    def close_all_inputs(self) -> None:
        for name in self.spec.input_streams:
            self.close_input(name)

    def stop_sources(self) -> None:
        """Treat every source as if its last call returned STOP (it is closed next)."""
        with self._lock:
            if self._done or self._stopping:
                return
            for node in self.nodes:
                if node.is_source and not node.closed:
                    node.stop = True
            self._evaluate_locked([n for n in self.nodes if n.is_source])
            self._kick_locked()
        self._after_unlock()

    def input_bound(self, name: str) -> Timestamp:
        return self._input_stream(name).bound

    # ------------------------------------------------------------------ observing

    def observe(self, name: str, callback: Observer) -> None:
        st = self.streams.get(name)
        if st is None:
            raise FacegraphError(f"graph '{self.spec.name}' has no stream '{name}'")
        if self._started:
            raise FacegraphError("observe() must be called before start()")
        st.observers.append(callback)
        st.update_watched()

    def poll(self, name: str) -> Iterator[Packet[Any]]:
        st = self.streams.get(name)
        if st is None:
            raise FacegraphError(f"graph '{self.spec.name}' has no stream '{name}'")
        poller = _Poller()
        with self._lock:
            st.pollers.append(poller)
            st.update_watched()
            if st.bound >= DONE or self._done:
                poller.done = True
        return self._poll_iter(st, poller)

    def _poll_iter(self, st: StreamState, poller: _Poller) -> Iterator[Packet[Any]]:
        try:
            while True:
                with self._lock:
                    while not poller.items and not poller.done and self.threads:
                        if self._error is not None:
                            break
                        self._waiters += 1
                        try:
                            self._cond.wait()
                        finally:
                            self._waiters -= 1
                    if poller.items:
                        item = poller.items.popleft()
                    elif poller.done or self._error is not None:
                        if self._error is not None:
                            raise self._error
                        return
                    else:
                        item = None
                if item is not None:
                    yield item
                    continue
                if not self.step():  # deterministic: drive the graph
                    with self._lock:
                        if poller.items or poller.done:
                            continue
                        stall = GraphStalledError(
                            self.report_locked(
                                f"poll('{st.name}') would block forever: no node can run"
                            )
                        )
                        self._fail_locked(stall)
                    self._after_unlock()
                    raise stall
        finally:
            with self._lock:
                if poller in st.pollers:
                    st.pollers.remove(poller)
                    st.update_watched()

    def run_once(self, inputs: Mapping[str, Any], timestamp: Timestamp | None) -> dict[str, Any]:
        for name in inputs:
            self._input_stream(name)
        # Choosing the timestamp and feeding it happen under one lock, so concurrent
        # callers get consecutive timestamps and feed them in order; waiting for the
        # outputs happens outside it, so their items pipeline through the graph.
        with self._feed_lock:
            with self._lock:
                self._check_running_locked()
                if timestamp is None:
                    timestamp = max([0, *(self.streams[n].bound for n in self.spec.input_streams)])
                if timestamp in self._once:
                    raise FacegraphError(f"run_once at {describe(timestamp)} is already in flight")
                req = _OnceRequest(timestamp)
                self._once[timestamp] = req
            try:
                for name, value in inputs.items():
                    self.add_packet(name, value, timestamp)
                for name in self.spec.input_streams:
                    if name not in inputs:
                        self.advance_input(name, next_allowed(timestamp))
            except BaseException:
                with self._lock:
                    self._once.pop(timestamp, None)
                raise
        with self._lock:
            self._check_once_locked()
        self._wait_for(lambda: req.done, None, f"run_once at {describe(timestamp)}")
        return req.values

    # ------------------------------------------------------------------ waiting

    def _idle_locked(self) -> bool:
        return self._running == 0 and not self._heap and not self._runnable_sources()

    def _wait_for(self, predicate: Callable[[], bool], timeout: float | None, what: str) -> None:
        """Block until ``predicate()`` (checked under the lock) holds, the run fails, or timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                failed = self._error is not None
                if failed and (self._done or not self.threads):
                    raise self._error  # type: ignore[misc]
                # After a failure, wait for the calculators to be closed before raising.
                if not failed and predicate():
                    return
                if self._done:
                    return
                if self.threads:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise TimeoutError(self.report_locked(f"timed out waiting for {what}"))
                    self._waiters += 1
                    try:
                        self._cond.wait(remaining)
                    finally:
                        self._waiters -= 1
                    continue
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(self.report(f"timed out waiting for {what}"))
            if not self.step():
                with self._lock:
                    if predicate() or self._done:
                        continue
                    stall = GraphStalledError(
                        self.report_locked(f"{what} can never happen: no node can run")
                    )
                    self._fail_locked(stall)
                self._after_unlock()
                raise stall

    def wait_until_done(self, timeout: float | None) -> None:
        if not self._started:
            raise GraphClosedError(f"graph '{self.spec.name}' was never started")
        try:
            self._wait_for(lambda: self._done, timeout, "the graph to finish")
            self._after_unlock()
        finally:
            if self._done:
                self._join_pools()  # no thread outlives a finished run
        if self._error is not None:
            raise self._error

    def wait_until_idle(self, timeout: float | None) -> None:
        if not self._started:
            raise GraphClosedError(f"graph '{self.spec.name}' was never started")

        def idle() -> bool:
            if not self._idle_locked():
                return False
            # Inputs closed but not done: only finishing (or a stall) counts as idle then.
            return not (
                self._open_count > 0
                and not self._stopping
                and all(st.bound >= DONE for st in self.streams.values() if st.graph_input)
            )

        self._wait_for(idle, timeout, "the graph to become idle")
        if self._error is not None:
            raise self._error

    def cancel(self, timeout: float | None = None) -> None:
        in_worker = threading.current_thread().name.startswith("facegraph-")
        with self._lock:
            if self._done:
                return
            self._cancelled = True
            self._stopping = True
            if not self._started:
                self._finish_run_locked()
                return
            if self._running == 0:
                self._finalizing = True
        self._after_unlock()
        if in_worker:
            return  # called from a callback: the run ends when the current call returns
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not self._done:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    # A call that never returns cannot be interrupted in Python: say which
                    # one; the run ends (closing every calculator) if it ever returns.
                    raise TimeoutError(
                        self.report_locked(
                            f"cancelled, but a call did not return within {timeout} s; the "
                            "run ends when it returns"
                        )
                    )
                self._waiters += 1
                try:
                    self._cond.wait(remaining)
                finally:
                    self._waiters -= 1
        self._join_pools()

    @property
    def done(self) -> bool:
        return self._done

    @property
    def error(self) -> BaseException | None:
        return self._error

    # ------------------------------------------------------------------ stats

    def stats(self) -> GraphStats:
        nodes = []
        for node in self.nodes:
            durations = self._recorder.durations[node.index] if self._recorder else []
            nodes.append(summarize(node.name, node.spec.calculator_name, node.calls, durations))
        queues = [
            QueueStats(n.name, q.port, q.stream, q.max_depth, q.drops, len(q.packets))
            for n in self.nodes
            for q in n.queues
        ]
        return GraphStats(self.spec.name, tuple(nodes), tuple(queues))


def _put(values: list[Any], index: int, value: Any) -> None:
    """values[index] = value, growing the list with None as needed."""
    while len(values) <= index:
        values.append(None)
    values[index] = value


def iter_nodes(nodes: Iterable[NodeState]) -> list[str]:
    return [n.name for n in nodes]
