"""The resolved graph: what the scheduler runs.

``facegraph.config`` turns YAML into a :class:`GraphSpec` (subgraphs inlined,
calculator names resolved, options validated, every check passed). The
scheduler only ever sees a ``GraphSpec``; tests may also build one directly.
Each element keeps the file and line it came from, for runtime messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)
