"""ParallelMap: run a stateless body graph once per item of a list, items in parallel.

The data-parallel sibling of BeginLoop/EndLoop (:mod:`facegraph.calculators.loops`)::

    rois ─ITERABLE─▶ ParallelMap(body: face_landmark) ─ITERABLE:0─▶ faces
    image ──CLONE──▶        item → roi, CLONE:0 → image  ─ITERABLE:1─▶ landmark_rois

The list arriving at timestamp T is split over up to ``workers`` copies of the body
graph (each a started :class:`facegraph.Graph` in deterministic mode, driven with
``run_once``): item ``k`` goes to copy ``k % W``. Copy 0 runs on the calling thread, the
others on a small thread pool owned by the node, so a body whose work releases the GIL
(LiteRT's invoke, OpenCV) really runs on several cores within one frame. Copies are
made on first need: a one-item user pays for one copy. Results are gathered in item
order, so the output is the same whatever the threads' timing, and equal to ``workers:
1`` (no thread at all).

**The body must be stateless across items**: any item may run on any copy, and a copy
sees items of different list positions one after another. (A node that keeps state
between calls, a tracker or a smoother, belongs outside the map.)

Outputs: ``ITERABLE:i`` is the list of body output ``outputs[i]``, at T. An item whose
body emits nothing on that output (a gate) is absent from that list; an empty list is
no packet, the bound moving past T instead (EndLoop's rule: "no faces" is "no packet").
The copies run only what the collected outputs need (:func:`trimmed_body`): a body
node whose results feed only uncollected outputs is left out, while nodes that may have
an effect of their own (no outputs, side packets they set, an output nothing reads)
always run.
A body node's error fails this node as the engine's CalculatorError of the inner node,
named under this one, at T: ``node 'landmarks/crop' (ImageToTensor) failed in process
at timestamp T, item 1 of 2: ...`` (one line, as when the body was an inlined subgraph).

With profiling on in the outer graph, the copies profile too and their node timings,
merged, appear in :meth:`facegraph.Graph.stats` as ``{node}/{inner}`` rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from facegraph import (
    Calculator,
    CalculatorContext,
    CalculatorError,
    FacegraphError,
    Graph,
    GraphConfigError,
    GraphSpec,
    Input,
    Output,
    SideInput,
    StrictOptions,
    register,
)
from facegraph.config import load_subgraph
from facegraph.graph_sources import LOAD_CONTEXT_KEY, LoadContext
from facegraph.profiler import NodeStats, TraceSink, merge_stats
from facegraph.timestamp import describe
from facegraph.workers import allowed_cpu_count
from pydantic import Field, PrivateAttr, ValidationInfo, model_validator
from typing_extensions import Self


class ParallelMapOptions(StrictOptions):
    body: str
    """The body graph: a subgraph name (``X.yaml`` next to this graph file, else the shipped
    graph ``X``) or a YAML path relative to this graph file. Must be stateless per item."""
    item: str
    """The body input stream that receives each item."""
    clones: list[str] = Field(default_factory=list)
    """Body input streams fed ``CLONE:0``, ``CLONE:1``, ... (the same value for every item)."""
    outputs: list[str] = Field(min_length=1)
    """Body output streams collected into ``ITERABLE:0``, ``ITERABLE:1``, ..."""
    side_inputs: list[str] = Field(default_factory=list)
    """Body side packets given ``SIDE:0``, ``SIDE:1``, ... (the others keep their defaults)."""
    workers: int | Literal["auto"] = "auto"
    """Body copies run at once: auto = CPUs of this process; 1 = inline, no thread. Never
    more than the list has items."""

    _spec: GraphSpec | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _load_body(self, info: ValidationInfo) -> Self:
        if isinstance(self.workers, int) and self.workers < 1:
            raise ValueError(f"workers must be 'auto' or at least 1, got {self.workers}")
        where = (info.context or {}).get(LOAD_CONTEXT_KEY)
        try:
            spec = load_subgraph(self.body, where if isinstance(where, LoadContext) else None)
        except GraphConfigError as exc:
            first = exc.problems[0] if exc.problems else "invalid"
            more = f" (and {exc.total - 1} more problems)" if exc.total > 1 else ""
            raise ValueError(f"body graph '{self.body}': {first}{more}") from None
        problems = []
        for what, names, known in (
            ("input", [self.item, *self.clones], spec.input_streams),
            ("output", self.outputs, spec.output_streams),
            ("side input", self.side_inputs, tuple(spec.side_inputs)),
        ):
            for name in names:
                if name not in known:
                    problems.append(
                        f"body graph '{spec.name}' has no {what} '{name}' "
                        f"(its {what}s: {', '.join(known) or 'none'})"
                    )
        fed = [self.item, *self.clones]
        if len(set(fed)) != len(fed):
            problems.append(f"item and clones name one body input twice: {', '.join(fed)}")
        if problems:
            raise ValueError("; ".join(problems))
        self._spec = spec
        return self

    @property
    def nested_spec(self) -> GraphSpec:
        """The loaded body graph (:class:`facegraph.spec.NestedGraph`)."""
        assert self._spec is not None  # set by the validator
        return self._spec

    def with_nested_spec(self, spec: GraphSpec) -> ParallelMapOptions:
        """A copy running ``spec`` as the body (what tools rewriting nodes use)."""
        copy = self.model_copy()
        copy._spec = spec
        return copy


def trimmed_body(spec: GraphSpec, outputs: Sequence[str]) -> GraphSpec:
    """``spec`` without the nodes whose results nobody collects.

    A body output the map does not collect is computed for nothing, once per item (the
    face graphs' static mode maps ``face_landmark`` for ``face`` only, and its
    ``landmark_roi`` node would run per face). Kept: every node that feeds a collected
    output, directly or through other nodes, and every node that may have an effect of
    its own (no output streams, like a writer; side packets it sets; or an output
    stream that nothing reads and that is no body output), with what feeds those. The
    body's graph outputs become ``outputs``.
    """
    read = {b.stream for n in spec.nodes for b in n.inputs}
    body_outputs = set(spec.output_streams)
    dangling = {
        b.stream
        for n in spec.nodes
        for b in n.outputs
        if b.stream not in read and b.stream not in body_outputs
    }
    live = set(outputs) | dangling
    kept: set[str] = set()
    changed = True
    while changed:  # a fixed point: a body is a handful of nodes
        changed = False
        for node in spec.nodes:
            if node.name in kept:
                continue
            if not node.outputs or node.side_outputs or any(b.stream in live for b in node.outputs):
                kept.add(node.name)
                live.update(b.stream for b in node.inputs)
                changed = True
    if len(kept) == len(spec.nodes) and tuple(outputs) == spec.output_streams:
        return spec
    return dataclasses.replace(
        spec,
        nodes=tuple(n for n in spec.nodes if n.name in kept),
        output_streams=tuple(outputs),
    )


@dataclass
class _Copy:
    """One started copy of the body graph, used by one thread at a time."""

    graph: Graph
    next_ts: int = 0
    failed: bool = False


@dataclass
class _Chunk:
    """What one copy produced for its items at one T (or where it failed)."""

    results: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    error: tuple[int, BaseException] | None = None


@register("ParallelMap")
class ParallelMap(Calculator[ParallelMapOptions]):
    """Runs a stateless body graph per list item, on several copies in parallel threads.

    ``ITERABLE`` (a list at T) is mapped through the body graph named by ``body``: the
    item feeds body input ``item``, ``CLONE:i`` feeds ``clones[i]`` for every item,
    ``SIDE:i`` sets body side packet ``side_inputs[i]``; ``ITERABLE:i`` is the list of
    body output ``outputs[i]`` in item order (no packet when empty).
    """

    ITERABLE: Input[list[Any]] = Input("ITERABLE", list[Any], doc="the list to map (at T)")
    CLONE: Input[Any] = Input(
        "CLONE", optional=True, multiple=True, doc="values given to every item's body run"
    )
    RESULTS: Output[list[Any]] = Output(
        "ITERABLE", list[Any], multiple=True, doc="one list per body output, at T"
    )
    SIDE: SideInput[Any] = SideInput(
        "SIDE", optional=True, multiple=True, doc="side packets of the body (options.side_inputs)"
    )

    def __init__(self, options: ParallelMapOptions) -> None:
        super().__init__(options)
        self._copies: list[_Copy] = []  # kept after close, for inner_stats
        self._pool: ThreadPoolExecutor | None = None
        self._profile = False
        self._trace: TraceSink | None = None

    def open(self, ctx: CalculatorContext) -> None:
        o = self.options
        for what, port, names in (
            ("CLONE inputs", self.CLONE, o.clones),
            ("ITERABLE outputs", self.RESULTS, o.outputs),
            ("SIDE side inputs", self.SIDE, o.side_inputs),
        ):
            if ctx.count(port) != len(names):
                raise ValueError(
                    f"{ctx.count(port)} {what} connected but the options name {len(names)} "
                    f"({', '.join(names) or 'none'}); connect one per name, in order"
                )
        self._side: dict[str, Any] = {}
        for i, name in enumerate(o.side_inputs):
            value = ctx.side(self.SIDE, i)
            if value is not None:  # not given: the body's own default
                self._side[name] = value
        self._node = ctx.node_name
        self._profile = ctx.profiling
        self._trace = ctx.trace_sink
        self._max_workers = allowed_cpu_count() if o.workers == "auto" else o.workers
        self._body = trimmed_body(o.nested_spec, o.outputs)  # the same for every copy
        # The first copy now, not on the first list: its models load while the graph
        # starts (a run's first frame is not slowed by it), and a body that cannot start
        # fails the graph's start, named ``node/inner`` like a failure of process.
        try:
            self._copies.append(self._new_copy())
        except CalculatorError as exc:
            raise self._named_inner(exc, exc.timestamp) from None

    def process(self, ctx: CalculatorContext) -> None:
        items = ctx.get(self.ITERABLE)
        if items is None:
            return  # no list at T: nothing to map (the bound moves past T)
        if not isinstance(items, (list, tuple)):
            raise TypeError(f"ITERABLE expects a list, got {type(items).__name__}")
        if not items:
            return
        fixed: dict[str, Any] = {}
        for i, name in enumerate(self.options.clones):
            value = ctx.get(self.CLONE, i)
            if value is not None:  # absent at T: the body sees no packet there either
                fixed[name] = value
        workers = min(self._max_workers, len(items))
        while len(self._copies) < workers:
            self._copies.append(self._new_copy())
        futures: list[Future[_Chunk]] = []
        if workers > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._max_workers - 1, thread_name_prefix=f"{self._node}/map"
                )
            futures = [
                self._pool.submit(self._run_chunk, self._copies[w], items, w, workers, fixed)
                for w in range(1, workers)
            ]
        chunks = [self._run_chunk(self._copies[0], items, 0, workers, fixed)]
        chunks += [f.result() for f in futures]  # every thread is done before we go on
        errors = sorted((c.error for c in chunks if c.error is not None), key=lambda e: e[0])
        if errors:
            raise self._body_error(*errors[0], len(items), ctx.timestamp)
        by_item = sorted((r for c in chunks for r in c.results), key=lambda r: r[0])
        for i, name in enumerate(self.options.outputs):
            values = [outs[name] for _, outs in by_item if name in outs]
            if values:
                ctx.emit(self.RESULTS, values, i)

    def _new_copy(self) -> _Copy:
        graph = Graph(self._body, mode="deterministic", profile=self._profile, trace=self._trace)
        graph.start(self._side)
        return _Copy(graph)

    def _run_chunk(
        self, copy: _Copy, items: Sequence[Any], first: int, step: int, fixed: dict[str, Any]
    ) -> _Chunk:
        """Items ``first, first + step, ...`` through one copy, stopping at the first error."""
        chunk = _Chunk()
        for k in range(first, len(items), step):
            try:
                inputs = {self.options.item: items[k], **fixed}
                chunk.results.append((k, copy.graph.run_once(inputs, copy.next_ts)))
                copy.next_ts += 1
            except Exception as exc:
                copy.failed = True
                chunk.error = (k, exc)
                break
        return chunk

    def _body_error(self, k: int, exc: BaseException, n: int, ts: int) -> FacegraphError:
        """The body's failure as this node's: ``node 'landmarks/crop' (...) failed in
        process at timestamp T, item k of n: ...`` (the engine keeps such an error as is)."""
        at = f"{describe(ts)}, item {k} of {n}"
        if isinstance(exc, CalculatorError):
            return self._named_inner(exc, at)
        error = FacegraphError(
            f"body graph '{self.options.nested_spec.name}' failed at {at}: "
            f"{type(exc).__name__}: {exc}"
        )
        error.__cause__ = exc  # the inner traceback stays in the report
        return error

    def _named_inner(self, exc: CalculatorError, at: str) -> CalculatorError:
        """A body node's error as this node's inner node ``node/inner``, at ``at``."""
        return CalculatorError(
            f"{self._node}/{exc.node}",
            exc.calculator,
            exc.phase,
            at,
            exc.original,
            exc.traceback_text,
        )

    def close(self, ctx: CalculatorContext) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        first: BaseException | None = None
        for copy in self._copies:
            try:
                if copy.failed:
                    copy.graph.cancel()  # its error was reported by process
                else:
                    copy.graph.close_all_inputs()
                    copy.graph.wait_until_done()
            except Exception as exc:  # close every copy, then report the first failure
                first = first or exc
        if first is not None:
            raise first

    def inner_stats(self) -> Sequence[NodeStats]:
        if not self._profile or not self._copies:
            return ()
        return merge_stats([c.graph.stats() for c in self._copies], inside=self._node)


__all__ = ["ParallelMap", "ParallelMapOptions", "trimmed_body"]
