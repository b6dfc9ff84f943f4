"""Sources (nodes without input streams) and side-packet/stream converters."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from facegraph import (
    STOP,
    Calculator,
    CalculatorContext,
    Input,
    NoOptions,
    Output,
    SideInput,
    SideOutput,
    StrictOptions,
    register,
)
from facegraph.calculator import Signal
from facegraph.timestamp import MAX, MIN, POST_STREAM, PRE_STREAM
from pydantic import Field


@register("CountSource")
class CountSource(Calculator["CountSource.Options"]):
    """Emits 0, 1, ..., count-1 on OUT at start_us + i * step_us, then stops.

    A test and demo source; the runtime calls it until it is done, with
    back-pressure when downstream queues are full.
    """

    class Options(StrictOptions):
        count: int = Field(10, ge=0)
        """How many packets to emit."""
        start_us: int = Field(0, ge=MIN, le=MAX)
        """Timestamp of the first packet."""
        step_us: int = Field(1, ge=1)
        """Timestamp increment between packets."""

    OUT: Output[int] = Output("OUT", int, doc="the counter value")

    timestamp_offset: ClassVar[int | None] = None

    def open(self, ctx: CalculatorContext) -> None:
        self._next = 0
        last = self.options.start_us + max(self.options.count - 1, 0) * self.options.step_us
        if last > MAX:
            raise ValueError(f"the last timestamp {last} is beyond the largest allowed ({MAX})")

    def process(self, ctx: CalculatorContext) -> Signal | None:
        if self._next >= self.options.count:
            return STOP
        ts = self.options.start_us + self._next * self.options.step_us
        ctx.emit(self.OUT, self._next, timestamp=ts)
        self._next += 1
        return STOP if self._next >= self.options.count else None


@register("SidePacketToStream")
class SidePacketToStream(Calculator["SidePacketToStream.Options"]):
    """Emits the VALUE side packet once on OUT: at timestamp_us, or pre-/post-stream.

    ``at: pre_stream`` makes a stream that holds one packet before every other
    timestamp (MediaPipe's AT_PRESTREAM), e.g. a per-run constant for nodes
    that want it as a stream.
    """

    class Options(StrictOptions):
        at: Literal["timestamp", "pre_stream", "post_stream"] = "timestamp"
        """Where to put the packet: at ``timestamp_us`` or at the special timestamps."""
        timestamp_us: int = Field(0, ge=MIN, le=MAX)
        """The packet's timestamp when ``at: timestamp``."""

    VALUE: SideInput[Any] = SideInput("VALUE", doc="the value to emit")
    OUT: Output[Any] = Output("OUT", doc="one packet carrying VALUE")

    timestamp_offset: ClassVar[int | None] = None

    def process(self, ctx: CalculatorContext) -> Signal:
        ts = {"pre_stream": PRE_STREAM, "post_stream": POST_STREAM}.get(
            self.options.at, self.options.timestamp_us
        )
        ctx.emit(self.OUT, ctx.side(self.VALUE), timestamp=ts)
        return STOP


@register("StreamToSidePacket")
class StreamToSidePacket(Calculator[NoOptions]):
    """Publishes the first IN packet's value as the VALUE output side packet.

    Later packets are ignored. The runtime opens nodes before any packet
    flows, so other nodes cannot take VALUE as a side input; the caller reads it
    with ``Graph.side_packet(name)`` (e.g. a value computed once from a stream).
    """

    IN: Input[Any] = Input("IN", doc="the stream whose first value becomes the side packet")
    VALUE: SideOutput[Any] = SideOutput("VALUE", doc="the first IN value")

    def open(self, ctx: CalculatorContext) -> None:
        self._done = False

    def process(self, ctx: CalculatorContext) -> None:
        if not self._done:
            packet = ctx.packet(self.IN)
            if packet is not None:
                ctx.set_side(self.VALUE, packet.value)
                self._done = True
