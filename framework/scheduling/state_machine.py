"""The scheduler's state core: events in, actions out; no threads, no clocks, no user code.

:class:`SchedulerState` holds every piece of scheduling state (queues, bounds, node
statuses, the ready heap, flow control) and changes it only in response to events:
a graph input got a packet, a bound or was closed; a call was picked, completed or
finished; the run failed. Events return what the driver must do next (the call to
run, the observer callbacks to make). :mod:`facegraph.scheduling.driver` runs those
actions on threads or on the caller's thread and owns every lock; this module is
tested step by step, with :meth:`SchedulerState.validate_state` after each step.

It implements MediaPipe's timing model; the rules, exactly:

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

**Input policies** (:mod:`facegraph.scheduling.input_policies`) decide when a node
runs and what its input set holds:

**sync** (MediaPipe's DefaultInputStreamHandler). T = min over inputs of (head
timestamp, else bound). The node is ready when some input has a packet at T and
every empty input's bound is above T; the input set holds the packets at T
(others None). When every input is done (bound DONE, queue empty) the node is
closed: ``close`` runs, then all its outputs get bound DONE.

**immediate.** Ready whenever any queue is non-empty: T = min head timestamp; the
input set holds the packets at T from the queues whose head is at T. Closed when
every input is done.

**keep_latest** (MediaPipe's FixedSizeInputStreamHandler with target size 1). Like
sync, but first every timestamp older than the newest one queued on all inputs is
dropped (counted), so a slow node processes the latest complete input set. Its
queues never throttle producers; each drops its oldest packet beyond
``max_queue_size``.

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
from typing import Any

from ..calculator import STOP
from ..errors import CalculatorError, FacegraphError, TimestampError
from ..packet import Packet
from ..spec import GraphSpec
from ..timestamp import (
    DONE,
    MAX,
    MIN,
    UNSTARTED,
    Timestamp,
    describe,
    is_allowed_in_stream,
    next_allowed,
)
from .input_policies import CLOSE_NOW, settled
from .nodes import (
    CLOSE,
    CLOSED,
    CREATED,
    IDLE,
    NONE,
    PACKET,
    PROPAGATE,
    READY,
    RUNNING,
    SOURCE,
    CallKind,
    Executor,
    NodeState,
    Observer,
    OnceRequest,
    SchedulerStateError,
    StreamState,
)
from .wiring import Wiring

ObserverCalls = list[tuple[Observer, Packet[Any]]]
#: An action: run this call (node, kind, input timestamp).
Call = tuple[NodeState, CallKind, Timestamp]
_HeapEntry = tuple[int, Timestamp, int, NodeState]


class SchedulerState:
    """All scheduling state of one run, changed only by the event methods below.

    ``limit_executors`` models the executors' capacities (threads mode): a ready node
    whose executor is busy waits. ``checked`` enforces the node status transitions.
    Not thread-safe: the driver serializes every call.
    """

    def __init__(self, spec: GraphSpec, *, limit_executors: bool, checked: bool = False) -> None:
        wiring = Wiring(spec, checked=checked)
        self.spec = spec
        self.limit_executors = limit_executors
        self.max_queue = spec.max_queue_size
        self.wiring = wiring
        self.nodes: list[NodeState] = wiring.nodes
        self.streams: dict[str, StreamState] = wiring.streams
        self.executors: dict[str, Executor] = wiring.executors
        self.sources = [n for n in self.nodes if n.is_source]
        self.graph_inputs = [st for st in self.streams.values() if st.graph_input]
        self.graph_outputs = [st for st in self.streams.values() if st.graph_output]
        self._throttle_queues = wiring.throttle_queues
        self._input_throttle_queues = wiring.input_throttle_queues
        self.heap: list[_HeapEntry] = []
        self.running = 0  # calls in flight
        self.open_count = 0  # nodes whose close has not completed
        self.started = False
        self.stopping = False  # failed or cancelled: no new calls
        self.done = False
        self.error: BaseException | None = None
        #: Set when something a waiter may wait for happened; the driver clears it.
        self.wake = False
        self.once: dict[Timestamp, OnceRequest] = {}
        self.side: dict[str, Any] = {}
        self.side_producer: dict[str, str] = {}
        self._seen_bounds: dict[str, Timestamp] = {}  # validate_state: bounds never drop

    # ------------------------------------------------------------------ queries

    def inputs_closed(self) -> bool:
        return all(st.bound >= DONE for st in self.graph_inputs)

    def idle(self) -> bool:
        """No call running or ready, and no source may run."""
        return self.running == 0 and not self.heap and not self.runnable_sources()

    def stalled(self) -> bool:
        """Nothing running, nothing ready, inputs closed, yet not done."""
        return (
            not self.stopping
            and not self.done
            and self.open_count > 0
            and self.idle()
            and self.inputs_closed()
        )

    def throttled(self, node: NodeState) -> bool:
        limit = self.max_queue
        for q in self._throttle_queues[node.index]:
            if not q.closed and len(q.packets) >= limit:
                return True
        return False

    def full_queues_of_source(self, node: NodeState) -> list[str]:
        """The full queues that throttle a source, described for a report."""
        return [
            f"'{q.stream}' -> {q.node.name}.{q.port} ({len(q.packets)}/{self.max_queue})"
            for q in self._throttle_queues[node.index]
            if not q.closed and len(q.packets) >= self.max_queue
        ]

    def runnable_sources(self) -> list[NodeState]:
        return [
            n for n in self.sources if n.status is IDLE and not n.stop and not self.throttled(n)
        ]

    def input_full(self, st: StreamState) -> bool:
        """A graph input must wait: a queue downstream of it is full."""
        limit = self.max_queue
        # A loop, not any(<generator>): this runs on every graph input packet, over every
        # queue downstream of the input, and a generator's resumptions cost more.
        for q in self._input_throttle_queues.get(st.name, st.consumers):
            if q.limited and not q.closed and len(q.packets) >= limit:
                return True
        return False

    # ------------------------------------------------------------------ side packets

    def set_side_packet(self, name: str, value: Any, node: str) -> None:
        if name in self.side_producer:
            raise FacegraphError(
                f"node '{node}' set side packet '{name}' twice (side packets are set once)"
            )
        self.side_producer[name] = node
        self.side[name] = value

    def side_packet(self, name: str) -> Any:
        if name not in self.side:
            known = ", ".join(sorted(self.side)) or "none"
            raise FacegraphError(f"no side packet '{name}' (known: {known})")
        return self.side[name]

    def missing_side_packet(self, name: str) -> str:
        """Why side packet ``name`` is missing, for an error message."""
        for n in self.nodes:
            for sb in n.spec.side_outputs:
                if sb.name == name:
                    return f"node '{n.name}' did not set in open"
        return "was not given to start() and has no default"

    # ------------------------------------------------------------------ events: start

    def opened(self, node: NodeState) -> ObserverCalls | None:
        """Event: ``open`` returned; publish what it emitted and the bounds it set."""
        node.status = IDLE
        return self._publish(node, [])

    def all_opened(self) -> None:
        """Event: every node is open; evaluate them all (sources are picked when idle)."""
        self.open_count = len(self.nodes)
        self._evaluate([n for n in self.nodes if not n.is_source])

    # ------------------------------------------------------------------ readiness

    def _evaluate(self, worklist: list[NodeState]) -> None:
        """Re-check nodes whose inputs changed: schedule the ready ones, propagate bounds."""
        heap = self.heap
        while worklist:
            node = worklist.pop()
            if node.status is not IDLE:
                continue
            if node.stop:
                kind, ts = CLOSE_NOW
            elif node.is_source:
                continue
            else:
                kind, ts = node.policy.readiness()
            if kind is NONE:
                continue
            if kind is PROPAGATE:
                self._advance(node, ts, worklist)
                continue
            node.status = READY
            heapq.heappush(heap, (-node.rank, ts, node.order, node))

    def _advance(self, node: NodeState, bound: Timestamp, worklist: list[NodeState]) -> None:
        ob = node.ctx.out_bounds
        for i, st in enumerate(node.outputs):
            if ob[i] < bound:
                ob[i] = bound
                self._set_bound(st, bound)
        worklist.extend(node.downstream)

    # ------------------------------------------------------------------ publishing

    def _set_bound(self, st: StreamState, bound: Timestamp) -> None:
        st.bound = bound
        for q in st.consumers:
            q.bound = bound
        if st.watched:
            if bound >= DONE:
                for p in st.pollers:
                    p.done = True
            if st.graph_output and self.once:
                self.check_once()

    def _publish(self, node: NodeState, worklist: list[NodeState]) -> ObserverCalls | None:
        """Move a call's emitted packets and new bounds into the consumers' queues."""
        ctx = node.ctx
        pending = ctx.pending
        outputs = node.outputs
        calls: ObserverCalls | None = None
        if pending:
            for i, p in pending:
                st = outputs[i]
                for q in st.consumers:
                    if not q.closed:
                        q.push(p)
                if st.watched:
                    calls = self._watch_packet(st, p, calls)
            pending.clear()
        ob = ctx.out_bounds
        for i, st in enumerate(outputs):
            if ob[i] != st.bound:
                self._set_bound(st, ob[i])
        worklist.extend(node.downstream)
        return calls

    def _watch_packet(
        self, st: StreamState, p: Packet[Any], calls: ObserverCalls | None
    ) -> ObserverCalls | None:
        for poller in st.pollers:
            poller.items.append(p)
        if st.graph_output and self.once:
            req = self.once.get(p.timestamp)
            if req is not None:
                req.values[st.name] = p.value
        if st.observers:
            if calls is None:
                calls = []
            calls.extend((cb, p) for cb in st.observers)
        return calls

    def check_once(self) -> None:
        """Mark the run_once requests whose timestamp every graph output has passed."""
        once = self.once
        if not once:
            return
        low = DONE  # min over the outputs' bounds (a loop: this runs on each of their moves)
        for st in self.graph_outputs:
            if st.bound < low:  # noqa: PLR1730
                low = st.bound
        finished = [ts for ts in once if ts < low]
        for ts in finished:
            self.once.pop(ts).done = True
        if finished:
            self.wake = True

    # ------------------------------------------------------------------ events: calls

    def pick(self) -> Call | None:
        """Event "a call may start": choose it by priority, take its input set."""
        if self.stopping or not self.started:
            return None
        heap = self.heap
        deferred: list[_HeapEntry] | None = None
        picked: Call | None = None
        limit = self.limit_executors
        while heap:
            entry = heapq.heappop(heap)
            node = entry[3]
            if limit and node.executor.busy >= node.executor.size:
                if deferred is None:
                    deferred = []
                deferred.append(entry)  # stays READY
                continue
            node.status = IDLE
            if node.stop:
                kind, ts = CLOSE_NOW
            else:
                kind, ts = node.policy.readiness()
            if kind is NONE:
                continue
            if kind is PROPAGATE:
                worklist: list[NodeState] = []
                self._advance(node, ts, worklist)
                self._evaluate(worklist)
                continue
            node.policy.take(kind, ts)
            if kind is not CLOSE:
                node.last_ts = ts
            picked = (node, kind, ts)
            break
        if deferred:
            for entry in deferred:
                heapq.heappush(heap, entry)
        if picked is None and not deferred:
            sources = self.runnable_sources()
            if limit:
                sources = [n for n in sources if n.executor.busy < n.executor.size]
            if sources:
                node = min(sources, key=lambda n: (min(n.ctx.out_bounds, default=DONE), n.order))
                picked = (node, SOURCE, UNSTARTED)
        if picked is not None:
            node, kind, ts = picked
            node.status = RUNNING
            node.executor.busy += 1
            self.running += 1
        return picked

    def complete(
        self,
        node: NodeState,
        kind: CallKind,
        ts: Timestamp,
        result: Any,
        error: CalculatorError | None,
    ) -> ObserverCalls | None:
        """Event: a call returned (or raised); publish its packets and bounds.

        The node stays RUNNING until :meth:`finish`, after its observers ran.
        """
        node.calls += 1
        ctx = node.ctx
        if error is not None or self.stopping:
            if error is not None:
                self.fail(error)
            ctx.pending.clear()
            return None
        ob = ctx.out_bounds
        if kind is CLOSE:
            self.open_count -= 1
            for q in node.queues:
                q.closed = True
                q.packets.clear()
            for i in range(len(ob)):
                ob[i] = DONE
        else:
            if kind is not SOURCE and node.offset_zero:
                if kind is PACKET:
                    # next_allowed(ts), inlined for the usual timestamp (once per call).
                    adv = ts + 1 if MIN <= ts < MAX else next_allowed(ts)
                else:
                    adv = settled(node.queues)
                for i, b in enumerate(ob):
                    if b < adv:
                        ob[i] = adv
            if result is STOP:
                node.stop = True
        worklist: list[NodeState] = []
        calls = self._publish(node, worklist)
        self._evaluate(worklist)
        return calls

    def finish(self, node: NodeState, kind: CallKind) -> bool:
        """Event: a call's observers ran; the node may run again. True when the run ended."""
        node.status = CLOSED if kind is CLOSE else IDLE
        node.executor.busy -= 1
        self.running -= 1
        self.wake = True
        if self.stopping:
            return False
        self._evaluate([node])
        if self.open_count or self.running:  # maybe_done()'s usual answer, without the call
            return self.done
        return self.maybe_done()

    def fail(self, error: BaseException) -> None:
        """Event: an error stops the run (the first error is the one reported)."""
        if self.error is None:
            self.error = error
        self.stopping = True
        self.wake = True

    def maybe_done(self) -> bool:
        """End the run once every node has closed and every graph input is closed.

        Inputs count too: packets added after the last node stopped (say, with STOP)
        are accepted and discarded until the caller closes the inputs.
        """
        if self.done:
            return True
        if self.open_count == 0 and self.running == 0 and self.inputs_closed():
            self.finish_run()
            return True
        return False

    def finish_run(self) -> None:
        """The run is over (finished, failed and closed, or cancelled)."""
        self.done = True
        self.wake = True
        for st in self.streams.values():
            for p in st.pollers:
                p.done = True
        for req in self.once.values():
            req.done = True
        self.once.clear()

    def cancel(self) -> None:
        """Event: the caller cancelled the run; no new calls start."""
        self.stopping = True

    def abort_close(self, node: NodeState) -> None:
        """Event: the run is aborted; the driver closes this idle node's calculator."""
        node.status = CLOSED

    # ------------------------------------------------------------------ events: graph inputs

    def check_input_packet(self, st: StreamState, timestamp: Timestamp) -> None:
        if timestamp < st.bound:
            raise TimestampError(
                f"graph input stream '{st.name}': packet at timestamp {describe(timestamp)} "
                f"is below the stream's bound {describe(st.bound)} (timestamps must "
                "strictly increase)"
            )
        if not is_allowed_in_stream(timestamp):
            raise TimestampError(
                f"graph input stream '{st.name}': {describe(timestamp)} is not a valid "
                "packet timestamp"
            )

    def input_packet(self, st: StreamState, packet: Packet[Any]) -> ObserverCalls | None:
        """Event: a graph input got a packet (already checked, and there is room)."""
        for q in st.consumers:
            if not q.closed:
                q.push(packet)
        calls = self._watch_packet(st, packet, None) if st.watched else None
        self._set_bound(st, next_allowed(packet.timestamp))
        self._evaluate([q.node for q in st.consumers])
        return calls

    def input_bound(self, st: StreamState, bound: Timestamp) -> bool:
        """Event: a graph input's bound advanced without a packet (or it closed: DONE).

        False when ``bound`` is not above the stream's bound (nothing changes).
        """
        if bound <= st.bound:
            return False
        self._set_bound(st, bound)
        self._evaluate([q.node for q in st.consumers])
        return True

    def stop_sources(self) -> None:
        """Event: every source is to close as if it had returned STOP."""
        for node in self.sources:
            if node.status is not CLOSED:
                node.stop = True
        self._evaluate(list(self.sources))

    # ------------------------------------------------------------------ invariants

    def validate_state(self) -> None:
        """Check every invariant of the state; raise :class:`SchedulerStateError` if broken.

        Meant for tests (the driver calls it after every step in checking mode); it
        walks every node and queue, so production never calls it.
        """
        problems: list[str] = []
        in_heap: dict[int, int] = {}
        for entry in self.heap:
            node = entry[3]
            in_heap[node.index] = in_heap.get(node.index, 0) + 1
            if node.status is not READY:
                problems.append(f"node '{node.name}' is in the ready heap but {node.status.name}")
        busy: dict[str, int] = {name: 0 for name in self.executors}
        running = 0
        for node in self.nodes:
            status = node.status
            if status is READY and in_heap.get(node.index) != 1:
                problems.append(
                    f"node '{node.name}' is READY with {in_heap.get(node.index, 0)} heap entries"
                )
            if status is RUNNING:
                running += 1
                busy[node.executor.name] += 1
            if self.started and status is CREATED and not self.stopping:
                problems.append(f"node '{node.name}' was never opened in a running graph")
            checks_wakeup = self.started and self.open_count and not self.stopping
            if status is IDLE and checks_wakeup and (node.stop or not node.is_source):
                # No lost wake-up: an idle node is not ready (else it should be READY).
                # readiness() is idempotent, so asking again changes nothing.
                kind = CLOSE if node.stop else node.policy.readiness()[0]
                if kind is not NONE:
                    problems.append(
                        f"node '{node.name}' is IDLE but ready for {kind.name} (lost wake-up)"
                    )
            for q in node.queues:
                st = self.streams[q.stream]
                if q.bound != st.bound:
                    problems.append(
                        f"queue {node.name}.{q.port}: bound {describe(q.bound)} differs from "
                        f"stream '{st.name}' bound {describe(st.bound)}"
                    )
                last: Timestamp | None = None
                for p in q.packets:
                    if last is not None and p.timestamp <= last:
                        problems.append(f"queue {node.name}.{q.port}: timestamps not increasing")
                    last = p.timestamp
                if last is not None and last >= q.bound:
                    problems.append(
                        f"queue {node.name}.{q.port}: packet at {describe(last)} is not below "
                        f"the bound {describe(q.bound)}"
                    )
                if q.keep_latest is not None and len(q.packets) > q.keep_latest:
                    problems.append(f"queue {node.name}.{q.port}: above keep_latest")
                if q.closed and q.packets:
                    problems.append(f"queue {node.name}.{q.port}: closed but holds packets")
            if status is not RUNNING and node.ctx is not None and not self.stopping:
                for b, st in zip(node.ctx.out_bounds, node.outputs, strict=True):
                    if b != st.bound:
                        problems.append(
                            f"node '{node.name}': output '{st.name}' bound {describe(b)} is "
                            f"not published (stream has {describe(st.bound)})"
                        )
        if running != self.running:
            problems.append(f"{self.running} calls counted running, {running} nodes RUNNING")
        for name, ex in self.executors.items():
            if ex.busy != busy[name]:
                problems.append(f"executor '{name}': busy {ex.busy}, {busy[name]} calls running")
            if self.limit_executors and ex.busy > ex.size:
                problems.append(f"executor '{name}': {ex.busy} calls above its size {ex.size}")
        if self.running == 0 and not self.stopping:
            unclosed = sum(1 for n in self.nodes if n.status is not CLOSED)
            if self.started and self.open_count and unclosed != self.open_count:
                problems.append(f"open_count {self.open_count}, {unclosed} nodes not closed")
        for name, st in self.streams.items():
            before = self._seen_bounds.get(name)
            if before is not None and st.bound < before:
                problems.append(
                    f"stream '{name}': bound went back from {describe(before)} to "
                    f"{describe(st.bound)}"
                )
            self._seen_bounds[name] = st.bound
        if self.done and (self.heap and not self.stopping):
            problems.append("the run is done but nodes are still READY")
        if problems:
            raise SchedulerStateError(
                f"graph '{self.spec.name}': scheduler state is inconsistent:\n"
                + "\n".join(f"  - {p}" for p in problems)
            )
