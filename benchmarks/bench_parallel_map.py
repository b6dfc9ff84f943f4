"""Per-face ParallelMap against the BeginLoop/EndLoop form of the same graph, same process.

    python benchmarks/bench_parallel_map.py                          # face_mesh, 2 faces
    python benchmarks/bench_parallel_map.py --graph face_mesh_static --faces 1
    python benchmarks/bench_parallel_map.py --before path/to/old_face_mesh.yaml

Contenders, each a graph fed one frame per ``run_once`` in deterministic mode (what
``facegraph.FaceMesh`` does), timed in alternating blocks on the same synthetic frames
(``grid_photo_frames``, the frames of ``facegraph bench --faces N --size WxH``):

- ``beginloop``: the graph before the switch (``--before``; default: the copy kept in
  ``tests/fixtures/beginloop_graphs``);
- ``parallel``: the shipped graph (ParallelMap, ``workers: auto``);
- ``parallel w=1``: the shipped graph with ``workers: 1`` (inline: the map's own cost).

Printed per contender: p50 and mean wall ms/frame, CPU ms/frame (process CPU time over
the timed frames, all threads), and the ratio of p50 to ``beginloop``'s. The load
average is printed before and after; judge on an idle machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from pathlib import Path
from typing import Any

from facegraph import Graph, load_graph
from facegraph.app.bench import grid_photo_frames
from facegraph.spec import GraphSpec, NodeSpec, map_nodes

ROOT = Path(__file__).resolve().parent.parent


def with_workers(spec: GraphSpec, workers: int) -> GraphSpec:
    def set_workers(node: NodeSpec) -> NodeSpec:
        if node.calculator_name != "ParallelMap":
            return node
        options = node.options.model_copy(update={"workers": workers})
        return dataclasses.replace(node, options=options)

    return map_nodes(spec, set_workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", default="face_mesh")
    parser.add_argument("--before", type=Path, default=None)
    parser.add_argument("--faces", type=int, default=2)
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--block", type=int, default=10)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    before = (
        args.before or ROOT / "tests/fixtures/beginloop_graphs" / f"{args.graph}_beginloop.yaml"
    )
    shipped = load_graph(args.graph)
    specs = {
        "beginloop": load_graph(before),
        "parallel": shipped,
        "parallel w=1": with_workers(shipped, 1),
    }
    frames = grid_photo_frames(args.frames, width, height, args.faces)
    print(f"load average before: {os.getloadavg()}")
    graphs: dict[str, Graph] = {}
    for name, spec in specs.items():
        graph = Graph(spec, mode="deterministic")
        graph.start({"num_faces": args.faces})
        for frame in frames[:10]:  # warm-up: models loaded, copies made
            graph.run_once({"image": frame})
        graphs[name] = graph
    wall: dict[str, list[float]] = {n: [] for n in graphs}
    cpu: dict[str, float] = dict.fromkeys(graphs, 0.0)
    faces: dict[str, int] = dict.fromkeys(graphs, 0)
    for start in range(0, len(frames), args.block):
        block = frames[start : start + args.block]
        for name, graph in graphs.items():
            c0 = time.process_time()
            for frame in block:
                t0 = time.perf_counter()
                out: dict[str, Any] = graph.run_once({"image": frame})
                wall[name].append((time.perf_counter() - t0) * 1e3)
                faces[name] += len(out.get("faces") or [])
            cpu[name] += time.process_time() - c0
    for graph in graphs.values():
        graph.close_all_inputs()
        graph.wait_until_done()
    print(f"load average after: {os.getloadavg()}")
    base = statistics.median(wall["beginloop"])
    print(f"{args.graph}, {args.faces} face(s), {width}x{height}, {len(frames)} frames")
    print(f"{'contender':<14} {'p50':>6} {'mean':>6} {'CPU/frame':>9} {'p50 ratio':>9} faces/frame")
    for name, times in wall.items():
        p50 = statistics.median(times)
        print(
            f"{name:<14} {p50:6.2f} {statistics.fmean(times):6.2f} "
            f"{cpu[name] / len(times) * 1e3:9.2f} {p50 / base:8.2f}x {faces[name] / len(times):.2f}"
        )


if __name__ == "__main__":
    main()
