"""Whole-graph checks on a flattened graph (subgraphs already inlined).

``facegraph.config`` parses each YAML file, checks every node against its
calculator's contract, inlines subgraphs, and hands the result to
:func:`check_graph`, which looks at the graph as a whole: node names,
executors, who produces and who consumes each stream and side packet, port
types across each connection, and cycles versus back edges. Every check
returns problems instead of raising, so that the user sees all of them at once.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .calculator import Calculator, InputPolicy
from .errors import Problem
from .ports import type_name, types_compatible
from .registry import suggest
from .spec import DEFAULT_EXECUTOR, SidePacketSpec


@dataclass
class FlatBinding:
    """One port connection of a node, as parsed (stream or side-packet name)."""

    tag: str
    index: int
    name: str
    back_edge: bool = False
    keep_latest: int | None = None
    line: int | None = None
    #: The declared type of the port (Any when the calculator is unknown).
    port_type: Any = Any

    @property
    def label(self) -> str:
        return self.tag if self.index == 0 else f"{self.tag}:{self.index}"


@dataclass
class FlatNode:
    """A node after parsing and subgraph inlining; ``cls`` is None if it did not resolve."""

    name: str
    calculator_name: str
    cls: type[Calculator] | None
    options: Any
    inputs: list[FlatBinding] = field(default_factory=list)
    outputs: list[FlatBinding] = field(default_factory=list)
    side_inputs: list[FlatBinding] = field(default_factory=list)
    side_outputs: list[FlatBinding] = field(default_factory=list)
    input_policy: InputPolicy = "sync"
    executor: str | None = None
    executor_line: int | None = None
    #: Where ``executor`` was set (the including file, for one inherited from a subgraph node).
    executor_file: str | None = None
    file: str | None = None
    line: int | None = None


@dataclass
class GraphPort:
    """A graph-level input/output stream or input side packet, with its subgraph tag."""

    tag: str
    name: str
    line: int | None = None


@dataclass
class FlatGraph:
    """Everything parsed from a graph file and its subgraphs, before the final checks."""

    name: str
    file: str
    description: str = ""
    inputs: list[GraphPort] = field(default_factory=list)
    outputs: list[GraphPort] = field(default_factory=list)
    side_input_ports: list[GraphPort] = field(default_factory=list)
    side_inputs: dict[str, SidePacketSpec] = field(default_factory=dict)
    executors: dict[str, int] = field(default_factory=dict)
    max_queue_size: int | None = None
    nodes: list[FlatNode] = field(default_factory=list)
    #: Streams / side packets produced by nodes that could not be parsed: they count as
    #: produced (so that one typo does not cascade into "never produced" errors).
    opaque_streams: set[str] = field(default_factory=set)
    opaque_side: set[str] = field(default_factory=set)
    #: Top-level fields that failed validation; checks depending on them are skipped.
    unknown: set[str] = field(default_factory=set)


def check_graph(graph: FlatGraph) -> list[Problem]:
    """All whole-graph problems of ``graph`` (empty when it is valid)."""
    problems: list[Problem] = []
    problems += _check_node_names(graph)
    problems += _check_executors(graph)
    problems += _check_connections(graph, side=False)
    problems += _check_connections(graph, side=True)
    problems += _check_cycles(graph)
    return problems


def _problem(node: FlatNode, message: str, line: int | None = None) -> Problem:
    return Problem(message, node.file, line if line is not None else node.line, node.name)


def _check_node_names(graph: FlatGraph) -> list[Problem]:
    problems: list[Problem] = []
    first: dict[str, FlatNode] = {}
    for node in graph.nodes:
        previous = first.get(node.name)
        if previous is None:
            first[node.name] = node
            continue
        where = f"{previous.file}:{previous.line}" if previous.file else "earlier"
        problems.append(_problem(node, f"duplicate node name '{node.name}' (also used at {where})"))
    return problems


def _check_executors(graph: FlatGraph) -> list[Problem]:
    if "executors" in graph.unknown:
        return []
    known = sorted({DEFAULT_EXECUTOR, *graph.executors})
    problems: list[Problem] = []
    reported: set[tuple[str | None, int | None]] = set()
    for node in graph.nodes:
        if node.executor is None or node.executor in known:
            continue
        file = node.executor_file or node.file
        if (file, node.executor_line) in reported:
            continue  # one executor line inherited by every node of a subgraph
        reported.add((file, node.executor_line))
        problems.append(
            Problem(
                f"unknown executor '{node.executor}'{suggest(node.executor, known)}; "
                f"declared executors: {', '.join(known)}",
                file,
                node.executor_line if node.executor_line is not None else node.line,
                node.name,
            )
        )
    return problems


@dataclass
class _Producer:
    node: FlatNode | None  # None: a graph input
    binding: FlatBinding | None
    line: int | None
    file: str | None

    def describe(self, side: bool) -> str:
        if self.node is None or self.binding is None:
            return "graph input side packet" if side else "graph input"
        kind = "side output" if side else "output"
        return f"node '{self.node.name}' {kind} {self.binding.label}"


def _check_connections(graph: FlatGraph, *, side: bool) -> list[Problem]:
    """Producers and consumers of streams (or side packets) and their types."""
    what = "side packet" if side else "stream"
    port_word = "side input" if side else "input"
    problems: list[Problem] = []
    producers: dict[str, list[_Producer]] = {}
    if side:
        for port in graph.side_input_ports:
            producers.setdefault(port.name, []).append(_Producer(None, None, port.line, graph.file))
        # Synthetic side inputs (defaults of unconnected subgraph side inputs).
        for name in graph.side_inputs:
            producers.setdefault(name, [_Producer(None, None, None, graph.file)])
    else:
        for port in graph.inputs:
            producers.setdefault(port.name, []).append(_Producer(None, None, port.line, graph.file))
    for node in graph.nodes:
        for b in node.side_outputs if side else node.outputs:
            producers.setdefault(b.name, []).append(_Producer(node, b, b.line, node.file))

    for name, makers in producers.items():
        for extra in makers[1:]:
            others = " and ".join(m.describe(side) for m in makers if m is not extra)
            problems.append(
                Problem(
                    f"{what} '{name}' has two producers: {extra.describe(side)} and {others}",
                    extra.file,
                    extra.line,
                    extra.node.name if extra.node else None,
                )
            )

    opaque = graph.opaque_side if side else graph.opaque_streams
    source_unknown = ("side_inputs" if side else "inputs") in graph.unknown
    known_names = sorted(set(producers) | opaque)
    for node in graph.nodes:
        for b in node.side_inputs if side else node.inputs:
            found = producers.get(b.name)
            if not found:
                if b.name in opaque or source_unknown:
                    continue
                hint = (
                    "neither a graph input side packet (side_inputs:) nor any node's side output"
                    if side
                    else "neither a graph input (inputs:) nor any node's output"
                )
                problems.append(
                    _problem(
                        node,
                        f"{what} '{b.name}' ({port_word} {b.label}) is never produced: it is "
                        f"{hint}{suggest(b.name, known_names)}",
                        b.line,
                    )
                )
                continue
            maker = found[0]
            if maker.binding is not None and not types_compatible(
                maker.binding.port_type, b.port_type
            ):
                problems.append(
                    _problem(
                        node,
                        f"type mismatch on {what} '{b.name}': {maker.describe(side)} produces "
                        f"{type_name(maker.binding.port_type)}, but node '{node.name}' "
                        f"{port_word} {b.label} expects "
                        f"{type_name(b.port_type)}",
                        b.line,
                    )
                )

    if not side:
        for port in graph.outputs:
            if port.name in producers or port.name in opaque:
                continue
            problems.append(
                Problem(
                    f"graph output '{port.name}' is not produced by any node"
                    f"{suggest(port.name, known_names)}",
                    graph.file,
                    port.line,
                )
            )
    return problems


def _check_cycles(graph: FlatGraph) -> list[Problem]:
    """Every cycle must contain a back edge; every back edge must close a cycle."""
    producer: dict[str, FlatNode] = {}
    for node in graph.nodes:
        for b in node.outputs:
            producer.setdefault(b.name, node)
    order = {id(node): i for i, node in enumerate(graph.nodes)}
    by_name: dict[str, FlatNode] = {}
    # Node name -> successors: every edge (full), and the edges without back_edge
    # (forward), which remember their bindings, for the hint.
    full: dict[str, set[str]] = {}
    forward: dict[str, dict[str, list[FlatBinding]]] = {}
    for node in graph.nodes:
        by_name.setdefault(node.name, node)
        full.setdefault(node.name, set())
        forward.setdefault(node.name, {})
    for node in graph.nodes:
        for b in node.inputs:
            src = producer.get(b.name)
            if src is None:
                continue
            full[src.name].add(node.name)
            if not b.back_edge:
                forward[src.name].setdefault(node.name, []).append(b)

    problems: list[Problem] = []
    # The standard library sorts the forward edges (each graph load does this); networkx
    # (~0.1 s to import) is loaded only to describe a cycle found. ``forward`` maps each
    # node to its consumers, which graphlib reads as the edges reversed: the same cycles.
    try:
        graphlib.TopologicalSorter(forward).prepare()
    except graphlib.CycleError:
        problems += _cycle_problems(forward, by_name, order)

    graph_inputs = {p.name for p in graph.inputs}
    for node in graph.nodes:
        for b in node.inputs:
            if not b.back_edge:
                continue
            src = producer.get(b.name)
            if src is not None and (src is node or _has_path(full, node.name, src.name)):
                continue
            if src is not None:
                origin = f"produced by node '{src.name}'"
            elif b.name in graph_inputs:
                origin = "a graph input"
            else:
                continue  # not produced at all: reported as such by _check_connections
            problems.append(
                _problem(
                    node,
                    f"input {b.label} (stream '{b.name}') is marked back_edge: true but is not "
                    f"part of any cycle (the stream is {origin}); remove back_edge",
                    b.line,
                )
            )
    return problems


def _has_path(successors: dict[str, set[str]], start: str, goal: str) -> bool:
    """Whether ``goal`` is reachable from ``start`` (or is ``start``)."""
    seen = {start}
    todo = [start]
    while todo:
        name = todo.pop()
        if name == goal:
            return True
        for nxt in successors.get(name, ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def _cycle_problems(
    forward: dict[str, dict[str, list[FlatBinding]]],
    by_name: dict[str, FlatNode],
    order: dict[int, int],
) -> list[Problem]:
    """One problem per cycle of forward edges (strongly connected component)."""
    import networkx as nx  # ~0.1 s to import: only when a graph has a cycle to report

    digraph: Any = nx.DiGraph()
    digraph.add_nodes_from(forward)
    for src, consumers in forward.items():
        for consumer, bindings in consumers.items():
            digraph.add_edge(src, consumer, bindings=bindings)
    problems: list[Problem] = []
    for component in nx.strongly_connected_components(digraph):
        members = [by_name[n] for n in component]
        if len(members) == 1 and not digraph.has_edge(members[0].name, members[0].name):
            continue
        problems.append(_cycle_problem(digraph.subgraph(component), members, order))
    return problems


def _cycle_problem(sub: Any, members: Iterable[FlatNode], order: dict[int, int]) -> Problem:
    """Name one cycle through the file-order-first node and the input to mark."""
    import networkx as nx

    first = min(members, key=lambda n: order[id(n)])
    # A shortest path from each successor of `first` back to `first` closes a cycle.
    best: list[str] | None = None
    for succ in sub.successors(first.name):
        if succ == first.name:
            best = [first.name]
            break
        path = nx.shortest_path(sub, succ, first.name)
        if best is None or len(path) + 1 < len(best):
            best = [first.name, *path[:-1]]
    assert best is not None  # a strongly connected component with >1 node or a self-loop
    cycle = [*best, first.name]
    entering_from = best[-1]
    binding: FlatBinding = sub.edges[entering_from, first.name]["bindings"][0]
    return Problem(
        f"cycle without a back edge: {' -> '.join(cycle)}; mark the input that closes it, "
        f"e.g. node '{first.name}' input {binding.label} (stream '{binding.name}'): "
        f"{{stream: {binding.name}, back_edge: true}}",
        first.file,
        binding.line if binding.line is not None else first.line,
        first.name,
    )
