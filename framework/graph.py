"""The runtime API: run a :class:`~facegraph.GraphSpec`.

::

    graph = Graph(spec)                       # threads; mode="deterministic" for tests
    graph.observe("landmarks", print)         # callbacks, before start
    with graph.start(side_packets={"num_faces": 1}):
        for i, frame in enumerate(frames):
            graph.add_packet("image", frame, timestamp=i * 33_333)
    # leaving the block closes every input and waits until the graph is done

    out = Graph(spec).start().run_once({"image": img})   # one item in, its outputs back

A ``Graph`` runs once: after it finishes, fails or is cancelled, build a new one
(cheap; the spec is immutable). Scheduling rules are documented in
:mod:`facegraph.scheduling.state_machine`.

Side packets: ``start(side_packets=...)`` supplies graph input side packets;
missing ones fall back to the spec's defaults, and a missing required one is an
error naming it before any node is opened. Side packets set by nodes in ``open``
feed the side inputs of other nodes (nodes are opened in dependency order) and
can be read with :meth:`Graph.side_packet`, also after the run.

``poll(stream)`` buffers the stream's packets from the moment it is called (call
it before ``start`` to miss nothing); the buffer is the caller's and is not
bounded by ``max_queue_size``. In deterministic mode iterating it drives the graph.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from .errors import FacegraphError, GraphConfigError, Problem, TimestampError
from .packet import Packet
from .profiler import GraphStats, TraceSink
from .scheduling import Scheduler
from .side_packets import check_side_packets
from .spec import GraphSpec
from .timestamp import Timestamp

Mode = Literal["threads", "deterministic"]


def _checked_timestamp(stream: str, timestamp: object) -> Timestamp:
    """``timestamp`` as an int, or a TimestampError naming the stream and the bad value.

    Integers of any kind (``numpy.int64`` too) are accepted; a float, even 7.0, is not:
    microseconds are counted, never rounded silently.
    """
    if isinstance(timestamp, bool) or not isinstance(timestamp, numbers.Integral):
        raise TimestampError(
            f"graph input stream '{stream}': timestamp {timestamp!r} "
            f"({type(timestamp).__name__}) is not an integer number of microseconds"
        )
    return int(timestamp)


class Graph:
    """One run of a graph: start it, feed it, observe it, wait for it."""

    def __init__(
        self,
        spec: GraphSpec,
        *,
        mode: Mode = "threads",
        profile: bool = False,
        trace: str | Path | TraceSink | None = None,
    ) -> None:
        if mode not in ("threads", "deterministic"):
            raise FacegraphError(f"mode must be 'threads' or 'deterministic', not {mode!r}")
        self.spec = spec
        self.mode: Mode = mode
        self._scheduler = Scheduler(
            spec,
            threads=mode == "threads",
            profile=profile,
            trace=trace if trace is None or callable(trace) else str(trace),
        )

    @classmethod
    def load(
        cls,
        source: str | Path,
        *,
        allow_imports: bool = False,
        mode: Mode = "threads",
        profile: bool = False,
        trace: str | Path | None = None,
    ) -> Graph:
        """A graph from a YAML file path or the name of a shipped graph (validated first)."""
        from .config import load_graph

        spec = load_graph(source, allow_imports=allow_imports)
        return cls(spec, mode=mode, profile=profile, trace=trace)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, side_packets: Mapping[str, Any] | None = None) -> Graph:
        """Resolve side packets, open every node and start running. Returns ``self``."""
        declared_rules = {n: sp.rule for n, sp in self.spec.side_inputs.items()}
        given = check_side_packets(side_packets or {}, declared_rules)
        values: dict[str, Any] = {}
        problems: list[Problem] = []
        declared = self.spec.side_inputs
        for name, sp in declared.items():
            if name in given:
                values[name] = given.pop(name)
            elif sp.required:
                doc = f" ({sp.doc})" if sp.doc else ""
                problems.append(
                    Problem(f"required input side packet '{name}'{doc} was not given to start()")
                )
            else:
                values[name] = sp.default
        produced = {sb.name for n in self.spec.nodes for sb in n.side_outputs}
        consumed = {sb.name for n in self.spec.nodes for sb in n.side_inputs}
        for name, value in given.items():
            if name in produced:
                problems.append(
                    Problem(f"side packet '{name}' is produced by a node; not settable")
                )
            elif name not in consumed:
                known = ", ".join(sorted(set(declared) | (consumed - produced))) or "none"
                problems.append(
                    Problem(f"unknown side packet '{name}' (this graph's side packets: {known})")
                )
            else:
                values[name] = value
        for n in self.spec.nodes:
            for sb in n.side_inputs:
                if sb.name not in values and sb.name not in produced and sb.name not in declared:
                    port = n.calculator.contract.side_inputs.get(sb.tag)
                    if port is None or not port.optional:
                        problems.append(
                            Problem(
                                f"side input {sb.tag} needs side packet '{sb.name}', which was "
                                "not given to start()",
                                file=n.file,
                                line=n.line,
                                node=n.name,
                            )
                        )
        if problems:
            raise GraphConfigError(problems)
        self._scheduler.start(values)
        return self

    def add_packet(self, stream: str, value: Any, timestamp: Timestamp) -> None:
        """Send ``value`` into graph input ``stream`` at ``timestamp`` (microseconds).

        Blocks (threads) or runs the graph (deterministic) while a consumer queue of
        the stream is full; raises GraphStalledError if room can never be made, and
        TimestampError for a timestamp that is not an integer (``'7'``, ``1.5``, ``True``).
        """
        self._scheduler.add_packet(stream, value, _checked_timestamp(stream, timestamp))

    def set_input_bound(self, stream: str, bound: Timestamp) -> None:
        """Promise that graph input ``stream`` carries no packet below ``bound``.

        Lets sync nodes that merge this input with others run without waiting for
        its next packet (a sparse input: "nothing here until ``bound``").
        """
        self._scheduler.advance_input(stream, bound)

    def close_input(self, stream: str) -> None:
        """Declare that ``stream`` will carry no more packets."""
        self._scheduler.close_input(stream)

    def close_all_inputs(self) -> None:
        self._scheduler.close_all_inputs()

    def stop_sources(self) -> None:
        """Ask every source node to finish as if it had returned STOP; the graph drains.

        A source in the middle of a call finishes that call first. Safe to call from an
        observer callback (e.g. "stop after N frames").
        """
        self._scheduler.stop_sources()

    def wait_until_idle(self, timeout: float | None = None) -> None:
        """Wait until no node is running or ready (the graph needs more input to go on)."""
        self._scheduler.wait_until_idle(timeout)

    def wait_until_done(self, timeout: float | None = None) -> None:
        """Wait until every node has closed; raise the run's first error, if any."""
        self._scheduler.wait_until_done(timeout)

    def cancel(self, timeout: float | None = None) -> None:
        """Stop scheduling, close every opened calculator, end the run (no error).

        Calls in progress finish first. With ``timeout`` (seconds), a call still running
        after it raises ``TimeoutError`` with a report naming the node, the timestamp and
        how long it has run; the run then ends when that call returns. From an observer
        callback it does not wait. Not from a signal handler (the handler may interrupt
        this thread inside the graph's lock): start a thread there instead, e.g.
        ``signal.signal(SIGTERM, lambda *_: threading.Thread(target=graph.cancel).start())``.
        """
        self._scheduler.cancel(timeout)

    def __enter__(self) -> Graph:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.cancel()
            return
        if not self._scheduler.started:
            return
        self.close_all_inputs()
        self.wait_until_done()

    # -- outputs ------------------------------------------------------------------------------

    def observe(self, stream: str, callback: Callable[[Packet[Any]], None]) -> None:
        """Call ``callback(packet)`` for each packet of ``stream``, in timestamp order.

        Register before :meth:`start`. Callbacks run on scheduler threads (the caller's
        thread in deterministic mode); an exception in one fails the run.
        """
        self._scheduler.observe(stream, callback)

    def poll(self, stream: str) -> Iterator[Packet[Any]]:
        """Iterate ``stream``'s packets until the stream is done."""
        return self._scheduler.poll(stream)

    def run_once(
        self, inputs: Mapping[str, Any], timestamp: Timestamp | None = None
    ) -> dict[str, Any]:
        """Add one packet per given input at one timestamp; return the outputs at it.

        ``timestamp`` defaults to the next free one. Inputs not given advance past it
        ("no packet"). Waits only until every graph output's bound passes the
        timestamp (not until the whole graph is idle), so other threads may keep
        streaming; an output without a packet at that timestamp is absent from the
        result.
        """
        if timestamp is not None:
            timestamp = _checked_timestamp(", ".join(inputs) or "(none)", timestamp)
        return self._scheduler.run_once(inputs, timestamp)

    def side_packet(self, name: str) -> Any:
        """A graph input side packet or one set by a node (readable after the run too)."""
        return self._scheduler.side_packet(name)

    def stats(self) -> GraphStats:
        """Per-node call counts and timings (with ``profile=True``), queue depths and drops."""
        return self._scheduler.stats()

    @property
    def done(self) -> bool:
        return self._scheduler.done

    @property
    def close_errors(self) -> list[Any]:
        """Errors raised by ``close`` while shutting down after a failure."""
        return list(self._scheduler.close_errors)

    @property
    def trace_error(self) -> OSError | None:
        """Why the ``trace`` file could not be written when the run ended (its
        ``filename`` names it; an earlier file there is left as it was), else None."""
        return self._scheduler.trace_error
