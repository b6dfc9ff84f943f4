"""Runtime state of nodes and streams, and the node lifecycle as an explicit state machine.

A node's :class:`NodeStatus` moves only along :data:`TRANSITIONS`::

    CREATED --open--> IDLE --ready--> READY --picked--> RUNNING --returned--> IDLE
                        |  <--stale--   |                  |
                        +------picked (a source)---------->+--close returned--> CLOSED
    IDLE / READY --run aborted--> CLOSED

``READY`` means "has one entry in the ready heap"; ``RUNNING`` means "a call is in
flight" (from being picked until its results are published and its observers ran).
A pending close request (a call returned STOP, or :meth:`stop_sources`) is the
separate ``stop`` flag: it can arrive while the node runs.

Everything here is plain data with ``__slots__``: it sits on the hot path.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..calculator import Calculator
from ..context import NodeContext, QueueView
from ..errors import FacegraphError
from ..packet import Packet
from ..spec import NodeSpec
from ..timestamp import PRE_STREAM, UNSTARTED, Timestamp

if TYPE_CHECKING:
    from .input_policies import InputPolicy

Observer = Callable[[Packet[Any]], None]


class NodeStatus(enum.Enum):
    """Where a node is in its lifecycle (see the module docstring for the picture)."""

    CREATED = "created"  # constructed; open() not called yet, or it failed
    IDLE = "idle"  # open and waiting: not ready, not running
    READY = "ready"  # one entry in the ready heap
    RUNNING = "running"  # a call (process or close) is in flight
    CLOSED = "closed"  # close() ran, or the run was aborted: final


CREATED, IDLE, READY, RUNNING, CLOSED = NodeStatus

#: The only legal moves; :class:`CheckedNodeState` enforces them.
TRANSITIONS: Mapping[NodeStatus, frozenset[NodeStatus]] = {
    CREATED: frozenset({IDLE}),
    IDLE: frozenset({READY, RUNNING, CLOSED}),  # RUNNING: a source is picked directly
    READY: frozenset({IDLE, RUNNING, CLOSED}),  # IDLE: no longer ready when popped
    RUNNING: frozenset({IDLE, CLOSED}),
    CLOSED: frozenset(),
}


class CallKind(enum.IntEnum):
    """What a node is ready for, and so which call it gets."""

    NONE = 0  # not ready
    PACKET = 1  # process() with the packets at one timestamp
    BOUND = 2  # process() with an empty input set (process_on_bounds)
    CLOSE = 3  # close()
    PROPAGATE = 4  # no call: only pass the settled input bound on to the outputs
    SOURCE = 5  # process() of a source node


NONE, PACKET, BOUND, CLOSE, PROPAGATE, SOURCE = CallKind
PHASE: Mapping[CallKind, str] = {
    PACKET: "process",
    BOUND: "process",
    CLOSE: "close",
    SOURCE: "process",
}


class SchedulerStateError(FacegraphError):
    """The scheduler's state broke an invariant (a scheduler bug; raised in checking mode)."""


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
        if n > self.max_depth:  # noqa: PLR1730 (not max(): runs per packet per queue)
            self.max_depth = n

    def drop_below(self, timestamp: Timestamp) -> None:
        """Discard the queued packets older than ``timestamp`` (counted as drops)."""
        packets = self.packets
        while packets and packets[0].timestamp < timestamp:
            packets.popleft()
            self.drops += 1


class Poller:
    """The buffer behind one :meth:`Graph.poll` iterator."""

    __slots__ = ("done", "items")

    def __init__(self) -> None:
        self.items: deque[Packet[Any]] = deque()
        self.done = False


class OnceRequest:
    """One :meth:`Graph.run_once` in flight: the outputs gathered at its timestamp."""

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
        self.pollers: list[Poller] = []
        self.watched = False  # observers, pollers or graph output: publish does extra work

    def update_watched(self) -> None:
        self.watched = bool(self.observers or self.pollers or self.graph_output)


class Executor:
    """A named executor's capacity (threads mode runs at most ``size`` calls at once)."""

    __slots__ = ("busy", "name", "size")

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self.busy = 0


class NodeState:
    """Runtime state of one node."""

    status: NodeStatus  # assigned through the slot in __init__ (see CheckedNodeState)

    __slots__ = (
        "calc",
        "call_kind",
        "call_started",
        "call_ts",
        "calls",
        "ctx",
        "downstream",
        "executor",
        "index",
        "is_source",
        "last_ts",
        "name",
        "offset_zero",
        "order",
        "outputs",
        "pob",
        "policy",
        "queues",
        "rank",
        "spec",
        "status",
        "stop",
    )

    def __init__(self, spec: NodeSpec, index: int) -> None:
        cls = spec.calculator
        self.spec = spec
        self.name = spec.name
        self.index = index
        self.calc: Calculator | None = None
        self.ctx: NodeContext = None  # type: ignore[assignment]  # set when opened
        self.queues: list[InputQueue] = []
        self.outputs: list[StreamState] = []
        self.downstream: list[NodeState] = []
        self.executor: Executor = None  # type: ignore[assignment]  # set by the wiring
        self.policy: InputPolicy = None  # type: ignore[assignment]  # set by the wiring
        self.rank = 0
        self.order = 0
        self.pob = bool(cls.process_on_bounds)
        self.offset_zero = cls.timestamp_offset == 0
        self.is_source = not spec.inputs
        _STATUS.__set__(self, CREATED)
        self.stop = False  # a close was requested (STOP returned, or stop_sources)
        self.last_ts: Timestamp = UNSTARTED  # timestamp of the last process call
        self.calls = 0
        # The call in progress (for reports about a node that does not return).
        self.call_kind = NONE
        self.call_ts: Timestamp = UNSTARTED
        self.call_started = 0.0


_STATUS: Any = NodeState.__dict__["status"]  # the slot, for the checked subclass


class CheckedNodeState(NodeState):
    """A :class:`NodeState` whose status changes are checked against :data:`TRANSITIONS`.

    Used in checking mode only, so production pays nothing for the check.
    """

    __slots__ = ()

    @property
    def status(self) -> NodeStatus:
        value: NodeStatus = _STATUS.__get__(self, NodeState)
        return value

    @status.setter
    def status(self, new: NodeStatus) -> None:
        old: NodeStatus = _STATUS.__get__(self, NodeState)
        if new not in TRANSITIONS[old]:
            raise SchedulerStateError(
                f"node '{self.name}': illegal status change {old.name} -> {new.name}"
            )
        _STATUS.__set__(self, new)
