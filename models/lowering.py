"""Rewriting custom ops as built-in TFLite ops, so a model runs in one LiteRT interpreter.

Splitting a model at its custom ops (:mod:`facegraph.models.tflite_graph`) works for any
op with a Python kernel, but each cut costs a round trip through Python and numpy, and
breaks XNNPACK's graph into pieces. When every custom op of a model has a *lowering* (a
function that emits built-in ops computing the same outputs from the same inputs), the
op is replaced in place by those ops and the whole model runs as one interpreter:

    from facegraph.models.lowering import lower_custom_ops
    content = lower_custom_ops(TfLiteGraph.from_file(path))   # bytes, or None

The three MediaPipe ops of the Attention Mesh model have lowerings here, written from
the same arithmetic as their numpy kernels in :mod:`facegraph.models.custom_ops`
(docs/face_pipeline.md §1.2–1.4; MediaPipe's ``mediapipe/util/tflite/operations/*.cc``):

- ``Landmarks2TransformMatrix`` v2 → GATHER, ATAN2, SIN/COS, MUL/ADD, REDUCE_MAX, ...;
- ``TransformTensorBilinear`` v2 → the sample grid by MUL/ADD, FLOOR, the bounds test by
  comparisons, the four taps by GATHERs over the flattened feature map, and the blend
  by MUL/ADD in MediaPipe's order;
- ``TransformLandmarks`` v2 → SLICE, MUL/ADD, CONCATENATION.

Each lowering first calls the op's kernel factory, so options and shapes are validated
exactly as on the split path. :data:`LOWERING_VERSION` is part of the cache key of a
lowered file (:func:`lowered_model_bytes`): bump it whenever an emitted graph changes.
"""

from __future__ import annotations

import copy
import glob
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from facegraph import Registry
from facegraph.atomic_files import clean_stale_temps, write_whole

from . import custom_ops as _custom_ops
from .tflite_graph import OperatorInfo, TfLiteGraph, TfLiteModelError, _schema
from .uint8_input import ValueRange, prepend_uint8_input

#: Part of the cache key of lowered files; bump when any lowering's output (or the
#: uint8 input's, facegraph.models.uint8_input) changes.
LOWERING_VERSION = 2

_TYPES = {np.dtype(np.float32): 0, np.dtype(np.int32): 2, np.dtype(np.bool_): 6}


class GraphEmitter:
    """Appends tensors, constants and built-in operators to a model's main subgraph.

    ``op`` returns the new output tensor's index; operators are collected in
    :attr:`ops` (in emission order, which must be a valid execution order).
    """

    def __init__(self, model: Any, prefix: str) -> None:
        self._schema = _schema()
        self.model = model
        self.sub = model.subgraphs[0]
        self.prefix = prefix
        self.ops: list[Any] = []
        self._count = 0
        self._consts: dict[tuple[str, bytes, tuple[int, ...]], int] = {}

    def _name(self, hint: str) -> bytes:
        self._count += 1
        return f"{self.prefix}/{hint}_{self._count}".encode()

    def tensor(self, shape: Sequence[int], dtype: Any = np.float32, hint: str = "t") -> int:
        t = self._schema.TensorT()
        t.shape = [int(d) for d in shape]
        t.type = _TYPES[np.dtype(dtype)]
        t.buffer = 0  # the empty sentinel buffer: computed at run time
        t.name = self._name(hint)
        self.sub.tensors.append(t)
        return len(self.sub.tensors) - 1

    def const(self, value: Any, dtype: Any = np.float32) -> int:
        arr = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        key = (arr.dtype.str, arr.tobytes(), arr.shape)
        if key in self._consts:
            return self._consts[key]
        buf = self._schema.BufferT()
        buf.data = np.frombuffer(arr.tobytes(), dtype=np.uint8)
        self.model.buffers.append(buf)
        t = self._schema.TensorT()
        t.shape = list(arr.shape)
        t.type = _TYPES[arr.dtype]
        t.buffer = len(self.model.buffers) - 1
        t.name = self._name("const")
        self.sub.tensors.append(t)
        index = len(self.sub.tensors) - 1
        self._consts[key] = index
        return index

    def _opcode(self, name: str) -> int:
        code = int(getattr(self._schema.BuiltinOperator, name))
        for i, oc in enumerate(self.model.operatorCodes):
            if max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode)) == code:
                return i
        oc = self._schema.OperatorCodeT()
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = min(code, 127)  # the schema's placeholder for codes > 127
        oc.version = 1
        self.model.operatorCodes.append(oc)
        return len(self.model.operatorCodes) - 1

    def op(
        self,
        name: str,
        inputs: Sequence[int],
        shape: Sequence[int],
        dtype: Any = np.float32,
        *,
        options: tuple[str, dict[str, Any]] | None = None,
        out: int | None = None,
    ) -> int:
        """Emit built-in ``name``; ``options`` is ``(OptionsTableName, fields)``."""
        o = self._schema.OperatorT()
        o.opcodeIndex = self._opcode(name)
        o.inputs = list(inputs)
        result = self.tensor(shape, dtype, name.lower()) if out is None else out
        o.outputs = [result]
        if options is not None:
            table, fields = options
            opts = getattr(self._schema, f"{table}T")()
            for k, v in fields.items():
                setattr(opts, k, v)
            o.builtinOptionsType = int(getattr(self._schema.BuiltinOptions, table))
            o.builtinOptions = opts
        self.ops.append(o)
        return result

    # Small helpers for the ops every lowering uses.
    def binary(
        self, name: str, a: int, b: int, shape: Sequence[int], out: int | None = None
    ) -> int:
        table = {"ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions", "DIV": "DivOptions"}
        opts: tuple[str, dict[str, Any]] | None = (table[name], {}) if name in table else None
        return self.op(name, [a, b], shape, options=opts, out=out)

    def reshape(self, x: int, shape: Sequence[int], out: int | None = None) -> int:
        target = self.const(list(shape), np.int32)
        return self.op(
            "RESHAPE",
            [x, target],
            shape,
            options=("ReshapeOptions", {"newShape": list(shape)}),
            out=out,
        )

    def gather(self, x: int, indices: Any, shape: Sequence[int], axis: int = 0) -> int:
        idx = indices if isinstance(indices, int) else self.const(indices, np.int32)
        return self.op("GATHER", [x, idx], shape, options=("GatherOptions", {"axis": axis}))

    def concat(
        self, xs: Sequence[int], axis: int, shape: Sequence[int], out: int | None = None
    ) -> int:
        return self.op(
            "CONCATENATION",
            list(xs),
            shape,
            options=("ConcatenationOptions", {"axis": axis}),
            out=out,
        )

    def reduce(self, name: str, x: int, axis: int, shape: Sequence[int]) -> int:
        axes = self.const([axis], np.int32)
        return self.op(name, [x, axes], shape, options=("ReducerOptions", {"keepDims": False}))


#: A lowering: (the op as its kernel sees it, emitter, input tensors, output tensors).
Lowering = Callable[[_custom_ops.CustomOp, GraphEmitter, Sequence[int], Sequence[int]], None]

#: Lowerings by ``"Name/vN"`` (see :func:`lowering_key`).
LOWERINGS: Registry[Lowering] = Registry("custom-op lowering")


def lowering_key(name: str, version: int) -> str:
    return f"{name}/v{version}"


def _validate(op: _custom_ops.CustomOp) -> None:
    factory = _custom_ops.find_kernel(op.name, op.version)
    if factory is None:
        raise op.error("no kernel registered to validate the op against")
    factory(op)  # raises CustomOpError on bad options or shapes, as the split path would


@LOWERINGS.register(lowering_key("Landmarks2TransformMatrix", 2))
def lower_landmarks_to_transform_matrix(
    op: _custom_ops.CustomOp, e: GraphEmitter, inputs: Sequence[int], outputs: Sequence[int]
) -> None:
    """Same products and sums, in the same order, as the numpy kernel
    (docs/face_pipeline.md §1.2)."""
    _validate(op)
    n = op.inputs[0].shape[1]
    subset = np.asarray(op.options["subset_idxs"], dtype=np.int32).reshape(-1)
    left, right = int(op.options["left_rotation_idx"]), int(op.options["right_rotation_idx"])
    target = np.float32(op.options.get("target_rotation_radians", 0.0))
    out_h, out_w = int(op.options["output_height"]), int(op.options["output_width"])
    scale = np.array([op.options["scale_x"], op.options["scale_y"]], dtype=np.float32)
    k = subset.size
    flat = e.reshape(inputs[0], [n * 3])
    pts_x = e.reshape(e.gather(flat, subset * 3, [k]), [1, k])
    pts_y = e.reshape(e.gather(flat, subset * 3 + 1, [k]), [1, k])
    lpt = e.gather(flat, [3 * left, 3 * left + 1], [2])
    rpt = e.gather(flat, [3 * right, 3 * right + 1], [2])
    d = e.binary("SUB", rpt, lpt, [2])
    phi = e.op("ATAN2", [e.gather(d, [1], [1]), e.gather(d, [0], [1])], [1])
    rho = e.binary("SUB", e.const([target]), phi, [1])
    # XNNPACK would take SIN/COS and use its own approximations (off by an ulp in 3 of 4
    # cases); it handles at most 6 dimensions, so a rank-7 view keeps them on LiteRT's
    # built-in kernels, which call the C library's sinf/cosf like MediaPipe's kernel.
    rho7 = e.reshape(rho, [1] * 7)
    c = e.reshape(e.op("COS", [rho7], [1] * 7), [1])
    s = e.reshape(e.op("SIN", [rho7], [1] * 7), [1])
    ns = e.op("NEG", [s], [1])
    nc = e.op("NEG", [c], [1])
    # Rows (x', y', −x', −y') of ±R(ρ)·p: one max gives the box (as in the kernel).
    rot_x = e.reshape(e.concat([c, s, nc, ns], 0, [4]), [4, 1])
    rot_y = e.reshape(e.concat([ns, c, s, nc], 0, [4]), [4, 1])
    rotated = e.binary(
        "ADD", e.binary("MUL", rot_x, pts_x, [4, k]), e.binary("MUL", rot_y, pts_y, [4, k]), [4, k]
    )
    box = e.reduce("REDUCE_MAX", rotated, 1, [4])  # (max x', max y', −min x', −min y')
    hi = e.gather(box, [0, 1], [2])
    lo = e.op("NEG", [e.gather(box, [2, 3], [2])], [2])
    crop_wh = e.binary("SUB", hi, lo, [2])
    mid = e.binary("DIV", e.binary("ADD", lo, hi, [2]), e.const([2.0, 2.0]), [2])
    # α = −ρ: cos α = c, sin α = −s. M = [[cos α, −sin α], [sin α, cos α]] = [[c, s], [−s, c]].
    rot = e.reshape(e.concat([c, s, ns, c], 0, [4]), [2, 2])
    centre = e.reduce("SUM", e.binary("MUL", rot, e.reshape(mid, [1, 2]), [2, 2]), 1, [2])
    ab = e.binary(
        "DIV", e.binary("MUL", e.const(scale), crop_wh, [2]), e.const([out_w, out_h]), [2]
    )
    lin = e.binary("MUL", rot, e.reshape(ab, [1, 2]), [2, 2])  # [[t00, t01], [t10, t11]]
    shift = e.const([[-1.0 * (out_w / 2.0), -1.0 * (out_h / 2.0)]])
    trans = e.binary(
        "ADD", e.reduce("SUM", e.binary("MUL", lin, shift, [2, 2]), 1, [2]), centre, [2]
    )
    top = e.concat([lin, e.const(np.zeros((2, 1))), e.reshape(trans, [2, 1])], 1, [2, 4])
    bottom = e.const([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    e.reshape(e.concat([top, bottom], 0, [4, 4]), [1, 4, 4], out=outputs[0])


def _two_sum(e: GraphEmitter, a: int, b: int, shape: Sequence[int]) -> tuple[int, int]:
    """Knuth's TwoSum: s = fl(a + b) and the rounding error, s + err == a + b exactly."""
    s = e.binary("ADD", a, b, shape)
    bb = e.binary("SUB", s, a, shape)
    err = e.binary(
        "ADD",
        e.binary("SUB", a, e.binary("SUB", s, bb, shape), shape),
        e.binary("SUB", b, bb, shape),
        shape,
    )
    return s, err


def _exact_sum(e: GraphEmitter, terms: Sequence[int], shape: Sequence[int]) -> int:
    """fl(Σ terms) rounded once, as a wider (double) accumulator would give it: the
    running sum is carried exactly as (sum, errors) and the errors, far below half an
    ulp of the sum, are added back last."""
    total, errors = terms[0], None
    for t in terms[1:]:
        total, err = _two_sum(e, total, t, shape)
        errors = err if errors is None else e.binary("ADD", errors, err, shape)
    return total if errors is None else e.binary("ADD", total, errors, shape)


@LOWERINGS.register(lowering_key("TransformTensorBilinear", 2))
def lower_transform_tensor_bilinear(
    op: _custom_ops.CustomOp, e: GraphEmitter, inputs: Sequence[int], outputs: Sequence[int]
) -> None:
    """Bilinear sampling at ``T·(o + 0.5) − 0.5``, zero outside (docs/face_pipeline.md §1.3)."""
    _validate(op)
    _, H, W, C = op.inputs[0].shape
    _, OH, OW, _ = op.outputs[0].shape
    n = OH * OW
    m = e.reshape(inputs[1], [16])
    col_x = e.reshape(e.gather(m, [0, 4], [2]), [2, 1])  # (x0, y0)
    col_y = e.reshape(e.gather(m, [1, 5], [2]), [2, 1])  # (x1, y1)
    # Half-pixel correction t3 += 0.5·t0 + 0.5·t1 − 0.5. C++ evaluates the right side and
    # the sum in double and rounds once to float; built-in ADD has no float64, so sum the
    # four floats (the halvings are exact) with error-free TwoSums and round once.
    terms = [
        e.gather(m, [3, 7], [2]),
        e.binary("MUL", e.gather(m, [0, 4], [2]), e.const([0.5]), [2]),
        e.binary("MUL", e.gather(m, [1, 5], [2]), e.const([0.5]), [2]),
        e.const([-0.5, -0.5]),
    ]
    shift = e.reshape(_exact_sum(e, terms, [2]), [2, 1])
    grid_y, grid_x = np.meshgrid(np.arange(OH), np.arange(OW), indexing="ij")
    ox = e.const(grid_x.reshape(1, n))
    oy = e.const(grid_y.reshape(1, n))
    t = e.binary(
        "ADD",
        e.binary(
            "ADD", e.binary("MUL", col_x, ox, [2, n]), e.binary("MUL", col_y, oy, [2, n]), [2, n]
        ),
        shift,
        [2, n],
    )
    last = np.array([[W - 1], [H - 1]], dtype=np.float32)
    ok = e.op(
        "LOGICAL_AND",
        [
            e.op("GREATER_EQUAL", [t, e.const(np.zeros((2, 1)))], [2, n], np.bool_),
            e.op("LESS_EQUAL", [t, e.const(last)], [2, n], np.bool_),
        ],
        [2, n],
        np.bool_,
    )
    inside = e.reduce("REDUCE_MIN", e.op("CAST", [ok], [2, n]), 0, [n])  # 1 inside, else 0
    # Keep every tap index inside the tensor: outside samples get weight 0 anyway, and
    # a sample on the last row/column steps back one pixel with fraction 1 (as the kernel).
    tc = e.op(
        "MINIMUM", [e.op("MAXIMUM", [t, e.const([[-1.0]])], [2, n]), e.const(last + 1)], [2, n]
    )
    base = e.op(
        "MAXIMUM",
        [
            e.op("MINIMUM", [e.op("FLOOR", [tc], [2, n]), e.const(last - 1)], [2, n]),
            e.const([[0.0]]),
        ],
        [2, n],
    )
    frac = e.binary("SUB", tc, base, [2, n])
    one_minus = e.binary("SUB", e.const([[1.0]]), frac, [2, n])  # (1−fx, 1−fy)
    mask = e.reshape(inside, [1, n])
    wx0 = e.reshape(e.gather(one_minus, [0], [1, n]), [n, 1])
    wx1 = e.reshape(e.gather(frac, [0], [1, n]), [n, 1])
    wy0 = e.reshape(e.binary("MUL", e.gather(one_minus, [1], [1, n]), mask, [1, n]), [n, 1])
    wy1 = e.reshape(e.binary("MUL", e.gather(frac, [1], [1, n]), mask, [1, n]), [n, 1])
    flat = e.reduce("SUM", e.binary("MUL", base, e.const([[1.0], [float(W)]]), [2, n]), 0, [n])
    data = e.reshape(inputs[0], [H * W, C])

    def tap(offset: float) -> int:  # the corner at flat offset `offset` of every sample
        index = e.op("CAST", [e.binary("ADD", flat, e.const([offset]), [n])], [n], np.int32)
        return e.gather(data, index, [n, C])

    def lerp(w0: int, a: int, w1: int, b: int) -> int:  # w0·a + w1·b
        return e.binary(
            "ADD", e.binary("MUL", w0, a, [n, C]), e.binary("MUL", w1, b, [n, C]), [n, C]
        )

    # MediaPipe's order (and the numpy kernel's): upper and lower rows along x, then y.
    upper = lerp(wx0, tap(0.0), wx1, tap(1.0))
    lower = lerp(wx0, tap(float(W)), wx1, tap(W + 1.0))
    e.reshape(lerp(wy1, lower, wy0, upper), [1, OH, OW, C], out=outputs[0])


@LOWERINGS.register(lowering_key("TransformLandmarks", 2))
def lower_transform_landmarks(
    op: _custom_ops.CustomOp, e: GraphEmitter, inputs: Sequence[int], outputs: Sequence[int]
) -> None:
    """(t00·x + t01·y) + t03 and (t10·x + t11·y) + t13; z copied (docs/face_pipeline.md §1.4)."""
    _validate(op)
    _, n, dims = op.inputs[0].shape
    m = e.reshape(inputs[1], [16])
    lm = inputs[0]

    def column(i: int) -> int:
        begin, size = e.const([0, 0, i], np.int32), e.const([1, n, 1], np.int32)
        return e.op("SLICE", [lm, begin, size], [1, n, 1])

    x, y = column(0), column(1)
    xy = e.binary(
        "ADD",
        e.binary(
            "ADD",
            e.binary("MUL", x, e.gather(m, [0, 4], [2]), [1, n, 2]),
            e.binary("MUL", y, e.gather(m, [1, 5], [2]), [1, n, 2]),
            [1, n, 2],
        ),
        e.gather(m, [3, 7], [2]),
        [1, n, 2],
        out=outputs[0] if dims == 2 else None,
    )
    if dims == 3:
        e.concat([xy, column(2)], 2, [1, n, 3], out=outputs[0])


def _op_info(graph: TfLiteGraph, op: OperatorInfo) -> _custom_ops.CustomOp:
    return _custom_ops.CustomOp(
        name=op.name,
        version=op.version,
        index=op.index,
        options=_custom_ops.decode_options(op.custom_options),
        inputs=tuple(graph.tensors[t] for t in op.inputs if t >= 0),
        outputs=tuple(graph.tensors[t] for t in op.outputs),
        model=graph.source,
    )


def can_lower(graph: TfLiteGraph) -> bool:
    """True if the model has custom ops, all in the main subgraph and all with a lowering."""
    customs = graph.custom_operators()
    return bool(customs) and all(lowering_key(op.name, op.version) in LOWERINGS for op in customs)


def lower_custom_ops(graph: TfLiteGraph) -> bytes | None:
    """The model with every custom op replaced by built-in ops, or None if one has no
    lowering (then split it instead)."""
    if not can_lower(graph):
        return None
    return rewrite_model(graph, lower=True)


def rewrite_model(
    graph: TfLiteGraph, *, lower: bool, uint8_input: ValueRange | None = None
) -> bytes:
    """``graph`` as a new flatbuffer: custom ops lowered (``lower``; every one must have a
    lowering, :func:`can_lower`) and/or its input fed uint8 pixels mapped onto
    ``uint8_input`` (:func:`facegraph.models.uint8_input.prepend_uint8_input`)."""
    import flatbuffers

    model = copy.deepcopy(graph.model)
    sub = model.subgraphs[0]
    if lower:
        new_ops: list[Any] = []
        for op, original in zip(graph.operators, sub.operators, strict=True):
            if not op.is_custom:
                new_ops.append(original)
                continue
            info = _op_info(graph, op)
            emitter = GraphEmitter(model, f"lowered_{op.name}_{op.index}")
            lowering = LOWERINGS.lookup(lowering_key(op.name, op.version))
            lowering(info, emitter, [t for t in op.inputs if t >= 0], list(op.outputs))
            new_ops.extend(emitter.ops)
        sub.operators = new_ops
        # Custom op codes now unused stay in the table: harmless, and indices stay valid.
    if uint8_input is not None:
        prepend_uint8_input(model, uint8_input, graph.source)
    size = sum(len(b.data) for b in model.buffers if b.data is not None)
    builder = flatbuffers.Builder(size + (1 << 20))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _cache_prefix(path: Path, data: bytes, uint8_input: ValueRange | None) -> str:
    digest = hashlib.sha256(data).hexdigest()[:16]
    variant = "" if uint8_input is None else "-u8in[{:.9g},{:.9g}]".format(*uint8_input)
    return f".{path.stem}.{digest}.lowered-v{LOWERING_VERSION}{variant}."


def cached_lowered_bytes(
    path: Path, data: bytes, uint8_input: ValueRange | None = None
) -> bytes | None:
    """The cached lowered form of the model ``data`` read from ``path`` (with a uint8
    input mapped onto ``uint8_input``, if given), or None.

    A cached file whose content does not match the sha256 in its name is removed.
    """
    prefix = _cache_prefix(path, data, uint8_input)
    for cached in sorted(path.parent.glob(f"{glob.escape(prefix)}*.tflite")):
        try:
            content = cached.read_bytes()
        except OSError:
            continue
        if cached.name == f"{prefix}{hashlib.sha256(content).hexdigest()[:16]}.tflite":
            return content
        cached.unlink(missing_ok=True)  # damaged: the caller rebuilds it
    return None


def lowered_model_bytes(
    path: Path, data: bytes, graph: TfLiteGraph, uint8_input: ValueRange | None = None
) -> bytes | None:
    """:func:`lower_custom_ops` of the model ``data`` (read from ``path``), cached beside it;
    with ``uint8_input``, its input also takes uint8 pixels (:func:`rewrite_model`).

    The cached file is named by the original's sha256, :data:`LOWERING_VERSION` and its
    own sha256 (``.<stem>.<sha>.lowered-v<N>.<sha of content>.tflite``; the uint8-input
    variant ``lowered-v<N>-u8in[<lo>,<hi>]``): a changed model
    or lowering never reuses a stale file, and a damaged one is detected, removed and
    rebuilt. It is written to a temporary file in the same directory and moved into
    place (:func:`facegraph.atomic_files.write_whole`); a directory we cannot write to
    only costs the rebuild at every load.
    """
    if not can_lower(graph):
        return None
    cached = cached_lowered_bytes(path, data, uint8_input)
    if cached is not None:
        return cached
    prefix = _cache_prefix(path, data, uint8_input)
    content = rewrite_model(graph, lower=True, uint8_input=uint8_input)
    final = path.with_name(f"{prefix}{hashlib.sha256(content).hexdigest()[:16]}.tflite")
    try:
        # Temporaries of builds killed mid-write (their owner gone) go first.
        clean_stale_temps(path.parent)
        write_whole(final, content)
    except OSError:
        pass  # a folder we cannot write to only costs the rebuild at every load
    return content


__all__ = [
    "LOWERINGS",
    "LOWERING_VERSION",
    "GraphEmitter",
    "Lowering",
    "TfLiteModelError",
    "cached_lowered_bytes",
    "can_lower",
    "lower_custom_ops",
    "lowered_model_bytes",
    "lowering_key",
    "rewrite_model",
]
