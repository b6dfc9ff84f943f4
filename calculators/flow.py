"""Flow nodes that work across timestamps: PreviousLoopback and FlowLimiter.

Both use the ``immediate`` policy and ``process_on_bounds``: they must react to
a packet on one input while the other has nothing yet, and to an input's
timestamp bound moving on without a packet (the way a graph says "nothing at t").
Both set their output bounds themselves (``timestamp_offset = None``).

They rely on one runtime guarantee: ``ctx.input_bound(port)`` is the lowest
timestamp the calculator may still *receive* on that port, so a packet that is
queued but not yet delivered keeps the bound at or below its timestamp.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, ClassVar

from facegraph import (
    Calculator,
    CalculatorContext,
    Input,
    NoOptions,
    Output,
    Packet,
    SideInput,
    StrictOptions,
    register,
)
from facegraph.timestamp import DONE, UNSTARTED, Timestamp
from pydantic import Field

logger = logging.getLogger(__name__)


@register("PreviousLoopback")
class PreviousLoopback(Calculator[NoOptions]):
    """Emits, at each MAIN timestamp, the LOOP value of the previous MAIN timestamp.

    The tracking idiom: ``LOOP`` is a back edge carrying a value computed from
    frame t-1 (say the tracked face rectangles); ``PREV_LOOP`` delivers it again
    at frame t, re-stamped to t, so a node at t can use it. On the first MAIN
    packet, or when the previous MAIN timestamp produced no LOOP packet (the
    LOOP bound moved past it), PREV_LOOP gets no packet at t, only its bound
    advances past t, so downstream sync nodes do not wait. MAIN timestamps that
    settle without a packet advance PREV_LOOP's bound the same way.
    ``PREV_LOOP`` closes once MAIN is done and every MAIN packet is answered.
    """

    MAIN: Input[Any] = Input("MAIN", doc="the clock: one answer on PREV_LOOP per MAIN packet")
    LOOP: Input[Any] = Input("LOOP", doc="values to replay one MAIN step later (a back edge)")
    PREV_LOOP: Output[Any] = Output("PREV_LOOP", doc="LOOP value of the previous MAIN timestamp")

    timestamp_offset: ClassVar[int | None] = None
    input_policy = "immediate"
    process_on_bounds: ClassVar[bool] = True

    def open(self, ctx: CalculatorContext) -> None:
        # MAIN timestamps still to answer, each with the LOOP timestamp whose value it
        # replays (None: answer with a bound only).
        self._pending: deque[tuple[Timestamp, Timestamp | None]] = deque()
        self._last_main: Timestamp = UNSTARTED  # highest MAIN timestamp seen (packet or bound)
        self._prev_main_packet: Timestamp | None = None  # timestamp of the last MAIN packet
        self._loops: deque[Packet[Any]] = deque()
        self._last_loop: Timestamp = UNSTARTED
        self._out_bound: Timestamp = UNSTARTED
        self._closed = False

    def _advance(self, ctx: CalculatorContext, bound: Timestamp) -> None:
        if bound > self._out_bound:
            ctx.set_bound(self.PREV_LOOP, bound)
            self._out_bound = bound

    def process(self, ctx: CalculatorContext) -> None:
        if self._closed:
            return
        main = ctx.packet(self.MAIN)
        if main is not None:
            if main.timestamp <= self._last_main:
                raise RuntimeError(
                    f"MAIN packet at {main.timestamp} arrived after the MAIN bound had "
                    f"already passed {self._last_main}"
                )
            self._pending.append((main.timestamp, self._prev_main_packet))
            self._prev_main_packet = main.timestamp
            self._last_main = main.timestamp
        else:
            main_bound = ctx.input_bound(self.MAIN)
            if main_bound < DONE and main_bound - 1 > self._last_main:
                # Timestamps up to main_bound - 1 settled without a MAIN packet.
                self._pending.append((main_bound - 1, None))
                self._last_main = main_bound - 1

        loop = ctx.packet(self.LOOP)
        if loop is not None and loop.timestamp > self._last_loop:
            self._loops.append(loop)
            self._last_loop = loop.timestamp
        loop_bound = ctx.input_bound(self.LOOP)

        while self._pending:
            main_ts, wanted = self._pending[0]
            if wanted is not None:
                while self._loops and self._loops[0].timestamp < wanted:
                    self._loops.popleft()  # LOOP values no MAIN packet will ask for
                if self._loops and self._loops[0].timestamp == wanted:
                    ctx.emit(self.PREV_LOOP, self._loops.popleft().value, timestamp=main_ts)
                    self._out_bound = main_ts + 1
                    self._pending.popleft()
                    continue
                settled = loop_bound > wanted or (
                    bool(self._loops) and self._loops[0].timestamp > wanted
                )
                if not settled:
                    break  # the previous frame is still being computed
            # First frame, a MAIN timestamp without a packet, or no LOOP value at `wanted`.
            self._advance(ctx, main_ts + 1)
            self._pending.popleft()

        if not self._pending and ctx.input_bound(self.MAIN) >= DONE:
            ctx.close_output(self.PREV_LOOP)
            self._closed = True


@register("FlowLimiter")
class FlowLimiter(Calculator["FlowLimiter.Options"]):
    """Admits frames only while fewer than max_in_flight are being processed downstream.

    Put it in front of a slow section and feed that section's output back to
    ``FINISHED`` (a back edge). A frame at t is finished when a FINISHED packet
    at ≥ t arrives, or when FINISHED's bound moves past t (the section produced
    nothing for it). While the limit is reached, new IN:0 frames wait in a
    queue of at most ``max_in_queue``; a newer frame pushes out the oldest
    (a drop). So a live camera always processes its newest frame.

    ``IN:1..n`` are auxiliary streams that pass for admitted timestamps only.
    ``ALLOW`` (optional) tells, per IN:0 timestamp, whether the frame was
    admitted (True) or dropped (False). With ``in_flight_timeout_us`` > 0, a
    frame counts as finished once the newest IN:0 timestamp is that far ahead
    of it (protects against a section that silently loses frames).
    """

    class Options(StrictOptions):
        max_in_flight: int = Field(1, ge=1)
        """Frames allowed between this node and FINISHED at once."""
        max_in_queue: int = Field(0, ge=0)
        """Frames kept waiting while the limit is reached (newest kept)."""
        in_flight_timeout_us: int = Field(0, ge=0)
        """Treat an in-flight frame as finished after this much stream time (0 = never)."""

    IN: Input[Any] = Input("IN", multiple=True, doc="IN:0 frames; IN:1.. auxiliary streams")
    FINISHED: Input[Any] = Input("FINISHED", doc="output of the limited section (back edge)")
    MAX_IN_FLIGHT: SideInput[int] = SideInput(
        "MAX_IN_FLIGHT", int, optional=True, doc="overrides the max_in_flight option"
    )
    OUT: Output[Any] = Output("OUT", multiple=True, doc="admitted IN:i packets")
    ALLOW: Output[bool] = Output(
        "ALLOW", bool, optional=True, doc="per IN:0 timestamp: admitted (True) or dropped"
    )

    timestamp_offset: ClassVar[int | None] = None
    input_policy = "immediate"
    process_on_bounds: ClassVar[bool] = True

    def open(self, ctx: CalculatorContext) -> None:
        n_in, n_out = ctx.count(self.IN), ctx.count(self.OUT)
        if n_in < 1 or n_in != n_out:
            raise ValueError(
                f"FlowLimiter needs IN:0 and one OUT per IN (got {n_in} IN, {n_out} OUT)"
            )
        self._n = n_in
        side = ctx.side(self.MAX_IN_FLIGHT, default=self.options.max_in_flight)
        if int(side) < 1:
            raise ValueError(f"side packet MAX_IN_FLIGHT must be >= 1, got {side!r}")
        self._max_in_flight = int(side)
        self._has_allow = ctx.count(self.ALLOW) > 0
        self._queues: list[deque[Packet[Any]]] = [deque() for _ in range(n_in)]
        self._in_flight: deque[Timestamp] = deque()
        # Admitted IN:0 timestamps that auxiliary streams may still deliver packets for.
        self._admitted: deque[Timestamp] = deque()
        self._out_bounds: list[Timestamp] = [UNSTARTED] * n_in
        self._allow_bound: Timestamp = UNSTARTED
        self._newest: Timestamp = UNSTARTED
        self._closed = [False] * n_in
        #: Frames dropped so far (pushed out of the queue while the limit was reached).
        self.dropped = 0
        #: Frames admitted so far.
        self.admitted = 0

    def process(self, ctx: CalculatorContext) -> None:
        self._collect_finished(ctx)
        for i in range(self._n):
            packet = ctx.packet(self.IN, i)
            if packet is not None:
                self._queues[i].append(packet)
                if i == 0:
                    self._newest = max(self._newest, packet.timestamp)
        timeout = self.options.in_flight_timeout_us
        if timeout > 0:
            while self._in_flight and self._newest - self._in_flight[0] > timeout:
                self._in_flight.popleft()

        self._release_main(ctx)
        self._release_auxiliary(ctx)

    def _collect_finished(self, ctx: CalculatorContext) -> None:
        finished = ctx.packet(self.FINISHED)
        done_before = ctx.input_bound(self.FINISHED)
        if finished is not None:
            done_before = max(done_before, finished.timestamp + 1)
        while self._in_flight and self._in_flight[0] < done_before:
            self._in_flight.popleft()

    def _release_main(self, ctx: CalculatorContext) -> None:
        queue = self._queues[0]
        while queue and len(self._in_flight) < self._max_in_flight:
            packet = queue.popleft()
            ctx.emit(self.OUT, packet.value, 0, timestamp=packet.timestamp)
            self._out_bounds[0] = packet.timestamp + 1
            self._in_flight.append(packet.timestamp)
            if self._n > 1:
                self._admitted.append(packet.timestamp)
            self.admitted += 1
            if self._has_allow:
                ctx.emit(self.ALLOW, True, timestamp=packet.timestamp)
                self._allow_bound = packet.timestamp + 1
        while len(queue) > self.options.max_in_queue:
            packet = queue.popleft()
            self.dropped += 1
            logger.debug("%s: dropped frame at %d (busy)", ctx.node_name, packet.timestamp)
            if self._has_allow:
                ctx.emit(self.ALLOW, False, timestamp=packet.timestamp)
                self._allow_bound = packet.timestamp + 1
        # Everything below the oldest queued frame (or the input bound) is settled.
        bound = queue[0].timestamp if queue else ctx.input_bound(self.IN, 0)
        self._set_out_bound(ctx, 0, bound)
        if self._has_allow and bound > self._allow_bound:
            if bound >= DONE:
                ctx.close_output(self.ALLOW)
            else:
                ctx.set_bound(self.ALLOW, bound)
            self._allow_bound = bound

    def _release_auxiliary(self, ctx: CalculatorContext) -> None:
        if self._n == 1:
            return
        settled = self._out_bounds[0]  # IN:0's fate is known below this timestamp
        admitted = self._admitted
        lowest_pending = DONE
        for i in range(1, self._n):
            queue = self._queues[i]
            while queue and queue[0].timestamp < settled:
                packet = queue.popleft()
                if packet.timestamp in admitted:
                    ctx.emit(self.OUT, packet.value, i, timestamp=packet.timestamp)
                    self._out_bounds[i] = packet.timestamp + 1
            bound = queue[0].timestamp if queue else ctx.input_bound(self.IN, i)
            self._set_out_bound(ctx, i, bound)
            lowest_pending = min(lowest_pending, bound)
        while admitted and admitted[0] < lowest_pending:
            admitted.popleft()

    def _set_out_bound(self, ctx: CalculatorContext, index: int, bound: Timestamp) -> None:
        if self._closed[index] or bound <= self._out_bounds[index]:
            return
        if bound >= DONE:
            ctx.close_output(self.OUT, index)
            self._closed[index] = True
        else:
            ctx.set_bound(self.OUT, bound, index)
        self._out_bounds[index] = bound
