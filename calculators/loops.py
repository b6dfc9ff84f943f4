"""BeginLoop / EndLoop: run a chain of nodes once per item of a list.

::

    frame_faces ─▶ BeginLoop ─ITEM──▶ (per-item nodes) ─▶ EndLoop ─ITERABLE─▶ results
                       │ ─CLONE─▶ (image for each item)      ▲
                       └──────────── BATCH_END ──────────────┘

BeginLoop emits the items of the list arriving at timestamp T at consecutive
*loop timestamps*: a counter private to the node that only ever grows (the
inner nodes need strictly increasing timestamps, and T alone cannot number
several items). ``CLONE`` inputs (say the image) are re-stamped to every loop
timestamp of the batch. ``BATCH_END`` carries T as its value, at the batch's
last loop timestamp; EndLoop collects the inner results until then and emits
them as one list at T.

Bounds are what keep this from stalling: BeginLoop answers every settled input
timestamp, even one without a list (a bound-only update), with a BATCH_END, so
EndLoop can advance its output bound past T and a downstream sync node that
joins the loop's result with other streams at T never waits.
"""

from __future__ import annotations

from typing import Any, ClassVar

from facegraph import Calculator, CalculatorContext, Input, NoOptions, Output, register
from facegraph.timestamp import DONE, MIN, UNSTARTED, Timestamp


@register("BeginLoop")
class BeginLoop(Calculator[NoOptions]):
    """Emits each item of a list at its own loop timestamp, closing the batch with BATCH_END.

    Items of the list at T go out on ``ITEM`` at consecutive loop timestamps;
    each ``CLONE:i`` input packet at T is repeated on ``CLONE:i`` at each of
    them. ``BATCH_END`` (value: T) follows at the last loop timestamp of the
    batch, or at a fresh one when the list is empty or missing.
    """

    ITERABLE: Input[list[Any]] = Input("ITERABLE", list[Any], doc="the list to iterate (at T)")
    CLONE_IN: Input[Any] = Input(
        "CLONE", optional=True, multiple=True, doc="values paired with every item"
    )
    ITEM: Output[Any] = Output("ITEM", doc="one item per loop timestamp")
    CLONE_OUT: Output[Any] = Output(
        "CLONE", optional=True, multiple=True, doc="CLONE:i re-stamped to each loop timestamp"
    )
    BATCH_END: Output[int] = Output(
        "BATCH_END", int, doc="the input timestamp T, at the batch's last loop timestamp"
    )

    timestamp_offset: ClassVar[int | None] = None
    process_on_bounds: ClassVar[bool] = True

    def open(self, ctx: CalculatorContext) -> None:
        n_in, n_out = ctx.count(self.CLONE_IN), ctx.count(self.CLONE_OUT)
        if n_in != n_out:
            raise ValueError(
                f"BeginLoop needs one CLONE output per CLONE input (got {n_in} in, {n_out} out)"
            )
        self._n_clone = n_in
        self._loop_ts: Timestamp = 0  # next unused loop timestamp
        self._last_input: Timestamp = UNSTARTED  # last input timestamp answered

    def _settled(self, ctx: CalculatorContext) -> Timestamp:
        """Highest input timestamp known to carry no packet on any input (bound-only call)."""
        bound = ctx.input_bound(self.ITERABLE)
        for i in range(self._n_clone):
            bound = min(bound, ctx.input_bound(self.CLONE_IN, i))
        return bound - 1 if bound < DONE else DONE

    def process(self, ctx: CalculatorContext) -> None:
        iterable = ctx.packet(self.ITERABLE)
        clones = [ctx.packet(self.CLONE_IN, i) for i in range(self._n_clone)]
        if iterable is not None or any(c is not None for c in clones):
            ts = ctx.timestamp
        else:
            ts = self._settled(ctx)
            if ts >= DONE:
                return  # inputs are done; the runtime closes the outputs
            if ts < MIN:
                return  # nothing settled yet (bounds still at pre-stream)
        if ts <= self._last_input:
            return
        self._last_input = ts

        items = [] if iterable is None else iterable.value
        if not isinstance(items, (list, tuple)):
            raise TypeError(f"ITERABLE expects a list, got {type(items).__name__}")
        for item in items:
            loop_ts = self._loop_ts
            ctx.emit(self.ITEM, item, timestamp=loop_ts)
            for i, clone in enumerate(clones):
                if clone is not None:
                    ctx.emit(self.CLONE_OUT, clone.value, i, timestamp=loop_ts)
            self._loop_ts += 1
        if not items:
            self._loop_ts += 1  # an empty batch still uses one loop timestamp for BATCH_END
        ctx.emit(self.BATCH_END, ts, timestamp=self._loop_ts - 1)
        # Nothing more will come below the next loop timestamp on any output: tell the
        # inner nodes (and EndLoop, which syncs ITEM with BATCH_END) at once.
        ctx.set_bound(self.ITEM, self._loop_ts)
        for i in range(self._n_clone):
            ctx.set_bound(self.CLONE_OUT, self._loop_ts, i)


@register("EndLoop")
class EndLoop(Calculator[NoOptions]):
    """Collects the ITEM packets of one BeginLoop batch into a list emitted at the batch's T.

    Items dropped inside the loop (a gate, a failed check) are simply absent
    from the list. An empty collection emits nothing: ITERABLE's bound moves
    past T instead (MediaPipe's behaviour, so "no faces" is "no packet").
    """

    ITEM: Input[Any] = Input("ITEM", doc="per-item results at loop timestamps")
    BATCH_END: Input[int] = Input("BATCH_END", int, doc="from BeginLoop: the batch's T")
    ITERABLE: Output[list[Any]] = Output("ITERABLE", list[Any], doc="the collected items, at T")

    timestamp_offset: ClassVar[int | None] = None

    def open(self, ctx: CalculatorContext) -> None:
        self._items: list[Any] = []
        self._out_bound: Timestamp = UNSTARTED

    def process(self, ctx: CalculatorContext) -> None:
        item = ctx.packet(self.ITEM)
        if item is not None:
            self._items.append(item.value)
        end = ctx.get(self.BATCH_END)
        if end is None:
            return
        if self._items:
            ctx.emit(self.ITERABLE, self._items, timestamp=end)
            self._items = []
            self._out_bound = end + 1
        elif end + 1 > self._out_bound:
            ctx.set_bound(self.ITERABLE, end + 1)
            self._out_bound = end + 1
