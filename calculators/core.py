"""Core stream plumbing: PassThrough and Gate.

These nodes keep MediaPipe's timing model: they run once per settled input
timestamp and let the runtime advance every output bound past it (offset 0), so
a node that emits nothing (a closed gate) still tells downstream nodes "nothing
at t" and they never wait.
"""

from __future__ import annotations

from typing import Any

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


@register("PassThrough")
class PassThrough(Calculator[NoOptions]):
    """Forwards each IN:i packet to OUT:i unchanged (and side packet SIDE:i to SIDE:i).

    Useful to rename streams, to merge the timing of several streams into one
    node (with the default ``sync`` policy the outputs of one timestamp leave
    together), and in tests.
    """

    IN: Input[Any] = Input("IN", multiple=True, doc="any packets; IN:i goes to OUT:i")
    OUT: Output[Any] = Output("OUT", multiple=True, doc="the same packets")
    SIDE_IN: SideInput[Any] = SideInput(
        "SIDE", optional=True, multiple=True, doc="side packets to republish"
    )
    SIDE_OUT: SideOutput[Any] = SideOutput(
        "SIDE", optional=True, multiple=True, doc="SIDE:i input side packet, unchanged"
    )

    def open(self, ctx: CalculatorContext) -> None:
        n_in, n_out = ctx.count(self.IN), ctx.count(self.OUT)
        if n_in != n_out:
            raise ValueError(
                f"PassThrough needs as many OUT streams as IN streams (got {n_in} IN, {n_out} OUT)"
            )
        n_side_in, n_side_out = ctx.count(self.SIDE_IN), ctx.count(self.SIDE_OUT)
        if n_side_in != n_side_out:
            raise ValueError(
                "PassThrough needs as many output SIDE packets as input SIDE packets "
                f"(got {n_side_in} in, {n_side_out} out)"
            )
        for i in range(n_side_in):
            ctx.set_side(self.SIDE_OUT, ctx.side(self.SIDE_IN, i), i)
        self._n = n_in

    def process(self, ctx: CalculatorContext) -> None:
        for i in range(self._n):
            packet = ctx.packet(self.IN, i)
            if packet is not None:
                ctx.emit(self.OUT, packet.value, i)


@register("Gate")
class Gate(Calculator["Gate.Options"]):
    """Passes IN:i to OUT:i only while allowed by an ALLOW or DISALLOW stream or side packet.

    Exactly one control may be connected: the ``ALLOW`` or ``DISALLOW`` input
    stream (a bool at the same timestamp as the data) or the ``ALLOW`` or
    ``DISALLOW`` side packet (fixed for the run). With no control the option
    ``allow`` decides. A control stream without a packet at t counts as
    "disallow", or as "allow" with ``empty_packets_as_allow: true``.

    A disallowed timestamp produces no packets, but output bounds still advance,
    so downstream nodes learn "nothing at t" at once. A side packet that
    disallows closes the outputs in ``open`` (MediaPipe closes them too), and the
    gate then stops at its first input (STOP): a branch switched off for the run,
    like the face graphs' blendshapes and head pose, costs nothing per frame. The optional
    ``STATE_CHANGE`` output carries the new state (True = allow) at each
    timestamp where the decision differs from the previous one.
    """

    class Options(StrictOptions):
        allow: bool = True
        """Decision used when neither ALLOW nor DISALLOW is connected."""
        empty_packets_as_allow: bool = False
        """With a control stream: treat "no control packet at t" as allow."""

    IN: Input[Any] = Input("IN", multiple=True, doc="data streams")
    ALLOW: Input[bool] = Input("ALLOW", bool, optional=True, doc="pass data at t when True")
    DISALLOW: Input[bool] = Input("DISALLOW", bool, optional=True, doc="drop data at t when True")
    ALLOW_SIDE: SideInput[bool] = SideInput(
        "ALLOW", bool, optional=True, doc="pass all data when True"
    )
    DISALLOW_SIDE: SideInput[bool] = SideInput(
        "DISALLOW", bool, optional=True, doc="drop all data when True"
    )
    OUT: Output[Any] = Output("OUT", multiple=True, doc="IN:i when allowed")
    STATE_CHANGE: Output[bool] = Output(
        "STATE_CHANGE", bool, optional=True, doc="new decision when it changes"
    )

    def open(self, ctx: CalculatorContext) -> None:
        controls = [
            name
            for name, connected in (
                ("ALLOW stream", ctx.count(self.ALLOW)),
                ("DISALLOW stream", ctx.count(self.DISALLOW)),
                ("ALLOW side packet", ctx.count(self.ALLOW_SIDE)),
                ("DISALLOW side packet", ctx.count(self.DISALLOW_SIDE)),
            )
            if connected
        ]
        if len(controls) > 1:
            raise ValueError(
                f"Gate takes one control, but {' and '.join(controls)} are connected; "
                "connect only one of ALLOW or DISALLOW, as a stream or a side packet"
            )
        n_in, n_out = ctx.count(self.IN), ctx.count(self.OUT)
        if n_in != n_out:
            raise ValueError(
                f"Gate needs as many OUT streams as IN streams (got {n_in} IN, {n_out} OUT)"
            )
        self._n = n_in
        self._has_state_change = ctx.count(self.STATE_CHANGE) > 0
        self._last_allow: bool | None = None
        self._stream_control = bool(ctx.count(self.ALLOW) or ctx.count(self.DISALLOW))
        # A fixed decision (side packet or option), or None when a stream decides per timestamp.
        self._fixed: bool | None = None
        self._fixed_by_side_packet = False
        if not self._stream_control:
            self._fixed = self.options.allow
            if ctx.count(self.ALLOW_SIDE):
                value = ctx.side(self.ALLOW_SIDE)
                if value is not None:
                    self._fixed, self._fixed_by_side_packet = bool(value), True
            elif ctx.count(self.DISALLOW_SIDE):
                value = ctx.side(self.DISALLOW_SIDE)
                if value is not None:
                    self._fixed, self._fixed_by_side_packet = not bool(value), True
        self._closed_for_run = self._fixed_by_side_packet and not self._fixed
        if self._closed_for_run:
            # The side packet closes the gate for the whole run: close the outputs now, so
            # nothing downstream waits for (or buffers against) these streams.
            for i in range(self._n):
                ctx.close_output(self.OUT, i)

    def _decide(self, ctx: CalculatorContext) -> bool:
        if self._fixed is not None:
            return self._fixed
        allow = bool(self.options.empty_packets_as_allow)
        if ctx.count(self.ALLOW):
            value = ctx.get(self.ALLOW)
            if value is not None:
                allow = bool(value)
        else:
            value = ctx.get(self.DISALLOW)
            if value is not None:
                allow = not bool(value)
        return allow

    def process(self, ctx: CalculatorContext) -> Signal | None:
        if self._closed_for_run:
            # Closed for the run (its outputs too, in open): not called again, and the
            # engine discards its later inputs (two such gates cost ~10 µs per frame).
            return STOP
        allow = self._decide(ctx)
        if self._has_state_change and self._last_allow is not None and allow != self._last_allow:
            ctx.emit(self.STATE_CHANGE, allow)
        self._last_allow = allow
        if not allow:
            return None
        for i in range(self._n):
            packet = ctx.packet(self.IN, i)
            if packet is not None:
                ctx.emit(self.OUT, packet.value, i)
        return None
