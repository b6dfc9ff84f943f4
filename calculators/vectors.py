"""List nodes: clip, split, concatenate, size tests.

A "vector" here is any Python sequence (list or tuple); outputs are new lists,
so downstream nodes may not assume they share the input object. All of them
run once per input packet at its timestamp (offset 0): an input timestamp
without a packet advances the output bound and emits nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from facegraph import (
    Calculator,
    CalculatorContext,
    Input,
    NoOptions,
    Output,
    SideInput,
    StrictOptions,
    register,
)
from pydantic import Field, model_validator


def _as_sequence(value: Any, node: str, port: str) -> Sequence[Any]:
    if isinstance(value, (list, tuple)):
        return value
    raise TypeError(f"{node}: {port} expects a list, got {type(value).__name__}")


def _int_side(ctx: CalculatorContext, port: SideInput[int], default: int, minimum: int) -> int:
    """The side packet's value when connected and set, else ``default``; checked ≥ minimum."""
    value = ctx.side(port, default=default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"side packet {port.tag} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"side packet {port.tag} must be >= {minimum}, got {value}")
    return value


@register("ClipVector")
class ClipVector(Calculator["ClipVector.Options"]):
    """Keeps the first max_size items of a list (all of it if shorter).

    The side packet ``MAX_SIZE`` overrides the option (e.g. ``num_faces``:
    detections arrive sorted by score, so this keeps the best ones).
    """

    class Options(StrictOptions):
        max_size: int = Field(1, ge=0)
        """How many leading items to keep."""

    IN: Input[list[Any]] = Input("IN", list[Any], doc="a list")
    OUT: Output[list[Any]] = Output("OUT", list[Any], doc="its first max_size items")
    MAX_SIZE: SideInput[int] = SideInput(
        "MAX_SIZE", int, optional=True, doc="overrides the max_size option"
    )

    def open(self, ctx: CalculatorContext) -> None:
        self._max = _int_side(ctx, self.MAX_SIZE, self.options.max_size, 0)

    def process(self, ctx: CalculatorContext) -> None:
        value = ctx.get(self.IN)
        if value is None:
            return
        items = _as_sequence(value, ctx.node_name, "IN")
        ctx.emit(self.OUT, list(items[: self._max]))


@register("SplitVector")
class SplitVector(Calculator["SplitVector.Options"]):
    """Cuts a list into slices [begin, end), one output stream per range.

    ``ranges: [[0, 1], [1, 3]]`` sends ``items[0:1]`` to OUT:0 and
    ``items[1:3]`` to OUT:1. With ``element_only`` every range must hold one
    item, and the item itself is emitted instead of a one-item list. With
    ``combine_outputs`` the slices are concatenated onto OUT:0 alone. A list
    shorter than the ranges is an error, unless ``allow_short`` is set: then
    each range emits what the list holds of it (nothing when that is empty).
    """

    class Options(StrictOptions):
        ranges: list[tuple[int, int]] = Field(min_length=1)
        """Half-open [begin, end) slices, in output order."""
        element_only: bool = False
        """Emit the single item of each (size-1) range rather than a list."""
        combine_outputs: bool = False
        """Emit one list, the concatenation of every range, on OUT:0."""
        allow_short: bool = False
        """Accept lists shorter than the ranges instead of failing."""

        @model_validator(mode="after")
        def _check(self) -> SplitVector.Options:
            for begin, end in self.ranges:
                if begin < 0 or end <= begin:
                    raise ValueError(f"range [{begin}, {end}] must have 0 <= begin < end")
                if self.element_only and end - begin != 1:
                    raise ValueError(f"element_only needs ranges of size 1, got [{begin}, {end}]")
            if self.element_only and self.combine_outputs:
                raise ValueError("element_only and combine_outputs cannot both be set")
            return self

    IN: Input[list[Any]] = Input("IN", list[Any], doc="a list")
    OUT: Output[Any] = Output("OUT", multiple=True, doc="slice i (or its item) on OUT:i")

    def open(self, ctx: CalculatorContext) -> None:
        expected = 1 if self.options.combine_outputs else len(self.options.ranges)
        got = ctx.count(self.OUT)
        if got != expected:
            raise ValueError(
                f"SplitVector has {len(self.options.ranges)} range(s) and "
                f"combine_outputs={self.options.combine_outputs}, so it needs {expected} "
                f"OUT stream(s); {got} connected"
            )
        self._needed = max(end for _, end in self.options.ranges)

    def process(self, ctx: CalculatorContext) -> None:
        value = ctx.get(self.IN)
        if value is None:
            return
        items = _as_sequence(value, ctx.node_name, "IN")
        if len(items) < self._needed and not self.options.allow_short:
            raise ValueError(
                f"input list has {len(items)} items but the ranges reach index "
                f"{self._needed - 1} (set allow_short: true to accept short lists)"
            )
        if self.options.combine_outputs:
            combined: list[Any] = []
            for begin, end in self.options.ranges:
                combined.extend(items[begin:end])
            ctx.emit(self.OUT, combined, 0)
            return
        for i, (begin, end) in enumerate(self.options.ranges):
            part = items[begin:end]
            if not part:
                continue  # only with allow_short: the list ends before this range
            ctx.emit(self.OUT, part[0] if self.options.element_only else list(part), i)


@register("ConcatVector")
class ConcatVector(Calculator["ConcatVector.Options"]):
    """Concatenates the lists on IN:0..n (in index order) into one list.

    Inputs without a packet at t are skipped; a non-list value is appended as
    one item. With ``only_emit_if_all_present`` nothing is emitted at t unless
    every input has a packet. When no input has a packet nothing is emitted.
    """

    class Options(StrictOptions):
        only_emit_if_all_present: bool = False
        """Emit only at timestamps where every input carries a packet."""

    IN: Input[Any] = Input("IN", multiple=True, doc="lists (or single items) to join")
    OUT: Output[list[Any]] = Output("OUT", list[Any], doc="their concatenation")

    def open(self, ctx: CalculatorContext) -> None:
        self._n = ctx.count(self.IN)

    def process(self, ctx: CalculatorContext) -> None:
        result: list[Any] = []
        present = 0
        for i in range(self._n):
            packet = ctx.packet(self.IN, i)
            if packet is None:
                continue
            present += 1
            if isinstance(packet.value, (list, tuple)):
                result.extend(packet.value)
            else:
                result.append(packet.value)
        if present == 0 or (self.options.only_emit_if_all_present and present < self._n):
            return
        ctx.emit(self.OUT, result)


@register("HasMinSize")
class HasMinSize(Calculator["HasMinSize.Options"]):
    """Emits len(IN) >= min_size for each list (the side packet MIN_SIZE overrides).

    The face graph uses it as "the previous frame already tracks num_faces
    faces, skip the detector". Like MediaPipe's CollectionHasMinSize, it emits
    only when a list arrives.
    """

    class Options(StrictOptions):
        min_size: int = Field(0, ge=0)
        """The size to reach."""

    IN: Input[list[Any]] = Input("IN", list[Any], doc="a list")
    MIN_SIZE: SideInput[int] = SideInput(
        "MIN_SIZE", int, optional=True, doc="overrides the min_size option"
    )
    OUT: Output[bool] = Output("OUT", bool, doc="True when the list has at least min_size items")

    def open(self, ctx: CalculatorContext) -> None:
        self._min = _int_side(ctx, self.MIN_SIZE, self.options.min_size, 0)

    def process(self, ctx: CalculatorContext) -> None:
        value = ctx.get(self.IN)
        if value is None:
            return
        ctx.emit(self.OUT, len(_as_sequence(value, ctx.node_name, "IN")) >= self._min)


@register("VectorSize")
class VectorSize(Calculator[NoOptions]):
    """Emits the length of each list."""

    IN: Input[list[Any]] = Input("IN", list[Any], doc="a list")
    OUT: Output[int] = Output("OUT", int, doc="its length")

    def process(self, ctx: CalculatorContext) -> None:
        value = ctx.get(self.IN)
        if value is not None:
            ctx.emit(self.OUT, len(_as_sequence(value, ctx.node_name, "IN")))
