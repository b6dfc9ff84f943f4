"""Running a ``.tflite`` model with LiteRT, including models with custom ops.

    from facegraph.models.inference import TfLiteModel

    model = TfLiteModel("face_landmark_with_attention.tflite", threads=2)
    model.input_details    # (TensorDetails(name='input_1', shape=(1, 192, 192, 3), ...),)
    out = model.run(crop)  # {'output_mesh_identity': array(...), ..., 'conv_faceflag': ...}

A model without custom ops runs as one plain LiteRT interpreter. A model whose custom
ops all have built-in *lowerings* (:mod:`facegraph.models.lowering`: MediaPipe's three
Attention Mesh ops) is rewritten into such a model (cached beside the original) and runs
as one interpreter too. Any other model with custom ops (or ``custom_ops="split"``)
is split at them (:mod:`facegraph.models.tflite_graph`): runs of built-in ops become
LiteRT sub-models, each custom op is computed by a kernel from
:mod:`facegraph.models.custom_ops`, in dependency order, behind the same interface.

LiteRT's default op resolver applies the XNNPACK delegate (``OpResolverType.AUTO``; a
DELEGATE node in the execution plan, see :attr:`StepInfo.delegated`); ``threads`` sets
the interpreter's and XNNPACK's thread-pool size (``threads=N`` starts N−1 workers).
``threads="auto"`` keeps a one-thread and a two-thread interpreter and runs whichever is
faster under the machine's current load (:mod:`facegraph.models.thread_choice`).
Segments made only of RESHAPE/SQUEEZE/EXPAND_DIMS run as numpy reshapes (free views).

Memory rules kept here: ``set_tensor`` copies each input once into the interpreter (the
unavoidable copy); sub-model outputs that feed later steps are read as views
(``Interpreter.tensor``) and released before the next ``run``, since LiteRT refuses to
invoke while a view of its buffers is alive and views are invalidated by ``invoke``.
Returned outputs are always fresh arrays the caller owns.

A :class:`TfLiteModel` is not thread-safe: use one per thread (or per graph node).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from facegraph.workers import allowed_cpu_count

from . import custom_ops as _custom_ops
from . import lowering as _lowering
from . import reuse as _reuse
from .tflite_graph import (
    CustomStep,
    Segment,
    TensorInfo,
    TfLiteGraph,
    TfLiteModelError,
)
from .thread_choice import ThreadChooser, Threads, auto_thread_count, check_threads
from .uint8_input import check_value_range
from .worker_affinity import OverlapRecord, WorkerAffinity, new_worker_threads, wrap_invoke

__all__ = ["StepInfo", "TensorDetails", "TfLiteModel", "TfLiteModelError"]


@dataclass(frozen=True, slots=True)
class TensorDetails:
    """Name, shape and dtype of one model input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


@dataclass(frozen=True, slots=True)
class StepInfo:
    """One step of a model's execution plan (for timing breakdowns)."""

    #: ``"reshape"``: a segment of shape-only ops (RESHAPE, SQUEEZE, EXPAND_DIMS) done as
    #: numpy reshapes rather than by a LiteRT call.
    kind: Literal["litert", "custom", "reshape"]
    #: ``"litert[0] 186 ops"``, ``"Landmarks2TransformMatrix#192"`` or ``"reshape 5 ops"``.
    name: str
    #: For LiteRT steps: whether a delegate (XNNPACK) took over (part of) the graph.
    delegated: bool = False


class _LiteRtStep:
    __slots__ = (
        "_delegated",
        "feeds",
        "fetches",
        "interpreter",
        "invoke",
        "name",
        "output_indices",
        "set_tensor",
    )

    def __init__(
        self,
        content: bytes,
        inputs: Sequence[int],
        outputs: Sequence[int],
        threads: int,
        *,
        xnnpack: bool = True,
        overlaps: OverlapRecord | None = None,
    ) -> None:
        self.name = ""  # set by the model for messages
        with new_worker_threads(threads - 1 if xnnpack else 0) as workers:
            self.interpreter = _make_interpreter(content, threads, xnnpack=xnnpack)
        in_details = self.interpreter.get_input_details()
        out_details = self.interpreter.get_output_details()
        # The sub-model's I/O order is the order we gave it when cutting.
        self.feeds = [(t, d["index"]) for t, d in zip(inputs, in_details, strict=True)]
        # Holding the callable from tensor() is safe; holding the array it returns is not.
        self.fetches = [
            (t, self.interpreter.tensor(d["index"]))
            for t, d in zip(outputs, out_details, strict=True)
        ]
        self.output_indices = [d["index"] for d in out_details]
        self._delegated: bool | None = None
        self.set_tensor = self.interpreter.set_tensor
        # Workers kept off the invoking thread's CPU (worker_affinity: some kernels pack a
        # woken worker onto it, and two threads then run slower than one). ``overlaps``:
        # the model's record, shared by all its interpreters.
        self.invoke = wrap_invoke(self.interpreter.invoke, WorkerAffinity(workers, overlaps))

    @property
    def delegated(self) -> bool:
        """Whether XNNPACK took part of the graph; asked once, on first use (reading the
        execution plan costs ~4 ms, and an "auto" model's second arm never needs it)."""
        if self._delegated is None:
            self._delegated = _has_delegate(self.interpreter)
        return self._delegated


class _CustomStep:
    __slots__ = ("info", "inputs", "kernel", "outputs")

    def __init__(self, info: _custom_ops.CustomOp, kernel: Callable[..., Any]) -> None:
        self.info = info
        self.kernel = kernel
        self.inputs = [t.index for t in info.inputs]
        self.outputs = [(t.index, t.shape, t.dtype) for t in info.outputs]


class _ReshapeStep:
    __slots__ = ("moves",)

    def __init__(self, moves: list[tuple[int, int, tuple[int, ...]]]) -> None:
        self.moves = moves  # (input tensor, output tensor, output shape)


#: Builtin ops that only relabel the shape of their first input (RESHAPE, SQUEEZE,
#: EXPAND_DIMS). A segment made only of these costs more as a LiteRT call (copies in and
#: out, invoke) than as numpy reshapes, which are free views.
_SHAPE_ONLY_OPS = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS"})


def _as_reshapes(graph: TfLiteGraph, segment: Segment) -> _ReshapeStep | None:
    moves = []
    for i in segment.operators:
        op = graph.operators[i]
        if op.name not in _SHAPE_ONLY_OPS or len(op.outputs) != 1:
            return None
        src, dst = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        if src.is_constant or src.dtype != dst.dtype or not dst.shape or -1 in dst.shape:
            return None
        if int(np.prod(src.shape)) != int(np.prod(dst.shape)):
            return None
        moves.append((src.index, dst.index, dst.shape))
    return _ReshapeStep(moves)


def _has_delegate(interp: Any) -> bool:
    # A delegate shows up as a DELEGATE node in the execution plan (private but stable API).
    try:
        return any(d.get("op_name") == "DELEGATE" for d in interp._get_ops_details())
    except Exception:  # pragma: no cover - depends on the LiteRT build
        return False


#: What LiteRT's C++ logger prints on every interpreter with the XNNPACK delegate; it is
#: dropped, anything else it prints meanwhile is passed on to stderr.
_LITERT_NOISE = (b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)
_stderr_lock = threading.Lock()


def _flush_python_stderr() -> None:
    with contextlib.suppress(Exception):  # sys.stderr may be None or a closed capture
        sys.stderr.flush()


@contextlib.contextmanager
def _quiet_litert_stderr() -> Iterator[None]:
    """Run the block with file descriptor 2 going to a temporary file, then pass on every
    line except LiteRT's known INFO notice.

    LiteRT logs from C++ straight to fd 2 (no Python logging, no documented switch in the
    wheel), so the only place to silence that one line is around the call that prints it.
    Lines written by other threads meanwhile are kept, only later.
    """
    stderr_fd = 2  # the C++ side writes here, whatever sys.stderr is
    try:
        saved = os.dup(stderr_fd)
    except OSError:  # no fd 2 at all (a daemon): nothing to silence
        yield
        return
    os.close(saved)
    with _stderr_lock, tempfile.TemporaryFile() as sink:
        _flush_python_stderr()
        saved = os.dup(stderr_fd)
        try:
            os.dup2(sink.fileno(), stderr_fd)
            try:
                yield
            finally:
                _flush_python_stderr()
                os.dup2(saved, stderr_fd)
        finally:
            os.close(saved)
        sink.seek(0)
        kept = [
            line
            for line in sink.read().splitlines(keepends=True)
            if line.rstrip() not in _LITERT_NOISE
        ]
        if kept:
            os.write(stderr_fd, b"".join(kept))


def _make_interpreter(content: bytes, threads: int, *, xnnpack: bool = True) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # OpResolverType.AUTO (the default) = built-in kernels + the default XNNPACK delegate,
    # which LiteRT creates with `num_threads` threads.
    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with _quiet_litert_stderr():
        interp = Interpreter(
            model_content=content, num_threads=threads, experimental_op_resolver_type=resolver
        )
        interp.allocate_tensors()
    return interp


class TfLiteModel:
    """A ``.tflite`` model ready to run; inputs and outputs addressed by tensor name."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        threads: Threads = 1,
        custom_ops: Literal["lower", "split"] = "lower",
        uint8_input: tuple[float, float] | None = None,
    ) -> None:
        """``uint8_input=(lo, hi)``: the model's float input takes uint8 pixels instead,
        mapped onto [lo, hi] inside the model (:mod:`facegraph.models.uint8_input`): feed
        the crop's pixels, not ``pixels * scale + offset``; the outputs are the same."""
        check_threads(threads)
        if custom_ops not in ("lower", "split"):
            raise ValueError(f"custom_ops must be 'lower' or 'split', got {custom_ops!r}")
        uint8_input = check_value_range(uint8_input)
        self.path = Path(path)
        self.threads = threads
        #: The value range uint8 input pixels are mapped onto, or None (float input).
        self.uint8_input = uint8_input
        # Reuse pools hold default-built models only.
        variant = (threads, uint8_input)
        donor = _reuse.claim(self.path, variant) if custom_ops == "lower" else None
        if donor is not None:
            # Reuse enabled (batch workers) and an earlier, finished run loaded this model.
            self.__dict__.update(donor.__dict__)
            return
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise TfLiteModelError(f"cannot read model file {self.path}: {exc.strerror}") from exc
        # A lowered form cached earlier needs no parse of the original (~0.2 s for the
        # Attention Mesh model): its I/O is read from the lowered flatbuffer directly.
        lowered = (
            _lowering.cached_lowered_bytes(self.path, data, uint8_input)
            if custom_ops == "lower"
            else None
        )
        graph: TfLiteGraph | None = None
        customs: list[Any] = []
        if lowered is None:
            graph = TfLiteGraph(data, source=str(self.path))
            for k, sg in enumerate(graph.model.subgraphs[1:], start=1):
                for op in sg.operators or []:
                    code = graph.model.operatorCodes[op.opcodeIndex]
                    if max(code.builtinCode, code.deprecatedBuiltinCode) == 32:
                        raise TfLiteModelError(
                            f"{graph.source}: custom op '{code.customCode.decode()}' inside "
                            f"subgraph {k} (a control-flow body) is not supported"
                        )
            customs = graph.custom_operators()
            if customs and custom_ops == "lower":
                lowered = _lowering.lowered_model_bytes(self.path, data, graph, uint8_input)
            if lowered is None and uint8_input is not None:
                # Not lowered (no custom ops, or split): the input op is added in memory
                # (~13 ms for BlazeFace) and the result is what runs, or is split. Only a
                # split needs it parsed again; a plain model's I/O is read from the
                # flatbuffer directly, as a lowered one's (a parse costs ~14 ms more).
                data = _lowering.rewrite_model(graph, lower=False, uint8_input=uint8_input)
                graph = TfLiteGraph(data, source=str(self.path)) if customs else None
                customs = [] if graph is None else graph.custom_operators()
        #: True when custom ops were rewritten as built-in ops (one interpreter).
        self.is_lowered = lowered is not None
        self.is_split = bool(customs) and not self.is_lowered
        self._constants: dict[int, np.ndarray] = {}
        self._steps: list[_LiteRtStep | _CustomStep | _ReshapeStep] = []
        step_infos: list[StepInfo] = []
        # What runs (or is split): the lowered bytes, else the file's (or its uint8 form).
        content = lowered if lowered is not None else data
        if lowered is not None or graph is None:
            inputs, outputs, n_ops = _flat_io(content, str(self.path))
        else:
            inputs = [(_details(graph.tensors[i]), i) for i in graph.inputs]
            outputs = [(_details(graph.tensors[i]), i) for i in graph.outputs]
            n_ops = len(graph.operators)
        self.input_details: tuple[TensorDetails, ...] = tuple(d for d, _ in inputs)
        self.output_details: tuple[TensorDetails, ...] = tuple(d for d, _ in outputs)
        self._inputs = inputs
        self._outputs = [(d.name, i) for d, i in outputs]
        self._by_name = {d.name: d for d in self.input_details}
        self._tensor_names = {} if graph is None else {t.index: t.name for t in graph.tensors}
        # "auto" on a split model: one thread (its Python kernels leave little to share).
        fixed = 1 if threads == "auto" else threads
        #: With ``threads="auto"``: the interpreters (one per thread count) and the
        #: chooser between them; see :mod:`facegraph.models.thread_choice`.
        self._arms: list[_LiteRtStep] = []
        self._chooser: ThreadChooser | None = None
        self._one_thread_beside = False
        # One record per model, shared by all its interpreters (see worker_affinity).
        overlaps = self._overlaps = OverlapRecord()
        if not self.is_split:
            what = "the model with its custom ops lowered" if lowered is not None else "it"
            counts = [1, auto_thread_count()] if threads == "auto" else [fixed]
            try:
                for n in dict.fromkeys(counts):
                    self._arms.append(
                        _LiteRtStep(
                            content,
                            [i for _, i in inputs],
                            [i for _, i in outputs],
                            n,
                            overlaps=overlaps,
                        )
                    )
            except (RuntimeError, ValueError) as exc:
                raise TfLiteModelError(f"{self.path}: LiteRT cannot load {what}: {exc}") from exc
            if len(self._arms) > 1:
                if _same_outputs(self._arms, self.input_details):
                    self._chooser = ThreadChooser(list(dict.fromkeys(counts)))
                    # While this model's invokes overlap another's (faces side by side),
                    # one thread, when the CPUs cannot hold every overlapping invoke's
                    # threads: on two CPUs, two faces' invokes already fill both, and a
                    # face that also tried two threads slowed the other more than it
                    # gained (two faces side by side at 960x540, this rule on against
                    # off: 0.87-1.00x per frame, ten runs). The arm is not chosen per call
                    # there, and its time is not counted: it says nothing about running
                    # alone.
                    self._one_thread_beside = allowed_cpu_count() < 2 * counts[-1]
                else:  # results must not depend on the load: one thread only
                    del self._arms[1:]
            step = self._arms[0]
            step.name = f"litert[0] {n_ops} ops" + (
                " (custom ops lowered to built-ins)" if lowered is not None else ""
            )
            for arm in self._arms[1:]:
                arm.name = step.name
            self._steps.append(step)
            step_infos.append(StepInfo("litert", step.name, step.delegated))
        else:
            assert graph is not None
            kernels = _bind_kernels(graph, customs)
            plan = graph.plan_split()
            if plan.folded:
                self._constants.update(_fold_constants(graph, plan.folded, fixed))
            n_lite = 0
            for s in plan.steps:
                if isinstance(s, Segment) and (reshapes := _as_reshapes(graph, s)):
                    self._steps.append(reshapes)
                    step_infos.append(StepInfo("reshape", f"reshape {len(s.operators)} ops"))
                elif isinstance(s, Segment):
                    content = graph.extract(s.operators, s.inputs, s.outputs)
                    try:
                        lite = _LiteRtStep(content, s.inputs, s.outputs, fixed, overlaps=overlaps)
                    except (RuntimeError, ValueError) as exc:
                        raise TfLiteModelError(
                            f"{graph.source}: LiteRT rejected sub-model {n_lite} "
                            f"({len(s.operators)} ops, operators {s.operators[0]}.."
                            f"{s.operators[-1]}): {exc}"
                        ) from exc
                    lite.name = f"litert[{n_lite}] {len(s.operators)} ops"
                    self._steps.append(lite)
                    step_infos.append(StepInfo("litert", lite.name, lite.delegated))
                    n_lite += 1
                else:
                    assert isinstance(s, CustomStep)
                    info, kernel = kernels[s.operator]
                    self._steps.append(_CustomStep(info, kernel))
                    step_infos.append(StepInfo("custom", f"{info.name}#{info.index}"))
            # Constant tensors read directly by custom ops (weights in the file).
            for op in customs:
                for t in op.inputs:
                    if t >= 0 and graph.tensors[t].is_constant:
                        self._constants[t] = graph.constant(t)
        self.steps: tuple[StepInfo, ...] = tuple(step_infos)
        first = self._steps[0]
        self._plain = first if not self.is_split and isinstance(first, _LiteRtStep) else None
        if custom_ops == "lower":
            _reuse.offer(self.path, variant, self)

    def __repr__(self) -> str:
        kind = (
            f"split into {len(self.steps)} steps"
            if self.is_split
            else "custom ops lowered"
            if self.is_lowered
            else "plain"
        )
        return f"TfLiteModel({str(self.path)!r}, threads={self.threads}, {kind})"

    @property
    def thread_runs(self) -> dict[int, int]:
        """With ``threads="auto"``: runs so far per thread count, how often each
        interpreter was chosen (``{1: 40, 2: 960}``). Empty for a fixed count."""
        return {} if self._chooser is None else self._chooser.runs

    @property
    def input_names(self) -> list[str]:
        return [d.name for d in self.input_details]

    @property
    def output_names(self) -> list[str]:
        return [d.name for d in self.output_details]

    def run(
        self,
        inputs: Mapping[str, np.ndarray] | np.ndarray,
        *,
        timings: list[float] | None = None,
    ) -> dict[str, np.ndarray]:
        """Run the model; returns ``{output name: array}`` in the model's output order.

        ``inputs`` maps input names to arrays, or is a single array for a one-input model.
        An array may omit a leading batch dimension of 1; any float array is accepted for
        a float32 input. If ``timings`` is given, the seconds spent in each step of
        :attr:`steps` are appended to it (for LiteRT steps: the ``invoke`` call alone).
        """
        fed = self._prepare_inputs(inputs)
        plain = self._plain
        if plain is not None:
            chooser = self._chooser
            arm = 0
            if chooser is not None:
                if self._one_thread_beside and self._overlaps.recent():
                    chooser.record_untimed(0)  # the one-thread arm (see __init__)
                    chooser = None
                else:
                    arm = chooser.pick()
                plain = self._arms[arm]
            for (_, interp_index), value in zip(plain.feeds, fed, strict=True):
                plain.set_tensor(interp_index, value)
            t0 = time.perf_counter()
            try:
                plain.invoke()
            except (RuntimeError, ValueError) as exc:
                raise TfLiteModelError(f"{self.path.name}: LiteRT failed: {exc}") from exc
            seconds = time.perf_counter() - t0
            if chooser is not None:
                chooser.record(arm, seconds)
            if timings is not None:
                timings.append(seconds)
            get = plain.interpreter.get_tensor  # a copy the caller owns
            return {
                name: get(idx)
                for (name, _), idx in zip(self._outputs, plain.output_indices, strict=True)
            }
        return self._run_split(fed, timings)

    def _run_split(
        self, fed: list[np.ndarray], timings: list[float] | None
    ) -> dict[str, np.ndarray]:
        values: dict[int, np.ndarray] = dict(self._constants)
        for (_, index), value in zip(self._inputs, fed, strict=True):
            values[index] = value
        perf = time.perf_counter
        for step in self._steps:
            if isinstance(step, _LiteRtStep):
                for t, idx in step.feeds:
                    step.set_tensor(idx, values[t])
                t0 = perf()
                try:
                    step.invoke()
                except (RuntimeError, ValueError) as exc:
                    raise TfLiteModelError(
                        f"{self.path.name}: LiteRT failed in sub-model {step.name}: {exc}"
                    ) from exc
                if timings is not None:
                    timings.append(perf() - t0)
                for t, view in step.fetches:
                    values[t] = view()
            elif isinstance(step, _CustomStep):
                t0 = perf()
                try:
                    result = step.kernel(*[values[t] for t in step.inputs])
                except Exception as exc:
                    raise step.info.error(f"kernel failed: {type(exc).__name__}: {exc}") from exc
                if timings is not None:
                    timings.append(perf() - t0)
                if isinstance(result, np.ndarray):
                    result = (result,)
                if len(result) != len(step.outputs):
                    raise step.info.error(
                        f"kernel returned {len(result)} array(s) for {len(step.outputs)} output(s)"
                    )
                for (t, shape, dtype), arr in zip(step.outputs, result, strict=True):
                    if not isinstance(arr, np.ndarray) or arr.shape != shape or arr.dtype != dtype:
                        got = (
                            f"{arr.dtype}{list(arr.shape)}"
                            if isinstance(arr, np.ndarray)
                            else type(arr).__name__
                        )
                        raise step.info.error(
                            f"kernel returned {got} for output "
                            f"'{self._tensor_names[t]}' declared as {dtype}{list(shape)}"
                        )
                    values[t] = arr
            else:
                t0 = perf()
                for src, dst, shape in step.moves:
                    values[dst] = values[src].reshape(shape)
                if timings is not None:
                    timings.append(perf() - t0)
        # Copy: the views die with `values`, and the caller must own what it gets.
        out = {name: np.array(values[t], copy=True) for name, t in self._outputs}
        values.clear()
        return out

    def _prepare_inputs(self, inputs: Mapping[str, np.ndarray] | np.ndarray) -> list[np.ndarray]:
        if isinstance(inputs, np.ndarray):
            if len(self.input_details) != 1:
                raise TfLiteModelError(
                    f"{self.path.name} has {len(self.input_details)} inputs "
                    f"({', '.join(self.input_names)}); pass a dict name -> array"
                )
            inputs = {self.input_details[0].name: inputs}
        unknown = [k for k in inputs if k not in self._by_name]
        if unknown:
            raise TfLiteModelError(
                f"{self.path.name}: unknown input(s) {unknown}; inputs are {self.input_names}"
            )
        fed: list[np.ndarray] = []
        for details, _ in self._inputs:
            if details.name not in inputs:
                raise TfLiteModelError(f"{self.path.name}: missing input '{details.name}'")
            fed.append(_conform(self.path.name, details, inputs[details.name], self.uint8_input))
        return fed


def _same_outputs(arms: Sequence[_LiteRtStep], inputs: Sequence[TensorDetails]) -> bool:
    """Whether every interpreter in ``arms`` gives the same bits on one random input."""
    rng = np.random.default_rng(0)
    values = [
        rng.uniform(0.0, 1.0, d.shape).astype(d.dtype)
        if np.issubdtype(d.dtype, np.floating)
        else rng.integers(0, 256, d.shape).astype(d.dtype)
        if d.dtype == np.uint8  # pixels (uint8_input)
        else np.zeros(d.shape, d.dtype)
        for d in inputs
    ]
    results = []
    for arm in arms:
        for (_, index), value in zip(arm.feeds, values, strict=True):
            arm.set_tensor(index, value)
        arm.invoke()
        results.append([arm.interpreter.get_tensor(i) for i in arm.output_indices])
    first = results[0]
    return all(
        a.shape == b.shape and a.tobytes() == b.tobytes()
        for other in results[1:]
        for a, b in zip(first, other, strict=True)
    )


def _flat_io(
    content: bytes, source: str
) -> tuple[list[tuple[TensorDetails, int]], list[tuple[TensorDetails, int]], int]:
    """(inputs, outputs, operator count) of a model's main subgraph, read with the flat
    (zero-copy) flatbuffer API: no unpacking of weights or operators."""
    from ai_edge_litert import schema_py_generated as schema

    from .tflite_graph import _NUMPY_DTYPES

    sub = schema.Model.GetRootAs(content, 0).Subgraphs(0)

    def details(i: int) -> tuple[TensorDetails, int]:
        t = sub.Tensors(i)
        dtype = _NUMPY_DTYPES.get(int(t.Type()))
        if dtype is None:
            raise TfLiteModelError(f"{source}: I/O tensor {i} has unsupported type {t.Type()}")
        name = (t.Name() or b"").decode("utf-8", "replace") or f"tensor_{i}"
        return TensorDetails(name, tuple(int(d) for d in t.ShapeAsNumpy()), dtype), i

    inputs = [details(int(i)) for i in sub.InputsAsNumpy()]
    outputs = [details(int(i)) for i in sub.OutputsAsNumpy()]
    return inputs, outputs, sub.OperatorsLength()


def _details(info: TensorInfo) -> TensorDetails:
    return TensorDetails(info.name, info.shape, info.dtype)


def _conform(
    model: str, details: TensorDetails, value: Any, uint8_input: tuple[float, float] | None
) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype != details.dtype:
        if details.dtype.kind == "f" and arr.dtype.kind == "f":
            arr = arr.astype(details.dtype)
        else:
            hint = ""
            if uint8_input is not None:
                lo, hi = uint8_input
                hint = (
                    f" (loaded with uint8_input [{lo:g}, {hi:g}], it takes the crop's pixels: "
                    "ImageToTensor output_type: uint8)"
                )
            elif arr.dtype == np.uint8 and details.dtype.kind == "f":
                hint = " (for uint8 pixels, give the model node uint8_input: [min, max])"
            raise TfLiteModelError(
                f"{model}: input '{details.name}' expects {details.dtype}"
                f"{list(details.shape)}, got {arr.dtype}{list(arr.shape)}{hint}"
            )
    if arr.shape != details.shape:
        if details.shape[:1] == (1,) and arr.shape == details.shape[1:]:
            arr = arr.reshape(details.shape)
        else:
            raise TfLiteModelError(
                f"{model}: input '{details.name}' expects shape {list(details.shape)}, "
                f"got {list(arr.shape)}"
            )
    return np.ascontiguousarray(arr)


def _bind_kernels(
    graph: TfLiteGraph, customs: Sequence[Any]
) -> dict[int, tuple[_custom_ops.CustomOp, Callable[..., Any]]]:
    missing: list[str] = []
    bound: dict[int, tuple[_custom_ops.CustomOp, Callable[..., Any]]] = {}
    for op in customs:
        try:
            options = _custom_ops.decode_options(op.custom_options)
        except Exception as exc:
            raise TfLiteModelError(
                f"{graph.source}: custom op '{op.name}' (operator #{op.index}): cannot decode "
                f"its custom_options as a flexbuffer: {exc}"
            ) from exc
        info = _custom_ops.CustomOp(
            name=op.name,
            version=op.version,
            index=op.index,
            options=options,
            inputs=tuple(graph.tensors[t] for t in op.inputs if t >= 0),
            outputs=tuple(graph.tensors[t] for t in op.outputs),
            model=graph.source,
        )
        factory = _custom_ops.find_kernel(op.name, op.version)
        if factory is None:
            ins = ", ".join(t.describe() for t in info.inputs) or "-"
            outs = ", ".join(t.describe() for t in info.outputs) or "-"
            opts = f"\n      options: {options}" if options else ""
            missing.append(
                f"  - '{op.name}' version {op.version} (operator #{op.index})\n"
                f"      inputs:  {ins}\n      outputs: {outs}{opts}"
            )
            continue
        try:
            kernel = factory(info)
        except _custom_ops.CustomOpError:
            raise
        except Exception as exc:
            raise info.error(f"kernel factory failed: {type(exc).__name__}: {exc}") from exc
        bound[op.index] = (info, kernel)
    if missing:
        first = next(op for op in customs if op.index not in bound)
        raise _custom_ops.CustomOpError(
            f"{graph.source}: no kernel registered for {len(missing)} custom op(s):\n"
            + "\n".join(missing)
            + "\nRegister a numpy kernel before loading the model, e.g.:\n\n"
            "    from facegraph.models.custom_ops import CustomOp, register_custom_op\n\n"
            f'    @register_custom_op("{first.name}", version={first.version})\n'
            "    def my_kernel(op: CustomOp):      # once per op, at load: op.options, shapes\n"
            "        def run(*inputs):             # per inference: numpy arrays in\n"
            "            return ...                # one array per output (tuple if several)\n"
            "        return run\n"
        )
    return bound


def _fold_constants(
    graph: TfLiteGraph, tensors: Sequence[int], threads: int
) -> dict[int, np.ndarray]:
    ops = graph.static_producers(tensors)
    content = graph.extract(ops, [], list(tensors))
    # Run once, on the built-in kernels: XNNPACK refuses a graph whose outputs depend on
    # static data only ("failed to setup XNNPACK runtime").
    step = _LiteRtStep(content, [], list(tensors), threads, xnnpack=False)
    step.invoke()
    return {t: np.array(view(), copy=True) for t, view in step.fetches}
