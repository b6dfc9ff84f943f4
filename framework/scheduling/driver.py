"""The thin driver: runs the state core's actions on worker threads or on the caller's.

:class:`Scheduler` is the engine behind :class:`facegraph.Graph`. It owns the one lock
that guards :class:`~facegraph.scheduling.state_machine.SchedulerState`, the worker
pools (threads mode), the calculator calls and observer callbacks (always outside
the lock), timing, and every way a caller waits. In deterministic mode a waiting
caller runs the graph itself with :meth:`Scheduler.step`.

Two helpers hold what every waiting path shares: :meth:`Scheduler._wait_locked`
(block on the condition, counted so that notifications are only sent when someone
waits) and :meth:`Scheduler._stall_locked` (fail the run with a report of what each
node waits for).

Set ``FACEGRAPH_CHECK_SCHEDULER=1`` (the test suite does) to check the node status
transitions on every change and :meth:`SchedulerState.validate_state` after every
call and every input event.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..condition_wait import wait_holding_lock
from ..env_flags import env_flag
from ..errors import CalculatorError, FacegraphError, GraphClosedError, GraphStalledError
from ..packet import Packet
from ..profiler import GraphStats, QueueStats, Recorder, TraceSink, summarize
from ..spec import GraphSpec
from ..timestamp import DONE, POST_STREAM, PRE_STREAM, Timestamp, describe, next_allowed
from ..workers import WorkerPool
from .nodes import (
    CLOSE,
    IDLE,
    PHASE,
    READY,
    CallKind,
    NodeState,
    Observer,
    OnceRequest,
    Poller,
    StreamState,
)
from .report import waits_report
from .state_machine import ObserverCalls, SchedulerState
from .wiring import make_context

#: Environment variable that turns on the state checks (see the module docstring).
CHECK_ENV = "FACEGRAPH_CHECK_SCHEDULER"


def checking_enabled() -> bool:
    return env_flag(CHECK_ENV, default=False)


def _name(what: str | Callable[[], str]) -> str:
    return what if isinstance(what, str) else what()


class Scheduler:
    """Runs one :class:`GraphSpec` once. :class:`facegraph.Graph` is its public face."""

    def __init__(
        self,
        spec: GraphSpec,
        *,
        threads: bool,
        profile: bool = False,
        trace: str | TraceSink | None = None,
        check: bool | None = None,
    ) -> None:
        self.spec = spec
        self.threads = threads
        self._check = checking_enabled() if check is None else check
        self.core = SchedulerState(spec, limit_executors=threads, checked=self._check)
        # An RLock, not a Lock: it knows its owner, which _wait_locked needs.
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._feed_lock = threading.Lock()  # serializes run_once's feeding (not its waiting)
        self._waiters = 0
        self._pools: dict[str, WorkerPool] = {}
        self._finalizing = False  # the calculators must be closed (outside the lock)
        self._abort_claimed = False  # one thread closes them
        self.close_errors: list[CalculatorError] = []
        #: Why the trace file could not be written (None when it was, or not asked for).
        self.trace_error: OSError | None = None
        # A path: this graph writes the trace file; a sink: an outer graph's trace.
        self._trace_path = trace if isinstance(trace, str) else None
        self._timing = profile or trace is not None
        self._recorder: Recorder | None = None
        if self._timing:
            self._recorder = Recorder(
                len(spec.nodes),
                trace=trace is not None,
                sink=None if trace is None or isinstance(trace, str) else trace,
            )

    # ------------------------------------------------------------------ helpers

    def _wait_locked(self, timeout: float | None = None) -> None:
        """Block until notified (or timeout); the lock is held before and after, also
        when the wait raises."""
        self._waiters += 1
        try:
            # Ctrl-C can stop the wait without the lock (condition_wait's docstring): the
            # caller's ``with`` would then release it from under a worker holding it.
            wait_holding_lock(self._cond, timeout)
        finally:
            self._waiters -= 1

    def _stall_locked(self, headline: str) -> GraphStalledError:
        """Fail the run: no node can run. The error carries what each node waits for."""
        stall = GraphStalledError(self._report_locked(headline))
        self._fail_locked(stall)
        return stall

    def _stalled(self, headline: str, unless: Callable[[], bool]) -> None:
        """Deterministic mode found no call to run: raise the stall, unless ``unless()``."""
        with self._lock:
            if unless():
                return
            stall = self._stall_locked(headline)
        self._after_unlock()  # close the calculators before reporting
        raise stall

    def _after_event_locked(self) -> None:
        """Wake the waiters if the state says so; let the pools go once the run is over."""
        core = self.core
        if core.wake:
            core.wake = False
            if self._waiters:
                self._cond.notify_all()
        if core.done and self._pools:
            for pool in self._pools.values():
                # Never wait here: this may run on one of the pool's own threads.
                pool.shutdown(wait=False)

    def _validate_locked(self) -> None:
        if self._check:
            self.core.validate_state()

    def _on_own_worker(self) -> bool:
        return any(pool.owns_current_thread() for pool in self._pools.values())

    # ------------------------------------------------------------------ side packets

    def _set_side_packet(self, name: str, value: Any, node: str) -> None:
        with self._lock:
            self.core.set_side_packet(name, value, node)

    def side_packet(self, name: str) -> Any:
        with self._lock:
            return self.core.side_packet(name)

    # ------------------------------------------------------------------ start

    @property
    def started(self) -> bool:
        return self.core.started

    def start(self, side_packets: Mapping[str, Any]) -> None:
        """Open every node (caller's thread) and let the graph run."""
        core = self.core
        if core.started:
            raise FacegraphError(f"graph '{self.spec.name}' was already started")
        core.started = True
        core.side.update(side_packets)
        if self._recorder is not None:
            self._recorder.origin_ns = time.perf_counter_ns()
        for node in core.wiring.open_order():
            self._open_node(node)
            if core.error is not None:
                self._finalize_abort()
                raise core.error
        with self._lock:
            core.all_opened()
            if self.threads:
                self._pools = {
                    name: WorkerPool(ex.size, f"facegraph-{name}")
                    for name, ex in core.executors.items()
                }
            self._kick_locked()
            self._after_event_locked()
            self._validate_locked()
        self._after_unlock()

    def _open_node(self, node: NodeState) -> None:
        spec = node.spec
        core = self.core
        phase = "init"
        try:
            node.calc = spec.calculator(spec.options)
            phase = "side packets"
            side_values: dict[str, Any] = {}
            for sb in spec.side_inputs:
                if sb.name not in core.side:
                    raise FacegraphError(
                        f"side input {sb.tag}:{sb.index} needs side packet '{sb.name}', "
                        f"which {core.missing_side_packet(sb.name)}"
                    )
                side_values[sb.name] = core.side[sb.name]
            node.ctx = make_context(node, side_values, self._set_side_packet)
            node.ctx.profiling = self._timing
            if self._recorder is not None and self._recorder.trace:
                node.ctx.trace_sink = self._recorder.sink_for(node.name)
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
        with self._lock:
            calls = core.opened(node)
        self._call_observers(calls)

    # ------------------------------------------------------------------ running calls

    def _kick_locked(self) -> None:
        """Threads mode: start every call that can start now; detect a stall."""
        if not self.threads:
            return
        core = self.core
        while True:
            picked = core.pick()
            if picked is None:
                break
            self._pools[picked[0].executor.name].submit(self._run_call, *picked)
        if core.stalled():
            self._stall_locked("graph is stalled")

    def step(self) -> bool:
        """Deterministic mode: run the next call on this thread; False when nothing can run."""
        with self._lock:
            picked = self.core.pick()
        if picked is None:
            self._after_unlock()
            if self.core.error is not None:
                raise self.core.error
            return False
        self._run_call(*picked)
        if self.core.error is not None:
            raise self.core.error
        return True

    def _run_call(self, node: NodeState, kind: CallKind, ts: Timestamp) -> None:
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
            if kind is CLOSE:
                calc.close(ctx)
            else:
                result = calc.process(ctx)
        except Exception as exc:
            error = self._wrap(node, PHASE[kind], ts, exc)
        if self._recorder is not None:
            self._recorder.record(
                node.index, node.name, PHASE[kind], t0, time.perf_counter_ns(), ts
            )
        core = self.core
        with self._lock:
            calls = core.complete(node, kind, ts, result, error)
            if self.threads:
                self._kick_locked()
            if calls is None:
                self._finish_locked(node, kind)
        if calls is not None:
            self._call_observers(calls)
            with self._lock:
                self._finish_locked(node, kind)
        if self._finalizing or core.done:  # the only cases _after_unlock acts on
            self._after_unlock()

    def _finish_locked(self, node: NodeState, kind: CallKind) -> None:
        core = self.core
        ended = core.finish(node, kind)
        if core.stopping:
            if core.running == 0 and not self._finalizing:
                self._finalizing = True
        elif not ended and self.threads:
            self._kick_locked()
        self._after_event_locked()
        if self._check:
            core.validate_state()

    def _call_observers(self, calls: ObserverCalls | None) -> None:
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

    # ------------------------------------------------------------------ failure and the end

    def _wrap(
        self, node: NodeState, phase: str, ts: Timestamp, exc: BaseException
    ) -> CalculatorError:
        if isinstance(exc, CalculatorError) and exc.node.startswith(f"{node.name}/"):
            # A node running a graph of its own (ParallelMap) reports its inner node's
            # failure already named ``node/inner`` at this node's timestamp: keep it.
            return exc
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return CalculatorError(
            node.name, node.spec.calculator_name, phase, describe(ts), exc, tb.rstrip()
        )

    def _fail_locked(self, error: BaseException) -> None:
        core = self.core
        core.fail(error)
        if core.running == 0 and not self._finalizing and not core.done:
            self._finalizing = True
        self._after_event_locked()

    def _after_unlock(self) -> None:
        """Work that must happen outside the lock: closing calculators, writing the trace."""
        if self._finalizing and not self.core.done:
            self._finalize_abort()
        elif self.core.done and self._recorder is not None and self._trace_path is not None:
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

    def _finalize_abort(self) -> None:
        """Close every opened, unclosed calculator; then end the run. Outside the lock."""
        core = self.core
        with self._lock:
            # Exactly one thread closes the calculators (a worker, the canceller or a waiter).
            if core.done or self._abort_claimed:
                return
            self._abort_claimed = True
            self._finalizing = True
        for node in core.wiring.open_order():
            if node.calc is None or not (node.status is IDLE or node.status is READY):
                continue  # never opened, or closed already (nothing runs now)
            with self._lock:
                core.abort_close(node)
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
            core.finish_run()
            self._after_event_locked()
        self._after_unlock()

    def _join_pools(self) -> None:
        if self._on_own_worker():
            return  # a callback waiting for its own run: the pool ends when it returns
        for pool in self._pools.values():
            pool.shutdown(wait=True)

    def _report_locked(self, headline: str) -> str:
        return waits_report(self.core, headline, time.monotonic())

    def report(self, headline: str) -> str:
        """What every unfinished node waits for (queued heads, bounds it waits on)."""
        with self._lock:
            return self._report_locked(headline)

    # ------------------------------------------------------------------ graph inputs

    def _check_running_locked(self) -> None:
        core = self.core
        if core.error is not None:
            raise core.error
        if not core.started:
            raise GraphClosedError(f"graph '{self.spec.name}' is not started; call start() first")
        if core.done or core.stopping:
            raise GraphClosedError(f"graph '{self.spec.name}' has finished or was cancelled")

    def _input_stream(self, name: str) -> StreamState:
        st = self.core.streams.get(name)
        if st is None or not st.graph_input:
            known = ", ".join(f"'{s}'" for s in self.spec.input_streams) or "none"
            raise FacegraphError(
                f"'{name}' is not an input stream of graph '{self.spec.name}' (inputs: {known})"
            )
        return st

    def add_packet(self, name: str, value: Any, timestamp: Timestamp) -> None:
        st = self._input_stream(name)
        core = self.core
        packet = Packet(value, timestamp)
        stall: GraphStalledError | None = None
        calls: ObserverCalls | None = None
        while True:
            with self._lock:
                self._check_running_locked()
                core.check_input_packet(st, timestamp)
                if not core.input_full(st):
                    calls = core.input_packet(st, packet)
                    self._kick_locked()
                    self._after_event_locked()
                    self._validate_locked()
                    break
                if self.threads:
                    if core.idle():
                        stall = self._stall_locked(
                            f"add_packet('{name}') would block forever: a queue it feeds is "
                            f"full ({core.max_queue} packets) and no node can run"
                        )
                        break
                    self._wait_locked()
                    continue
            # Deterministic: make room by running the graph on this thread (no other
            # thread touches the queues in this mode, so input_full() needs no lock here).
            progressed = self.step()
            while progressed and core.input_full(st):
                progressed = self.step()
            if not progressed:
                self._stalled(
                    f"add_packet('{name}') cannot make room: a queue it feeds is full "
                    f"({core.max_queue} packets) and no node can run",
                    unless=lambda: False,
                )
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
            if self.core.input_bound(st, bound):
                self._kick_locked()
                self._after_event_locked()
                self._validate_locked()
        self._after_unlock()

    def close_input(self, name: str) -> None:
        st = self._input_stream(name)
        core = self.core
        with self._lock:
            if st.bound >= DONE or core.done or core.stopping:
                return
            core.input_bound(st, DONE)
            if not core.maybe_done():
                self._kick_locked()
            self._after_event_locked()
            self._validate_locked()
        self._after_unlock()

    def close_all_inputs(self) -> None:
        for name in self.spec.input_streams:
            self.close_input(name)

    def stop_sources(self) -> None:
        """Treat every source as if its last call returned STOP (it is closed next)."""
        core = self.core
        with self._lock:
            if core.done or core.stopping:
                return
            core.stop_sources()
            self._kick_locked()
            self._after_event_locked()
            self._validate_locked()
        self._after_unlock()

    def input_bound(self, name: str) -> Timestamp:
        return self._input_stream(name).bound

    # ------------------------------------------------------------------ observing

    def observe(self, name: str, callback: Observer) -> None:
        st = self.core.streams.get(name)
        if st is None:
            raise FacegraphError(f"graph '{self.spec.name}' has no stream '{name}'")
        if self.core.started:
            raise FacegraphError("observe() must be called before start()")
        st.observers.append(callback)
        st.update_watched()

    def poll(self, name: str) -> Iterator[Packet[Any]]:
        st = self.core.streams.get(name)
        if st is None:
            raise FacegraphError(f"graph '{self.spec.name}' has no stream '{name}'")
        poller = Poller()
        with self._lock:
            st.pollers.append(poller)
            st.update_watched()
            if st.bound >= DONE or self.core.done:
                poller.done = True
        return self._poll_iter(st, poller)

    def _poll_iter(self, st: StreamState, poller: Poller) -> Iterator[Packet[Any]]:
        core = self.core
        try:
            while True:
                with self._lock:
                    while not poller.items and not poller.done and self.threads:
                        if core.error is not None:
                            break
                        self._wait_locked()
                    if poller.items:
                        item = poller.items.popleft()
                    elif poller.done or core.error is not None:
                        if core.error is not None:
                            raise core.error
                        return
                    else:
                        item = None
                if item is not None:
                    yield item
                    continue
                if not self.step():  # deterministic: drive the graph
                    self._stalled(
                        f"poll('{st.name}') would block forever: no node can run",
                        unless=lambda: bool(poller.items or poller.done),
                    )
        finally:
            with self._lock:
                if poller in st.pollers:
                    st.pollers.remove(poller)
                    st.update_watched()

    def run_once(self, inputs: Mapping[str, Any], timestamp: Timestamp | None) -> dict[str, Any]:
        core = self.core
        for name in inputs:
            self._input_stream(name)
        # Choosing the timestamp and feeding it happen under one lock, so concurrent
        # callers get consecutive timestamps and feed them in order; waiting for the
        # outputs happens outside it, so their items pipeline through the graph.
        with self._feed_lock:
            with self._lock:
                self._check_running_locked()
                if timestamp is None:
                    timestamp = max([0, *(core.streams[n].bound for n in self.spec.input_streams)])
                if timestamp in core.once:
                    raise FacegraphError(f"run_once at {describe(timestamp)} is already in flight")
                req = OnceRequest(timestamp)
                core.once[timestamp] = req
            try:
                for name, value in inputs.items():
                    self.add_packet(name, value, timestamp)
                for name in self.spec.input_streams:
                    if name not in inputs:
                        self.advance_input(name, next_allowed(timestamp))
            except BaseException:
                with self._lock:
                    core.once.pop(timestamp, None)
                raise
        with self._lock:
            core.check_once()
            self._after_event_locked()
        self._wait_for(lambda: req.done, None, lambda: f"run_once at {describe(timestamp)}")
        return req.values

    # ------------------------------------------------------------------ waiting

    def _wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float | None,
        what: str | Callable[[], str],
    ) -> None:
        """Block until ``predicate()`` (checked under the lock) holds, the run fails, or timeout.

        ``what`` names the wait in errors; a callable is only called for one (run_once
        would otherwise format its timestamp on every frame).
        """
        core = self.core
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                failed = core.error is not None
                if failed and (core.done or not self.threads):
                    raise core.error  # type: ignore[misc]
                # After a failure, wait for the calculators to be closed before raising.
                if not failed and predicate():
                    return
                if core.done:
                    return
                if self.threads:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        headline = f"timed out waiting for {_name(what)}"
                        raise TimeoutError(self._report_locked(headline))
                    self._wait_locked(remaining)
                    continue
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(self.report(f"timed out waiting for {_name(what)}"))
            if not self.step():
                self._stalled(
                    f"{_name(what)} can never happen: no node can run",
                    unless=lambda: predicate() or core.done,
                )

    def wait_until_done(self, timeout: float | None) -> None:
        core = self.core
        if not core.started:
            raise GraphClosedError(f"graph '{self.spec.name}' was never started")
        try:
            self._wait_for(lambda: core.done, timeout, "the graph to finish")
            self._after_unlock()
        finally:
            if core.done:
                self._join_pools()  # no thread outlives a finished run
        if core.error is not None:
            raise core.error

    def wait_until_idle(self, timeout: float | None) -> None:
        core = self.core
        if not core.started:
            raise GraphClosedError(f"graph '{self.spec.name}' was never started")

        def idle() -> bool:
            # Inputs closed but not done: only finishing (or a stall) counts as idle then.
            return core.idle() and not (
                core.open_count > 0 and not core.stopping and core.inputs_closed()
            )

        self._wait_for(idle, timeout, "the graph to become idle")
        if core.error is not None:
            raise core.error

    def cancel(self, timeout: float | None = None) -> None:
        core = self.core
        in_worker = self._on_own_worker()
        with self._lock:
            if core.done:
                return
            core.cancel()
            if not core.started:
                core.finish_run()
                self._after_event_locked()
                return
            if core.running == 0:
                self._finalizing = True
        self._after_unlock()
        if in_worker:
            return  # called from a callback: the run ends when the current call returns
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not core.done:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    # A call that never returns cannot be interrupted in Python: say which
                    # one; the run ends (closing every calculator) if it ever returns.
                    raise TimeoutError(
                        self._report_locked(
                            f"cancelled, but a call did not return within {timeout} s; the "
                            "run ends when it returns"
                        )
                    )
                self._wait_locked(remaining)
        self._join_pools()

    @property
    def done(self) -> bool:
        return self.core.done

    @property
    def error(self) -> BaseException | None:
        return self.core.error

    # ------------------------------------------------------------------ stats

    def stats(self) -> GraphStats:
        nodes = []
        for node in self.core.nodes:
            durations = self._recorder.durations[node.index] if self._recorder else []
            nodes.append(summarize(node.name, node.spec.calculator_name, node.calls, durations))
            if node.calc is not None:
                nodes.extend(node.calc.inner_stats())
        queues = [
            QueueStats(n.name, q.port, q.stream, q.max_depth, q.drops, len(q.packets))
            for n in self.core.nodes
            for q in n.queues
        ]
        return GraphStats(self.spec.name, tuple(nodes), tuple(queues))
