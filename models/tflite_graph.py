"""Reading a ``.tflite`` flatbuffer and cutting it into built-in-only sub-models.

LiteRT's Python interpreter cannot run a model whose graph contains custom ops it
has no kernel for (MediaPipe's Attention Mesh model has three). This module reads
the model with the flatbuffer object API that LiteRT ships
(``ai_edge_litert.schema_py_generated``), finds the custom ops, and plans an
execution order of *segments* (runs of built-in ops, each serialised as its own
small ``.tflite`` that LiteRT accepts) and *custom steps* (one custom op each, run
by a Python kernel). :mod:`facegraph.models.inference` executes that plan.

Only the main subgraph (index 0) is split. Other subgraphs (the bodies of control-flow
ops such as WHILE and IF, which name them by index) are carried into every sub-model in
their original order, so those indices stay valid; their operator codes and buffers are
renumbered like the main subgraph's.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from facegraph.models.errors import ModelError

#: BuiltinOperator.CUSTOM in the TFLite schema.
CUSTOM_OPCODE = 32

# TensorType enum value -> numpy dtype (the types a float/quantised vision model uses,
# plus the common integer ones). Anything else is reported by name when it matters.
_NUMPY_DTYPES: dict[int, np.dtype] = {
    0: np.dtype(np.float32),
    1: np.dtype(np.float16),
    2: np.dtype(np.int32),
    3: np.dtype(np.uint8),
    4: np.dtype(np.int64),
    6: np.dtype(np.bool_),
    7: np.dtype(np.int16),
    9: np.dtype(np.int8),
    10: np.dtype(np.float64),
    12: np.dtype(np.uint64),
    15: np.dtype(np.uint32),
    16: np.dtype(np.uint16),
}


class TfLiteModelError(ModelError):
    """A ``.tflite`` file could not be read, split or run; the message names the file."""


def _schema() -> Any:
    # LiteRT ships the generated schema module (with the object API: ModelT, SubGraphT, ...).
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _builtin_names() -> dict[int, str]:
    ops = _schema().BuiltinOperator
    return {v: k for k, v in vars(ops).items() if not k.startswith("_") and isinstance(v, int)}


def _tensor_type_names() -> dict[int, str]:
    types = _schema().TensorType
    return {v: k for k, v in vars(types).items() if not k.startswith("_") and isinstance(v, int)}


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One tensor of the main subgraph."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    #: True if the tensor holds data in the file (weights, constants).
    is_constant: bool

    def describe(self) -> str:
        dims = ",".join(str(d) for d in self.shape)
        return f"'{self.name}' {self.dtype}[{dims}]"


@dataclass(frozen=True, slots=True)
class OperatorInfo:
    """One operator of the main subgraph, in the file's (topological) order."""

    index: int
    #: Builtin operator name (``"CONV_2D"``) or the custom code (``"TransformLandmarks"``).
    name: str
    version: int
    is_custom: bool
    #: Main-subgraph tensor indices; ``-1`` marks an omitted optional input.
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    #: Raw ``custom_options`` bytes (a flexbuffer for MediaPipe's ops), or ``b""``.
    custom_options: bytes = b""


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of built-in operators executed as one LiteRT sub-model."""

    operators: tuple[int, ...]
    #: Main-subgraph tensor indices fed into / read out of the sub-model, in its I/O order.
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CustomStep:
    """One custom operator, executed by a registered Python kernel."""

    operator: int


@dataclass(frozen=True, slots=True)
class SplitPlan:
    """Steps in dependency order; running them in order computes every model output."""

    steps: tuple[Segment | CustomStep, ...]
    #: Tensors computed only from constants but consumed by a custom op or a model output;
    #: they are computed once at load (by a sub-model with no inputs) and reused.
    folded: tuple[int, ...] = field(default=())


class TfLiteGraph:
    """The parsed flatbuffer of one ``.tflite`` model (main subgraph view)."""

    def __init__(self, data: bytes, source: str = "<bytes>") -> None:
        self.source = source
        schema = _schema()
        buf = bytearray(data)
        try:
            if not schema.Model.ModelBufferHasIdentifier(buf, 0):
                raise TfLiteModelError(
                    f"{source}: not a TFLite model (missing 'TFL3' file identifier)"
                )
            self.model = schema.ModelT.InitFromPackedBuf(buf, 0)
        except TfLiteModelError:
            raise
        except Exception as exc:  # the generated reader raises bare struct/index errors
            raise TfLiteModelError(
                f"{source}: not a valid TFLite model: the file is truncated or corrupt "
                f"({len(data)} bytes; the flatbuffer reader said: {exc})"
            ) from exc
        if not self.model.subgraphs:
            raise TfLiteModelError(f"{source}: model has no subgraph")
        self._sub = self.model.subgraphs[0]
        builtin_names = _builtin_names()
        self.tensors: tuple[TensorInfo, ...] = tuple(
            self._tensor_info(i, t) for i, t in enumerate(self._sub.tensors or [])
        )
        ops = []
        for i, op in enumerate(self._sub.operators or []):
            code = self.model.operatorCodes[op.opcodeIndex]
            # Newer files store codes > 127 in builtinCode only; older ones in the deprecated
            # int8 field only. The real code is the larger of the two (schema comment).
            builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
            is_custom = builtin == CUSTOM_OPCODE
            if is_custom:
                name = (code.customCode or b"").decode("utf-8", "replace")
            else:
                name = builtin_names.get(builtin, f"BUILTIN_{builtin}")
            opts = op.customOptions
            ops.append(
                OperatorInfo(
                    index=i,
                    name=name,
                    version=int(code.version or 1),
                    is_custom=is_custom,
                    inputs=tuple(int(x) for x in (op.inputs if op.inputs is not None else [])),
                    outputs=tuple(int(x) for x in (op.outputs if op.outputs is not None else [])),
                    custom_options=bytes(opts) if opts is not None else b"",
                )
            )
        self.operators: tuple[OperatorInfo, ...] = tuple(ops)
        self.inputs: tuple[int, ...] = tuple(int(i) for i in self._sub.inputs)
        self.outputs: tuple[int, ...] = tuple(int(i) for i in self._sub.outputs)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TfLiteGraph:
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise TfLiteModelError(f"cannot read model file {p}: {exc.strerror}") from exc
        return cls(data, source=str(p))

    # -- queries -------------------------------------------------------------------------

    def _tensor_info(self, index: int, t: Any) -> TensorInfo:
        names = _tensor_type_names()
        dtype = _NUMPY_DTYPES.get(int(t.type))
        if dtype is None:
            # Keep going: only an unsupported type on a tensor we must touch is an error.
            dtype = np.dtype(np.void)
        buf = self.model.buffers[t.buffer] if t.buffer < len(self.model.buffers) else None
        has_data = buf is not None and (
            (buf.data is not None and len(buf.data) > 0) or int(buf.size or 0) > 0
        )
        shape = tuple(int(d) for d in t.shape) if t.shape is not None else ()
        name = (t.name or b"").decode("utf-8", "replace") or f"tensor_{index}"
        if dtype == np.dtype(np.void):
            name = f"{name} ({names.get(int(t.type), t.type)})"
        return TensorInfo(index, name, shape, dtype, has_data)

    def custom_operators(self) -> list[OperatorInfo]:
        return [op for op in self.operators if op.is_custom]

    def constant(self, index: int) -> np.ndarray:
        """The data of a constant tensor as a read-only array of its dtype and shape."""
        t = self._sub.tensors[index]
        info = self.tensors[index]
        buf = self.model.buffers[t.buffer]
        if buf.data is None:
            raise TfLiteModelError(
                f"{self.source}: tensor {info.describe()} has no inline data "
                "(external buffers are not supported)"
            )
        arr = np.frombuffer(np.asarray(buf.data, dtype=np.uint8).tobytes(), dtype=info.dtype)
        return arr.reshape(info.shape)

    # -- splitting -----------------------------------------------------------------------

    def plan_split(self) -> SplitPlan:
        """Plan segments of built-in ops around the custom ops, in dependency order.

        Each tensor gets a *level*: the largest number of custom ops on any path from a
        model input to it. Built-in ops of level k form segment k; custom ops of level k
        run just before segment k. A built-in op only reads tensors of level ≤ k (computed
        earlier or inside its own segment), and a custom op of level k only reads tensors
        of level ≤ k−1, so this order is valid. Segments whose outputs no custom op of the
        next level reads are then merged forward to save interpreter calls.

        Ops that read only constants (e.g. DEQUANTIZE of fp16 weights) are not placed by
        level: they are copied into every segment that uses their result, so that weights
        stay static inside each sub-model (XNNPACK packs static weights; a weight fed as
        a runtime input would be slow or not delegated at all).
        """
        ops = self.operators
        n_tensors = len(self.tensors)
        producer: list[int] = [-1] * n_tensors
        for op in ops:
            for t in op.outputs:
                producer[t] = op.index
        static = [info.is_constant for info in self.tensors]
        level = [0] * n_tensors
        op_level = [0] * len(ops)
        static_op = [False] * len(ops)
        for op in ops:
            ins = [t for t in op.inputs if t >= 0]
            dyn = [t for t in ins if not static[t]]
            if not op.is_custom and not dyn:
                static_op[op.index] = True
                for t in op.outputs:
                    static[t] = True
                continue
            lv = max((level[t] for t in dyn), default=0)
            if op.is_custom:
                lv += 1
            op_level[op.index] = lv
            for t in op.outputs:
                level[t] = lv

        max_level = max(op_level, default=0)
        segments: list[list[int]] = [[] for _ in range(max_level + 1)]
        customs: list[list[int]] = [[] for _ in range(max_level + 1)]
        for op in ops:
            if static_op[op.index]:
                continue
            (customs if op.is_custom else segments)[op_level[op.index]].append(op.index)

        # Merge segment k into k+1 when no custom op of level k+1 reads any of its outputs.
        for k in range(max_level):
            produced = {t for i in segments[k] for t in ops[i].outputs}
            read_next = {t for i in customs[k + 1] for t in ops[i].inputs}
            if segments[k] and not produced & read_next:
                segments[k + 1] = sorted(segments[k] + segments[k + 1])
                segments[k] = []

        consumers: list[list[int]] = [[] for _ in range(n_tensors)]
        for op in ops:
            for t in op.inputs:
                if t >= 0:
                    consumers[t].append(op.index)
        model_outputs = set(self.outputs)

        # Computed-static tensors read by a custom op or returned as a model output.
        folded = sorted(
            t
            for t in range(n_tensors)
            if static[t]
            and not self.tensors[t].is_constant
            and (t in model_outputs or any(ops[c].is_custom for c in consumers[t]))
        )

        seg_of_op: dict[int, int] = {}
        for k, seg in enumerate(segments):
            for i in seg:
                seg_of_op[i] = k

        steps: list[Segment | CustomStep] = []
        for k in range(max_level + 1):
            steps.extend(CustomStep(i) for i in customs[k])
            if not segments[k]:
                continue
            members = set(segments[k])
            # Pull in the static producers this segment needs (transitively).
            stack = [t for i in segments[k] for t in ops[i].inputs if t >= 0]
            while stack:
                t = stack.pop()
                p = producer[t]
                if p >= 0 and static_op[p] and p not in members:
                    members.add(p)
                    stack.extend(x for x in ops[p].inputs if x >= 0)
            order = sorted(members)
            produced = {t for i in order for t in ops[i].outputs}
            seg_inputs: list[int] = []
            for i in order:
                for t in ops[i].inputs:
                    if (
                        t >= 0
                        and t not in produced
                        and not self.tensors[t].is_constant
                        and t not in seg_inputs
                    ):
                        seg_inputs.append(t)
            seg_outputs: list[int] = []
            for i in segments[k]:  # static members are recomputed wherever they are needed
                for t in ops[i].outputs:
                    outside = [c for c in consumers[t] if seg_of_op.get(c, -1) != k]
                    needed_by_others = any(not static_op[c] for c in outside)
                    if (t in model_outputs or needed_by_others) and t not in seg_outputs:
                        seg_outputs.append(t)
            steps.append(Segment(tuple(order), tuple(seg_inputs), tuple(seg_outputs)))
        return SplitPlan(tuple(steps), tuple(folded))

    def static_producers(self, tensors: Iterable[int]) -> list[int]:
        """Operators (sorted) needed to compute ``tensors`` from constants alone."""
        producer = {t: op.index for op in self.operators for t in op.outputs}
        needed: set[int] = set()
        stack = list(tensors)
        while stack:
            t = stack.pop()
            p = producer.get(t)
            if p is not None and p not in needed:
                needed.add(p)
                stack.extend(x for x in self.operators[p].inputs if x >= 0)
        return sorted(needed)

    def extract(
        self, operators: Sequence[int], inputs: Sequence[int], outputs: Sequence[int]
    ) -> bytes:
        """Serialise a model made of ``operators`` of the main subgraph.

        ``inputs``/``outputs`` become the new subgraph's inputs/outputs (in that order).
        Unused tensors, buffers and operator codes are dropped; the other subgraphs are
        carried whole (see the module doc); metadata and signatures (which refer to the
        original tensor indices) are not carried over.
        """
        import flatbuffers

        schema = _schema()
        src = self._sub
        keep_tensors: set[int] = set(inputs) | set(outputs)
        for i in operators:
            op = src.operators[i]
            keep_tensors.update(int(t) for t in op.inputs if t >= 0)
            keep_tensors.update(int(t) for t in op.outputs)
            if op.intermediates is not None:
                keep_tensors.update(int(t) for t in op.intermediates if t >= 0)
        for t in keep_tensors:
            if not 0 <= t < len(self.tensors):
                raise TfLiteModelError(f"{self.source}: tensor index {t} out of range")
        tensor_map = {old: new for new, old in enumerate(sorted(keep_tensors))}

        # Other subgraphs are kept whole and in order (control-flow options refer to them
        # by index); the operator codes and buffers they use must survive the pruning too.
        other_subgraphs = [copy.copy(sg) for sg in self.model.subgraphs[1:]]
        other_ops = [op for sg in other_subgraphs for op in sg.operators or []]
        used_codes = sorted(
            {int(src.operators[i].opcodeIndex) for i in operators}
            | {int(op.opcodeIndex) for op in other_ops}
        )
        code_map = {old: new for new, old in enumerate(used_codes)}

        # Buffers: 0 is the empty sentinel by convention; keep every buffer still referenced.
        used_buffers = {0}
        used_buffers.update(src.tensors[t].buffer for t in keep_tensors)
        for sg in other_subgraphs:
            used_buffers.update(t.buffer for t in sg.tensors or [])
        buffer_map = {old: new for new, old in enumerate(sorted(used_buffers))}
        if any(int(self.model.buffers[b].offset or 0) > 1 for b in used_buffers):
            # Weights stored after the flatbuffer (models > 2 GB): not copied by the object API.
            raise TfLiteModelError(
                f"{self.source}: splitting models with out-of-flatbuffer weight buffers "
                "(offset/size buffers, used by models > 2 GB) is not supported"
            )

        def remap_tensor(t: Any) -> Any:
            nt = copy.copy(t)
            nt.buffer = buffer_map[t.buffer]
            return nt

        def remap_code(op: Any) -> Any:
            nop = copy.copy(op)
            nop.opcodeIndex = code_map[int(op.opcodeIndex)]
            return nop

        sub = schema.SubGraphT()
        sub.name = src.name
        sub.tensors = [remap_tensor(src.tensors[t]) for t in sorted(keep_tensors)]
        sub.inputs = [tensor_map[t] for t in inputs]
        sub.outputs = [tensor_map[t] for t in outputs]
        new_ops = []
        for i in operators:
            op = remap_code(src.operators[i])
            op.inputs = [tensor_map[int(t)] if t >= 0 else -1 for t in op.inputs]
            op.outputs = [tensor_map[int(t)] for t in op.outputs]
            if op.intermediates is not None:
                op.intermediates = [tensor_map[int(t)] for t in op.intermediates if t >= 0]
            new_ops.append(op)
        sub.operators = new_ops
        for sg in other_subgraphs:
            sg.tensors = [remap_tensor(t) for t in sg.tensors or []]
            sg.operators = [remap_code(op) for op in sg.operators or []]

        model = schema.ModelT()
        model.version = self.model.version
        model.description = self.model.description
        model.operatorCodes = [self.model.operatorCodes[c] for c in used_codes]
        model.subgraphs = [sub, *other_subgraphs]
        model.buffers = [self.model.buffers[b] for b in sorted(used_buffers)]
        size = sum(len(b.data) for b in model.buffers if b.data is not None)
        builder = flatbuffers.Builder(size + 65536)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())
