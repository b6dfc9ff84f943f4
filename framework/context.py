"""The runtime's :class:`~facegraph.CalculatorContext`: what a node sees while it runs.

One :class:`NodeContext` exists per node and is reused for every call of that
node (a node never runs two calls at once), so the hot path allocates nothing
but the emitted packets. Ports are resolved to slot indices once, when the
graph is built:

- ``inputs[slot]`` is the input set of the current call (a packet or None);
- ``out_bounds[i]`` is the node's own view of output ``i``'s timestamp bound
  (the lowest timestamp it may still emit); the scheduler publishes it to the
  consumers when the call returns;
- ``pending`` collects ``(output index, packet)`` pairs emitted during the call.

Timestamp rules enforced here (errors name node, stream, bound and timestamp):

- a packet below its output's bound is a :class:`~facegraph.TimestampError`
  (streams carry strictly increasing timestamps);
- a calculator with ``timestamp_offset == 0`` may only emit at the input
  timestamp; changing timestamps needs ``timestamp_offset = None``;
- source nodes (no inputs) have no input timestamp, so they must pass
  ``timestamp=`` explicitly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar, overload

from .calculator import CalculatorContext
from .errors import FacegraphError, TimestampError
from .packet import Packet
from .ports import Input, Output, Port, SideInput, SideOutput
from .timestamp import (
    DONE,
    MAX,
    MIN,
    PRE_STREAM,
    Timestamp,
    describe,
    is_allowed_in_stream,
    next_allowed,
)

T = TypeVar("T")
D = TypeVar("D")


class QueueView:
    """The part of an input queue the context reads (implemented by the scheduler's queue)."""

    __slots__ = ("bound", "packets")

    def __init__(self) -> None:
        self.packets: deque[Packet[Any]] = deque()
        self.bound: Timestamp = DONE


class NodeContext(CalculatorContext):
    """Per-node context; the scheduler fills ``ts`` and ``inputs`` before each call."""

    def __init__(
        self,
        *,
        node_name: str,
        in_slots: dict[Port[Any], list[int]],
        queues: list[QueueView],
        out_slots: dict[Port[Any], list[int]],
        out_names: list[str],
        offset_zero: bool,
        is_source: bool,
        side_in: dict[Port[Any], list[Any]],
        side_out: dict[Port[Any], list[str]],
        set_side_packet: Callable[[str, Any, str], None],
    ) -> None:
        self.node_name = node_name
        self.ts: Timestamp = 0
        self.inputs: list[Packet[Any] | None] = [None] * len(queues)
        #: Per input: lowest timestamp not yet delivered, as of when the input set was taken.
        self.in_bounds: list[Timestamp] = [PRE_STREAM] * len(queues)
        self.out_bounds: list[Timestamp] = [0] * len(out_names)
        self.pending: list[tuple[int, Packet[Any]]] = []
        self._in_slots = in_slots
        self._queues = queues
        self._out_slots = out_slots
        self._out_names = out_names
        self._offset_zero = offset_zero
        self._is_source = is_source
        self._side_in = side_in
        self._side_out = side_out
        self._set_side_packet = set_side_packet

    # -- inputs -------------------------------------------------------------------------------

    @property
    def timestamp(self) -> Timestamp:
        return self.ts

    def packet(self, port: Input[T], index: int = 0) -> Packet[T] | None:
        slots = self._in_slots.get(port)
        if slots is None:
            raise self._unknown_port(port, "input")
        if index >= len(slots):
            return None  # an unconnected optional port carries nothing
        return self.inputs[slots[index]]

    def get(self, port: Input[T], index: int = 0) -> T | None:
        # Inlined rather than calling packet(): this is the most frequent call of all.
        slots = self._in_slots.get(port)
        if slots is None:
            raise self._unknown_port(port, "input")
        if index >= len(slots):
            return None
        p = self.inputs[slots[index]]
        return None if p is None else p.value

    def count(self, port: Port[Any]) -> int:
        for table in (self._in_slots, self._out_slots, self._side_in, self._side_out):
            entry = table.get(port)
            if entry is not None:
                return len(entry)
        raise self._unknown_port(port, port.kind)

    def input_bound(self, port: Input[Any], index: int = 0) -> Timestamp:
        """Lowest timestamp of a packet this node has not yet received on that input.

        Everything below it has been delivered (or will never come); ``DONE`` once
        the stream is finished. The value is a snapshot taken with the call's input
        set, so it is consistent with the packets this call sees, in every mode.
        """
        slots = self._in_slots.get(port)
        if slots is None:
            raise self._unknown_port(port, "input")
        if index >= len(slots):
            return DONE
        return self.in_bounds[slots[index]]

    # -- outputs ------------------------------------------------------------------------------

    def emit(
        self, port: Output[T], value: T, index: int = 0, timestamp: Timestamp | None = None
    ) -> None:
        slots = self._out_slots.get(port)
        if slots is None:
            raise self._unknown_port(port, "output")
        if index >= len(slots):
            return  # unconnected optional output: nobody listens
        i = slots[index]
        if timestamp is None:
            if self._is_source:
                raise TimestampError(
                    f"node '{self.node_name}' is a source (no input streams): pass "
                    f"timestamp= when emitting on stream '{self._out_names[i]}'"
                )
            ts = self.ts
        else:
            ts = timestamp
            if self._offset_zero and ts != self.ts and not self._is_source:
                raise TimestampError(
                    f"node '{self.node_name}' emitted on stream '{self._out_names[i]}' at "
                    f"timestamp {describe(ts)} while processing {describe(self.ts)}; a "
                    "calculator that changes timestamps must declare timestamp_offset = None"
                )
        bound = self.out_bounds[i]
        if ts < bound:
            raise TimestampError(
                f"node '{self.node_name}' emitted on stream '{self._out_names[i]}' at timestamp "
                f"{describe(ts)}, below the stream's bound {describe(bound)} "
                "(timestamps on a stream must strictly increase)"
            )
        if MIN <= ts < MAX:
            # next_allowed(ts) for the usual timestamp, inlined: this runs for every packet.
            self.out_bounds[i] = ts + 1
        elif is_allowed_in_stream(ts):
            self.out_bounds[i] = next_allowed(ts)
        else:
            raise TimestampError(
                f"node '{self.node_name}' emitted on stream '{self._out_names[i]}' at "
                f"{describe(ts)}, which no packet may carry"
            )
        self.pending.append((i, Packet(value, ts)))

    def set_bound(self, port: Output[Any], bound: Timestamp, index: int = 0) -> None:
        slots = self._out_slots.get(port)
        if slots is None:
            raise self._unknown_port(port, "output")
        if index >= len(slots):
            return
        i = slots[index]
        # Bounds only move forward; a lower value is a no-op, as in MediaPipe.
        self.out_bounds[i] = max(self.out_bounds[i], bound)

    def close_output(self, port: Output[Any], index: int = 0) -> None:
        self.set_bound(port, DONE, index)

    # -- side packets -------------------------------------------------------------------------

    @overload
    def side(self, port: SideInput[T], index: int = 0) -> T | None: ...

    @overload
    def side(self, port: SideInput[T], index: int = 0, *, default: D) -> T | D: ...

    def side(self, port: SideInput[T], index: int = 0, *, default: Any = None) -> Any:
        values = self._side_in.get(port)
        if values is None:
            raise self._unknown_port(port, "side input")
        if index >= len(values):
            return default
        value = values[index]
        return default if value is None else value

    def set_side(self, port: SideOutput[T], value: T, index: int = 0) -> None:
        names = self._side_out.get(port)
        if names is None:
            raise self._unknown_port(port, "side output")
        if index >= len(names):
            return
        self._set_side_packet(names[index], value, self.node_name)

    # -- helpers ------------------------------------------------------------------------------

    def _unknown_port(self, port: Port[Any], kind: str) -> FacegraphError:
        return FacegraphError(
            f"node '{self.node_name}': {port!r} is not a {kind} port of this node's calculator "
            "(pass the calculator's own port attribute, e.g. self.IMAGE)"
        )
