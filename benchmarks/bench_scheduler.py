"""Scheduler overhead: µs per packet per node hop on a chain of pass-through nodes.

Usage: ``python benchmarks/bench_scheduler.py [--nodes 10] [--packets 10000] [--repeat 3]``

Prints, for each mode, the best of ``--repeat`` runs of pushing ``--packets``
packets through a chain of ``--nodes`` pass-through calculators (graph input ->
n1 -> ... -> nN -> observed output), divided by packets × nodes, in wall-clock and
in CPU time (all threads). The baseline is the same N ``process`` calls chained
directly (no scheduler), with a minimal context, as the reference for the ratio.
Target: ≤ 20 µs/hop deterministic.

A/B comparison of two installs (say, a branch against main) on a busy machine:
``--against /path/to/other/venv/bin/python --rounds 10`` runs this same benchmark
under both interpreters in alternating blocks and prints, per mode, the median and
best µs/hop of each and their ratio (this install / the other).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
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


def run_graph(mode: str, n: int, packets: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) to push ``packets`` through the chain and drain it."""
    graph = Graph(chain_spec(n), mode=mode)  # type: ignore[arg-type]
    received = 0

    def count(_: Any) -> None:
        nonlocal received
        received += 1

    graph.observe(f"s{n}", count)
    graph.start()
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(packets):
        graph.add_packet("s0", i, i)
    graph.close_all_inputs()
    graph.wait_until_done()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    if received != packets:
        raise SystemExit(f"lost packets: received {received} of {packets}")
    return elapsed, cpu


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


MODES = ("deterministic", "threads")


def measure(nodes: int, packets: int, repeat: int) -> dict[str, float]:
    """Best µs/hop of ``repeat`` runs: the direct-call baseline, and wall and CPU per mode."""
    hops = nodes * packets
    result = {"baseline": min(run_baseline(nodes, packets) for _ in range(repeat)) / hops * 1e6}
    for mode in MODES:
        runs = [run_graph(mode, nodes, packets) for _ in range(repeat)]
        result[mode] = min(wall for wall, _ in runs) / hops * 1e6
        result[f"{mode} cpu"] = min(cpu for _, cpu in runs) / hops * 1e6
    return result


def compare(args: argparse.Namespace) -> None:
    """Alternate blocks of this install and ``--against``; print medians and ratios."""
    cmd = [
        "--nodes", str(args.nodes), "--packets", str(args.packets),
        "--repeat", str(args.repeat), "--json",
    ]  # fmt: skip
    pythons = {"this": sys.executable, "other": args.against}
    samples: dict[str, list[dict[str, float]]] = {"this": [], "other": []}
    env = {k: v for k, v in os.environ.items() if k != "FACEGRAPH_CHECK_SCHEDULER"}
    for _ in range(args.rounds):
        for who, python in pythons.items():
            out = subprocess.run(
                [python, __file__, *cmd], check=True, capture_output=True, text=True, env=env
            ).stdout
            samples[who].append(json.loads(out))
    print(
        f"chain of {args.nodes} nodes, {args.packets} packets, {args.rounds} alternating rounds "
        f"(best of {args.repeat} each); load {os.getloadavg()[0]:.1f}"
    )
    print(f"  {'µs/hop':<18}{'this med':>9}{'other med':>10}{'ratio':>7}  {'this best':>9}"
          f"{'other best':>11}{'ratio':>7}")  # fmt: skip
    for key in ("baseline", *MODES, *(f"{m} cpu" for m in MODES)):
        this = [s[key] for s in samples["this"]]
        other = [s[key] for s in samples["other"]]
        med_t, med_o = statistics.median(this), statistics.median(other)
        print(
            f"  {key:<18}{med_t:9.2f}{med_o:10.2f}{med_t / med_o:7.2f}  "
            f"{min(this):9.2f}{min(other):11.2f}{min(this) / min(other):7.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--packets", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--against", metavar="PYTHON", help="A/B against another install")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds (--against)")
    args = parser.parse_args()
    if args.against:
        compare(args)
        return
    result = measure(args.nodes, args.packets, args.repeat)
    if args.json:
        print(json.dumps(result))
        return
    hops = args.nodes * args.packets
    base = result["baseline"]
    print(f"chain of {args.nodes} pass-through nodes, {args.packets} packets ({hops} hops)")
    print(f"  baseline (direct calls): {base:7.2f} µs/hop")
    for mode in MODES:
        per_hop, cpu = result[mode], result[f"{mode} cpu"]
        print(
            f"  {mode:<13}            {per_hop:7.2f} µs/hop  ({per_hop / base:.1f}x baseline, "
            f"{1e6 / (per_hop * args.nodes):,.0f} packets/s; CPU {cpu:.2f} µs/hop)"
        )


if __name__ == "__main__":
    main()
