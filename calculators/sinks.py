"""Sinks: nodes at the end of a stream that hand packets to Python code or the log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from facegraph import (
    Calculator,
    CalculatorContext,
    Input,
    NoOptions,
    Packet,
    SideInput,
    StrictOptions,
    register,
)
from facegraph.timestamp import describe

logger = logging.getLogger(__name__)


@register("Callback")
class Callback(Calculator[NoOptions]):
    """Calls the CALLBACK side packet with every IN packet (a Packet: value and timestamp).

    The callback runs on the scheduler's thread for this node: keep it short,
    or hand the packet to a queue. Exceptions it raises stop the graph like any
    calculator error.
    """

    IN: Input[Any] = Input("IN", doc="packets to hand over")
    CALLBACK: SideInput[Callable[[Packet[Any]], object]] = SideInput(
        "CALLBACK", doc="a callable taking one Packet"
    )

    def open(self, ctx: CalculatorContext) -> None:
        callback = ctx.side(self.CALLBACK)
        if not callable(callback):
            raise TypeError(f"side packet CALLBACK must be callable, got {callback!r}")
        self._callback = callback

    def process(self, ctx: CalculatorContext) -> None:
        packet = ctx.packet(self.IN)
        if packet is not None:
            self._callback(packet)


@register("Log")
class Log(Calculator["Log.Options"]):
    """Logs every packet as "NAME @ TIMESTAMP: repr(value)".

    The logger is ``facegraph.calculators.sinks``.

    NAME is the ``prefix`` option, or the node name; with several inputs, the
    input index is appended (``NAME[1]``). ``stdout: true`` prints instead of
    logging; long reprs are cut to ``max_chars``.
    """

    class Options(StrictOptions):
        prefix: str = ""
        """Name printed before each packet (default: the node name)."""
        stdout: bool = False
        """Print to standard output instead of the logging module."""
        level: str = "INFO"
        """Logging level name when logging."""
        max_chars: int = 200
        """Cut value reprs longer than this (0 = never)."""

    IN: Input[Any] = Input("IN", multiple=True, doc="packets to log")

    def open(self, ctx: CalculatorContext) -> None:
        level = logging.getLevelName(self.options.level.upper())
        if not isinstance(level, int):
            raise ValueError(f"unknown logging level {self.options.level!r}")
        self._level = level
        self._name = self.options.prefix or ctx.node_name
        self._n = ctx.count(self.IN)

    def process(self, ctx: CalculatorContext) -> None:
        for i in range(self._n):
            packet = ctx.packet(self.IN, i)
            if packet is None:
                continue
            name = f"{self._name}[{i}]" if self._n > 1 else self._name
            text = repr(packet.value)
            limit = self.options.max_chars
            if limit and len(text) > limit:
                text = text[:limit] + "..."
            line = f"{name} @ {describe(packet.timestamp)}: {text}"
            if self.options.stdout:
                print(line, flush=True)
            else:
                logger.log(self._level, line)
