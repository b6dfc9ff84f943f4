"""Subgraphs: a graph file used as a node, inlined at load time.

``calculator: X``, when ``X`` is not a registered calculator, names a subgraph:
``X.yaml`` next to the including file, else the shipped graph ``X``
(``facegraph.graphs``). A subgraph is an ordinary graph file; its ``inputs``,
``outputs`` and ``side_inputs`` are its ports, with tag ``NAME.upper()`` unless
written ``"TAG:name"``. At load the subgraph is inlined: inner node ``n`` of the
node ``face`` becomes ``face/n``, inner streams and side packets ``face/s``,
except those bound to the node's ports, which take the outer names. An input
``back_edge``/``keep_latest`` on a subgraph port applies to every inner consumer
of that port. A subgraph node's ``executor`` becomes the executor of inner nodes
that do not name one; the subgraph's ``executors`` are added to the graph's
(the including graph wins on a name clash; its ``max_queue_size`` is ignored).
Subgraph inputs and side inputs without default are required; outputs are optional.

An optional subgraph side input that the node leaves unconnected becomes a
graph-level input side packet named ``face/num_faces`` that carries the
subgraph's default (so the runtime supplies it like any other default, and a
caller may still override it by that name).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import Problem
from .graph_file import NodeConfig, unknown_tag
from .graph_sources import SubgraphSource, origin_key
from .named_registry import did_you_mean
from .spec import SidePacketSpec
from .validate import FlatBinding, FlatGraph, FlatNode
from .yaml_lines import LoadedYaml

if TYPE_CHECKING:
    from .graph_loader import GraphLoader

__all__ = ["check_outputs_produced_locally", "inline_subgraph"]


def inline_subgraph(
    loader: GraphLoader,
    graph: FlatGraph,
    cfg: NodeConfig,
    name: str,
    path: tuple[Hashable, ...],
    loaded: LoadedYaml,
    bindings: dict[str, list[FlatBinding]],
    subgraph: SubgraphSource,
    chain: tuple[str, ...],
) -> None:
    file = loaded.file

    def problem(message: str, sub: tuple[Hashable, ...] = (), at: int | None = None) -> None:
        line = at if at is not None else loaded.line((*path, *sub))
        loader.problems.add(Problem(message, file, line, name))

    origin = origin_key(subgraph.file, subgraph.base_dir)
    if origin in chain:
        names = [Path(c).name for c in (*chain, origin)]
        problem(
            f"subgraph '{cfg.calculator}' includes itself: {' -> '.join(names)}",
            ("calculator",),
        )
        return
    if cfg.options:
        problem(
            f"'{cfg.calculator}' is a subgraph; subgraphs take no options (use side inputs)",
            ("options",),
        )
    if cfg.input_policy is not None:
        problem(
            f"'{cfg.calculator}' is a subgraph; set input_policy on its nodes instead",
            ("input_policy",),
        )

    if loader.budget.exceeded:
        return  # reported once where the limit was reached
    inner_loader = loader.child()
    inner = inner_loader.load(subgraph.text, subgraph.file, subgraph.base_dir, (*chain, origin))
    # Problems inside the subgraph keep its file and line and name the outer node.
    for p in inner_loader.problems:
        node_name = f"{name}/{p.node}" if p.node else name
        loader.problems.add(Problem(p.message, p.file, p.line, node_name))
    loader.problems.dropped += inner_loader.problems.dropped
    if inner is None:
        loader.mark_opaque(cfg.model_dump(), graph)
        return

    stream_map: dict[str, str] = {}
    side_map: dict[str, str] = {}
    port_edges: dict[str, FlatBinding] = {}
    for kind, ports in (
        ("inputs", inner.inputs),
        ("outputs", inner.outputs),
        ("side_inputs", inner.side_input_ports),
    ):
        by_tag = {p.tag: p for p in ports}
        words = kind[:-1].replace("_", " ")
        for b in bindings[kind]:
            port = by_tag.get(b.tag)
            if port is None:
                owner = f"subgraph {cfg.calculator}"
                problem(unknown_tag(words, b.tag, owner, list(by_tag)), at=b.line)
                continue
            if b.index > 0:
                problem(
                    f"subgraph {words} {b.tag} of {cfg.calculator} is not indexed",
                    at=b.line,
                )
                continue
            if kind == "side_inputs":
                side_map[port.name] = b.name
                continue
            if kind == "outputs" and any(p.name == port.name for p in inner.inputs):
                problem(
                    f"subgraph output {b.tag} of {cfg.calculator} is one of its inputs "
                    f"('{port.name}'); a stream cannot take two outer names",
                    at=b.line,
                )
                continue
            stream_map[port.name] = b.name
            if kind == "inputs":
                port_edges[port.name] = b
        connected = {b.tag for b in bindings[kind]}
        for port in ports:
            if port.tag in connected:
                continue
            # Mark what a missing port would have fed as produced: one problem, not
            # one more per inner consumer.
            if kind == "inputs":
                problem(f"missing required input {port.tag} of subgraph {cfg.calculator}")
                graph.opaque_streams.add(f"{name}/{port.name}")
            elif kind == "side_inputs":
                spec = inner.side_inputs[port.name]
                if spec.required:
                    problem(f"missing required side input {port.tag} of subgraph {cfg.calculator}")
                    graph.opaque_side.add(f"{name}/{port.name}")
    for kind in ("side_outputs",):
        for b in bindings[kind]:
            problem(f"subgraph {cfg.calculator} has no side outputs (got {b.tag})", at=b.line)

    def stream(s: str) -> str:
        return stream_map.get(s, f"{name}/{s}")

    def side(s: str) -> str:
        return side_map.get(s, f"{name}/{s}")

    def rename(bs: list[FlatBinding], fn: Callable[[str], str]) -> list[FlatBinding]:
        return [
            FlatBinding(b.tag, b.index, fn(b.name), b.back_edge, b.keep_latest, b.line, b.port_type)
            for b in bs
        ]

    for node in inner.nodes:
        inputs = rename(node.inputs, stream)
        for b_old, b_new in zip(node.inputs, inputs, strict=True):
            outer_edge = port_edges.get(b_old.name)
            if outer_edge is not None:
                b_new.back_edge = b_new.back_edge or outer_edge.back_edge
                b_new.keep_latest = b_new.keep_latest or outer_edge.keep_latest
        graph.nodes.append(
            FlatNode(
                name=f"{name}/{node.name}",
                calculator_name=node.calculator_name,
                cls=node.cls,
                options=node.options,
                inputs=inputs,
                outputs=rename(node.outputs, stream),
                side_inputs=rename(node.side_inputs, side),
                side_outputs=rename(node.side_outputs, side),
                input_policy=node.input_policy,
                executor=node.executor or cfg.executor,
                executor_line=node.executor_line
                if node.executor
                else loaded.line((*path, "executor")),
                executor_file=node.executor_file if node.executor else file,
                file=node.file,
                line=node.line,
            )
        )
    # Optional side inputs left unconnected: graph-level side packets with the default.
    for inner_name, spec in inner.side_inputs.items():
        if inner_name in side_map or spec.required:
            continue
        outer_name = side(inner_name)
        graph.side_inputs[outer_name] = SidePacketSpec(
            name=outer_name, default=spec.default, required=False, doc=spec.doc
        )
    graph.opaque_streams |= {stream(s) for s in inner.opaque_streams}
    graph.opaque_side |= {side(s) for s in inner.opaque_side}
    for executor, threads in inner.executors.items():
        graph.executors.setdefault(executor, threads)


def check_outputs_produced_locally(loader: GraphLoader, graph: FlatGraph) -> None:
    """A subgraph's declared outputs must come from its own nodes (or inputs)."""
    produced = {b.name for n in graph.nodes for b in n.outputs} | graph.opaque_streams
    produced |= {p.name for p in graph.inputs}
    for port in graph.outputs:
        if port.name not in produced:
            loader.problems.add(
                Problem(
                    f"subgraph output '{port.name}' is not produced by any of its nodes"
                    f"{did_you_mean(port.name, sorted(produced))}",
                    graph.file,
                    port.line,
                )
            )
            # Count it as produced outside, so its consumers do not repeat the error.
            graph.opaque_streams.add(port.name)
