"""A calculator importable by path (``tests.plugin_example:Doubler``), used by registry tests."""

from __future__ import annotations

from facegraph import Calculator, CalculatorContext, Input, Output


class Doubler(Calculator):
    """Doubles each number."""

    IN = Input("IN", float)
    OUT = Output("OUT", float)

    def process(self, ctx: CalculatorContext) -> None:
        value = ctx.get(self.IN)
        if value is not None:
            ctx.emit(self.OUT, value * 2)


NOT_A_CALCULATOR = 42
