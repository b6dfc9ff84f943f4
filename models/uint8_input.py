"""Feeding a float model 8-bit pixels: a DEQUANTIZE prepended to its image input.

A vision model's float input is usually the crop's uint8 pixels mapped linearly onto a
range, ``x * scale + offset`` in float32 (MediaPipe's ``ImageToTensorCalculator``: [0, 1]
for the face mesh, [-1, 1] for BlazeFace). Done in numpy, that map is a pass over the
crop, a fresh float tensor four times its size and a copy of it into the interpreter,
every frame: 52-57 µs per 192×192 crop on this project's benchmark machine, 68-105 µs
after the caches go cold. Done inside the model, it is one element-wise op that
XNNPACK runs with the rest:

    uint8 (1, H, W, C) ─DEQUANTIZE(scale, zero point 0)─▶ [ADD offset] ─▶ the old input

The result has the same bits as the numpy map: ``uint8 → float32`` is exact, and
DEQUANTIZE then multiplies by the same float32 ``scale`` (and ADD adds the same float32
``offset``), each rounded once, in the same order. ``tests/test_uint8_input.py`` checks
that on the shipped models, for both ranges they use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .tflite_graph import _NUMPY_DTYPES, TfLiteModelError, _schema

#: TensorType.UINT8 in the TFLite schema.
_UINT8 = 3
_FLOAT32 = 0

ValueRange = tuple[float, float]


def value_range_transform(value_range: ValueRange) -> tuple[np.float32, np.float32]:
    """(scale, offset) mapping pixel 0 → ``range[0]`` and 255 → ``range[1]``, in float32,
    as MediaPipe's ``GetValueRangeTransformation`` computes them."""
    lo, hi = value_range
    if not lo < hi:
        raise ValueError(f"invalid value range [{lo}, {hi}]: min >= max")
    f32 = np.float32
    scale = (f32(hi) - f32(lo)) / f32(255.0)
    offset = f32(lo) - f32(0.0) * scale
    return f32(scale), f32(offset)


def check_value_range(value: Any) -> ValueRange | None:
    """``None`` or a ``(min, max)`` pair of finite floats with min < max; else ValueError."""
    if value is None:
        return None
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"a value range is [min, max], got {value!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"a value range needs finite min < max, got [{lo}, {hi}]")
    return lo, hi


def prepend_uint8_input(model: Any, value_range: ValueRange, source: str) -> None:
    """Make the single float32 input of ``model`` (an unpacked ``ModelT``, changed in
    place) a uint8 input that is mapped onto ``value_range`` inside the model."""
    from .lowering import GraphEmitter  # here: lowering imports this module

    sub = model.subgraphs[0]
    inputs = list(sub.inputs)
    if len(inputs) != 1 or sub.tensors[inputs[0]].type != _FLOAT32:
        kinds = ", ".join(
            f"{_NUMPY_DTYPES.get(sub.tensors[i].type, sub.tensors[i].type)}"
            f"{list(sub.tensors[i].shape)}"
            for i in inputs
        )
        raise TfLiteModelError(
            f"{source}: uint8 input needs a model with one float32 input; it has {kinds}"
        )
    old = inputs[0]
    shape = [int(d) for d in sub.tensors[old].shape]
    scale, offset = value_range_transform(value_range)
    schema = _schema()
    pixels = schema.TensorT()
    pixels.shape = shape
    pixels.type = _UINT8
    pixels.buffer = 0
    pixels.name = (sub.tensors[old].name or b"input") + b"/uint8"
    quant = schema.QuantizationParametersT()
    quant.scale = [float(scale)]
    quant.zeroPoint = [0]
    pixels.quantization = quant
    sub.tensors.append(pixels)
    new = len(sub.tensors) - 1
    emit = GraphEmitter(model, "uint8_input")
    if offset:
        scaled = emit.tensor(shape, hint="scaled")
        emit.op("DEQUANTIZE", [new], shape, out=scaled)
        emit.binary("ADD", scaled, emit.const(offset), shape, out=old)
    else:  # x * scale + 0.0 == x * scale for x >= 0: skip the ADD
        emit.op("DEQUANTIZE", [new], shape, out=old)
    sub.operators = emit.ops + list(sub.operators)
    sub.inputs = [new]
    for sig in model.signatureDefs or []:  # signature runners name the input too
        for t in sig.inputs or []:
            if t.tensorIndex == old:
                t.tensorIndex = new


__all__ = ["ValueRange", "check_value_range", "prepend_uint8_input", "value_range_transform"]
