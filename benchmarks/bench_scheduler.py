"""Scheduler overhead: µs per packet per node hop on a chain of pass-through nodes.

Usage: ``python benchmarks/bench_scheduler.py [--nodes 10] [--packets 10000] [--repeat 3]``

Prints, for each mode, the best of ``--repeat`` runs of pushing ``--packets``
packets through a chain of ``--nodes`` pass-through calculators (graph input ->
n1 -> ... -> nN -> observed output), divided by packets × nodes. The baseline is
the same N ``process`` calls chained directly (no scheduler), with a minimal
context, as the reference for the ratio. Target: ≤ 20 µs/hop deterministic.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from facegraph import Calculator, CalculatorContext, Graph, GraphSpec, Input, NodeSpec, Output
from facegraph.calculator import NoOptions
from facegraph.spec import StreamBinding


class BenchPass(Calculator):
    """Forwards IN to OUT (the benchmark's node)."""

    IN = Input("IN")
    OUT = Output("OUT")

    def process(self, ctx: CalculatorContext) -> None:
        p = ctx.packet(self.IN)
        if p is not None:
            ctx.emit(self.OUT, p.value)


def chain_spec(n: int, max_queue_size: int = 100, threads: int = 2) -> GraphSpec:
    nodes = tuple(
        NodeSpec(
            name=f"n{i}",
            calculator_name="BenchPass",
            calculator=BenchPass,
            options=NoOptions(),
            inputs=(StreamBinding("IN", 0, f"s{i}"),),
            outputs=(StreamBinding("OUT", 0, f"s{i + 1}"),),
        )
        for i in range(n)
    )
    return GraphSpec(
        name="chain",
        nodes=nodes,
        input_streams=("s0",),
        output_streams=(f"s{n}",),
        executors={"default": threads},
        max_queue_size=max_queue_size,
    )


def run_graph(mode: str, n: int, packets: int) -> float:
    """Seconds to push ``packets`` through the chain and drain it."""
    graph = Graph(chain_spec(n), mode=mode)  # type: ignore[arg-type]
    received = 0

    def count(_: Any) -> None:
        nonlocal received
        received += 1

    graph.observe(f"s{n}", count)
    graph.start()
    t0 = time.perf_counter()
    for i in range(packets):
        graph.add_packet("s0", i, i)
    graph.close_all_inputs()
    graph.wait_until_done()
    elapsed = time.perf_counter() - t0
    assert received == packets, (received, packets)
    return elapsed


class _DirectContext:
    """Just enough context for BenchPass.process without a scheduler."""

    __slots__ = ("out", "p")

    def __init__(self) -> None:
        self.p: Any = None
        self.out: Any = None

    def packet(self, port: Any, index: int = 0) -> Any:
        return self.p

    def emit(self, port: Any, value: Any, index: int = 0, timestamp: Any = None) -> None:
        self.out = value


def run_baseline(n: int, packets: int) -> float:
    from facegraph import Packet

    nodes = [BenchPass(NoOptions()) for _ in range(n)]
    ctx = _DirectContext()
    t0 = time.perf_counter()
    for i in range(packets):
        value: Any = i
        for calc in nodes:
            ctx.p = Packet(value, i)
            calc.process(ctx)  # type: ignore[arg-type]
            value = ctx.out
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--packets", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    hops = args.nodes * args.packets
    print(f"chain of {args.nodes} pass-through nodes, {args.packets} packets ({hops} hops)")
    base = min(run_baseline(args.nodes, args.packets) for _ in range(args.repeat))
    print(f"  baseline (direct calls): {base / hops * 1e6:7.2f} µs/hop")
    for mode in ("deterministic", "threads"):
        best = min(run_graph(mode, args.nodes, args.packets) for _ in range(args.repeat))
        per_hop = best / hops * 1e6
        print(
            f"  {mode:<13}            {per_hop:7.2f} µs/hop  "
            f"({per_hop / (base / hops * 1e6):.1f}x baseline, {args.packets / best:,.0f} packets/s)"
        )


if __name__ == "__main__":
    main()
