"""From a :class:`GraphSpec` to connected runtime objects: nodes, queues, streams, ranks.

Everything here runs once, before the graph starts; nothing here runs per packet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..context import NodeContext
from ..errors import FacegraphError
from ..ports import Port
from ..spec import GraphSpec
from ..timestamp import PRE_STREAM
from .input_policies import INPUT_POLICIES
from .nodes import CheckedNodeState, Executor, InputQueue, NodeState, StreamState


class Wiring:
    """The graph's runtime objects, connected; the problems that keep it from running raise."""

    def __init__(self, spec: GraphSpec, *, checked: bool = False) -> None:
        make = CheckedNodeState if checked else NodeState
        self.executors = {name: Executor(name, max(1, n)) for name, n in spec.executors.items()}
        self.streams: dict[str, StreamState] = {}
        self.nodes: list[NodeState] = [make(n, i) for i, n in enumerate(spec.nodes)]
        problems = self._connect(spec)
        if problems:
            raise FacegraphError(
                f"graph '{spec.name}' cannot run:\n" + "\n".join(f"  - {p}" for p in problems)
            )
        for node in self.nodes:
            seen: set[int] = set()
            for st in node.outputs:
                for q in st.consumers:
                    if q.node.index not in seen:
                        seen.add(q.node.index)
                        node.downstream.append(q.node)
        #: Per source node: every limited queue downstream of it (see queues_fed_by).
        self.throttle_queues: dict[int, list[InputQueue]] = {
            n.index: self.queues_fed_by(n.outputs) for n in self.nodes if n.is_source
        }
        #: Per graph input stream: every limited queue downstream of it.
        self.input_throttle_queues: dict[str, list[InputQueue]] = {
            st.name: self.queues_fed_by([st]) for st in self.streams.values() if st.graph_input
        }
        self._rank()

    def _stream(self, name: str) -> StreamState:
        st = self.streams.get(name)
        if st is None:
            st = self.streams[name] = StreamState(name)
        return st

    def _connect(self, spec: GraphSpec) -> list[str]:
        problems: list[str] = []
        for name in spec.input_streams:
            self._stream(name).graph_input = True
        for node in self.nodes:
            for b in node.spec.outputs:
                st = self._stream(b.stream)
                if st.producer is not None or st.graph_input:
                    problems.append(f"stream '{b.stream}' has two producers (node '{node.name}')")
                st.producer = node
        for node in self.nodes:
            nspec = node.spec
            ex = self.executors.get(nspec.executor)
            if ex is None:
                problems.append(
                    f"{nspec.where()}: unknown executor '{nspec.executor}' "
                    f"(graph executors: {', '.join(sorted(self.executors))})"
                )
                ex = next(iter(self.executors.values()), None) or Executor("default", 1)
            node.executor = ex
            for b in nspec.inputs:
                st = self._stream(b.stream)
                if st.producer is None and not st.graph_input:
                    problems.append(
                        f"{nspec.where()}: input stream '{b.stream}' has no producer and is not "
                        "a graph input"
                    )
                q = InputQueue(node, f"{b.tag}:{b.index}", b.stream, b.keep_latest)
                q.back_edge = b.back_edge
                node.queues.append(q)
                st.consumers.append(q)
            node.outputs = [self.streams[b.stream] for b in nspec.outputs]
            policy = INPUT_POLICIES.get(nspec.input_policy)
            if policy is None:
                problems.append(
                    f"{nspec.where()}: unknown input policy '{nspec.input_policy}' "
                    f"(known: {', '.join(INPUT_POLICIES.names())})"
                )
                continue
            node.policy = policy(node)
            if not policy.limits_queues:
                for q in node.queues:
                    q.limited = False
                    if q.keep_latest is None:
                        q.keep_latest = spec.max_queue_size
        for name in spec.output_streams:
            out = self.streams.get(name)
            if out is None:
                problems.append(f"graph output stream '{name}' is not produced by any node")
            else:
                out.graph_output = True
                out.update_watched()
        return problems

    @staticmethod
    def queues_fed_by(streams: list[StreamState]) -> list[InputQueue]:
        """Every limited queue that receives packets derived from ``streams``.

        A full queue anywhere downstream throttles a source (or blocks a graph input),
        not only a full queue of its direct consumers: otherwise a fast node between the
        source and a slow sink moves the backlog into the sink's queue, which then grows
        without limit. Back edges are not followed (a loop's queues drain by themselves).
        """
        found: list[InputQueue] = []
        visited: set[int] = set()
        todo = list(streams)
        while todo:
            st = todo.pop()
            for q in st.consumers:
                if q.back_edge:
                    continue
                if q.limited:
                    found.append(q)
                if q.node.index not in visited:
                    visited.add(q.node.index)
                    todo.extend(q.node.outputs)
        return found

    def _rank(self) -> None:
        """rank = longest path from a root, back edges excluded; order = tie-break by name."""
        preds: dict[int, set[int]] = {n.index: set() for n in self.nodes}
        for node in self.nodes:
            for q in node.queues:
                producer = self.streams[q.stream].producer
                if producer is not None and not q.back_edge:
                    preds[node.index].add(producer.index)
        rank: dict[int, int] = {}
        remaining = set(preds)
        while remaining:
            progressed = False
            for i in sorted(remaining):
                if all(p in rank for p in preds[i]):
                    rank[i] = 1 + max((rank[p] for p in preds[i]), default=-1)
                    remaining.discard(i)
                    progressed = True
            if not progressed:  # a cycle without back edge: validation should have caught it
                for i in remaining:
                    rank[i] = 0
                break
        for node in self.nodes:
            node.rank = rank[node.index]
        for order, node in enumerate(sorted(self.nodes, key=lambda n: n.name)):
            node.order = order

    def open_order(self) -> list[NodeState]:
        """Topological order over streams (no back edges) and side packets, ties by name."""
        producers_of_side: dict[str, int] = {}
        for node in self.nodes:
            for sb in node.spec.side_outputs:
                producers_of_side[sb.name] = node.index
        preds: dict[int, set[int]] = {n.index: set() for n in self.nodes}
        for node in self.nodes:
            for q in node.queues:
                producer = self.streams[q.stream].producer
                if producer is not None and not q.back_edge and producer is not node:
                    preds[node.index].add(producer.index)
            for sb in node.spec.side_inputs:
                p = producers_of_side.get(sb.name)
                if p is not None and p != node.index:
                    preds[node.index].add(p)
        done: set[int] = set()
        order: list[NodeState] = []
        by_name = sorted(self.nodes, key=lambda n: n.name)
        while len(order) < len(self.nodes):
            ready = [n for n in by_name if n.index not in done and preds[n.index] <= done]
            if not ready:  # cycle: fall back to name order for the rest
                ready = [n for n in by_name if n.index not in done]
            for n in ready:
                done.add(n.index)
                order.append(n)
        return order


def make_context(
    node: NodeState,
    side_values: dict[str, Any],
    set_side_packet: Callable[[str, Any, str], None],
) -> NodeContext:
    """The node's context, with its ports resolved to slot indices once."""
    spec = node.spec
    contract = spec.calculator.contract
    in_slots: dict[Port[Any], list[int]] = {p: [] for p in contract.inputs.values()}
    for slot, b in enumerate(spec.inputs):
        iport = contract.inputs.get(b.tag)
        if iport is not None:
            _put(in_slots[iport], b.index, slot)
    out_slots: dict[Port[Any], list[int]] = {p: [] for p in contract.outputs.values()}
    for i, b in enumerate(spec.outputs):
        oport = contract.outputs.get(b.tag)
        if oport is not None:
            _put(out_slots[oport], b.index, i)
    side_in: dict[Port[Any], list[Any]] = {p: [] for p in contract.side_inputs.values()}
    for sb in spec.side_inputs:
        siport = contract.side_inputs.get(sb.tag)
        if siport is not None:
            _put(side_in[siport], sb.index, side_values.get(sb.name))
    side_out: dict[Port[Any], list[str]] = {p: [] for p in contract.side_outputs.values()}
    for sb in spec.side_outputs:
        soport = contract.side_outputs.get(sb.tag)
        if soport is not None:
            _put(side_out[soport], sb.index, sb.name)
    ctx = NodeContext(
        node_name=node.name,
        in_slots=in_slots,
        queues=list(node.queues),
        out_slots=out_slots,
        out_names=[st.name for st in node.outputs],
        offset_zero=node.offset_zero,
        is_source=node.is_source,
        side_in=side_in,
        side_out=side_out,
        set_side_packet=set_side_packet,
    )
    ctx.out_bounds = [PRE_STREAM] * len(node.outputs)
    return ctx


def _put(values: list[Any], index: int, value: Any) -> None:
    """values[index] = value, growing the list with None as needed."""
    while len(values) <= index:
        values.append(None)
    values[index] = value
