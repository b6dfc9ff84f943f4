"""The last step of loading: a checked :class:`~facegraph.validate.FlatGraph` becomes the
immutable :class:`~facegraph.spec.GraphSpec` the scheduler runs."""

from __future__ import annotations

from .spec import (
    DEFAULT_EXECUTOR,
    DEFAULT_MAX_QUEUE_SIZE,
    GraphSpec,
    NodeSpec,
    SideBinding,
    StreamBinding,
)
from .validate import FlatGraph

__all__ = ["to_spec"]


def to_spec(graph: FlatGraph) -> GraphSpec:
    """The spec of a graph that passed every check (every calculator resolved)."""
    nodes: list[NodeSpec] = []
    for node in graph.nodes:
        assert node.cls is not None  # unresolved calculators were reported as problems
        nodes.append(
            NodeSpec(
                name=node.name,
                calculator_name=node.calculator_name,
                calculator=node.cls,
                options=node.options,
                inputs=tuple(
                    StreamBinding(b.tag, b.index, b.name, b.back_edge, b.keep_latest, b.line)
                    for b in node.inputs
                ),
                outputs=tuple(
                    StreamBinding(b.tag, b.index, b.name, line=b.line) for b in node.outputs
                ),
                side_inputs=tuple(
                    SideBinding(b.tag, b.index, b.name, b.line) for b in node.side_inputs
                ),
                side_outputs=tuple(
                    SideBinding(b.tag, b.index, b.name, b.line) for b in node.side_outputs
                ),
                input_policy=node.input_policy,
                executor=node.executor or DEFAULT_EXECUTOR,
                file=node.file,
                line=node.line,
            )
        )
    executors = {DEFAULT_EXECUTOR: 2, **graph.executors}
    return GraphSpec(
        name=graph.name,
        nodes=tuple(nodes),
        input_streams=tuple(p.name for p in graph.inputs),
        output_streams=tuple(p.name for p in graph.outputs),
        side_inputs=dict(graph.side_inputs),
        executors=executors,
        max_queue_size=graph.max_queue_size or DEFAULT_MAX_QUEUE_SIZE,
        file=graph.file,
    )
