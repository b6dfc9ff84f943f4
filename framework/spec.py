"""The resolved graph: what the scheduler runs.

``facegraph.config`` turns YAML into a :class:`GraphSpec` (subgraphs inlined,
calculator names resolved, options validated, every check passed). The
scheduler only ever sees a ``GraphSpec``; tests may also build one directly.
Each element keeps the file and line it came from, for runtime messages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from .calculator import Calculator, InputPolicy
from .side_packets import SideInputRule

DEFAULT_EXECUTOR = "default"
DEFAULT_MAX_QUEUE_SIZE = 100


@dataclass(frozen=True, slots=True)
class StreamBinding:
    """One connection of a node port (``tag``, ``index``) to a named stream."""

    tag: str
    index: int
    stream: str
    #: Inputs only: this edge closes a loop (not followed when ordering the graph).
    back_edge: bool = False
    #: Inputs only: keep at most the newest N packets; older ones are dropped (live sources).
    keep_latest: int | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class SideBinding:
    """One connection of a node side-packet port to a named side packet."""

    tag: str
    index: int
    name: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A node of the resolved graph."""

    name: str
    calculator_name: str
    calculator: type[Calculator]
    options: BaseModel
    inputs: tuple[StreamBinding, ...] = ()
    outputs: tuple[StreamBinding, ...] = ()
    side_inputs: tuple[SideBinding, ...] = ()
    side_outputs: tuple[SideBinding, ...] = ()
    input_policy: InputPolicy = "sync"
    executor: str = DEFAULT_EXECUTOR
    file: str | None = None
    line: int | None = None

    def where(self) -> str:
        """``file:line`` of the node's YAML, or its name alone."""
        if self.file is None:
            return f"node '{self.name}'"
        suffix = f":{self.line}" if self.line is not None else ""
        return f"{self.file}{suffix} (node '{self.name}')"


@dataclass(frozen=True, slots=True)
class SidePacketSpec:
    """A graph-level input side packet."""

    name: str
    default: Any = None
    required: bool = True
    doc: str = ""
    rule: SideInputRule | None = None
    """Accepted type, range and values (checked before the graph starts)."""


@dataclass(frozen=True)
class GraphSpec:
    """A validated graph, ready to run."""

    name: str
    nodes: tuple[NodeSpec, ...]
    input_streams: tuple[str, ...] = ()
    output_streams: tuple[str, ...] = ()
    side_inputs: dict[str, SidePacketSpec] = field(default_factory=dict)
    #: executor name -> thread count
    executors: dict[str, int] = field(default_factory=lambda: {DEFAULT_EXECUTOR: 2})
    #: Bound on every input queue; producers (graph inputs, sources) block when reached.
    max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE
    file: str | None = None

    def node(self, name: str) -> NodeSpec:
        """The node called ``name``; ``outer/inner`` also finds a node of a nested graph
        (ParallelMap's body), by the name its timings have in ``Graph.stats()``."""
        for full, n in walk_nodes(self):
            if full == name:
                return n
        raise KeyError(name)


@runtime_checkable
class NestedGraph(Protocol):
    """Options of a node that runs a graph of its own (ParallelMap's body).

    Tools that read or rewrite a spec's nodes (:func:`walk_nodes`, :func:`map_nodes`)
    reach the nodes of such graphs through it.
    """

    @property
    def nested_spec(self) -> GraphSpec: ...

    def with_nested_spec(self, spec: GraphSpec) -> Any: ...


def walk_nodes(spec: GraphSpec) -> Iterator[tuple[str, NodeSpec]]:
    """Every node with its full name, nested graphs' nodes (``outer/inner``) after theirs."""
    for node in spec.nodes:
        yield node.name, node
        if isinstance(node.options, NestedGraph):
            for name, inner in walk_nodes(node.options.nested_spec):
                yield f"{node.name}/{name}", inner


def map_nodes(spec: GraphSpec, fn: Callable[[NodeSpec], NodeSpec]) -> GraphSpec:
    """A copy of ``spec`` with ``fn`` applied to every node, nested graphs' nodes too."""
    nodes = []
    for node in spec.nodes:
        current = node
        if isinstance(node.options, NestedGraph):
            inner = map_nodes(node.options.nested_spec, fn)
            current = dataclasses.replace(node, options=node.options.with_nested_spec(inner))
        nodes.append(fn(current))
    return dataclasses.replace(spec, nodes=tuple(nodes))
