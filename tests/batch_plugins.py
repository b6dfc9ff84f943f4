"""Calculators for the batch tests, importable by path (``tests.batch_plugins:...``)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from facegraph import Calculator, CalculatorContext, Input, Output


class ExitOnDarkFrame(Calculator):
    """Ends its process at once on an all-dark frame (a crash in native code, as seen from
    the batch driver); otherwise emits an empty list of faces."""

    IMAGE = Input("IMAGE", np.ndarray)
    FACES = Output("FACES", list)

    def process(self, ctx: CalculatorContext) -> None:
        image: Any = ctx.get(self.IMAGE)
        if image is None:
            return
        if int(image.max()) < 16:
            os._exit(3)
        ctx.emit(self.FACES, [])
