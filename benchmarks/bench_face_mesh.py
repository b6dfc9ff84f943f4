"""Both shipped face graphs (face_mesh, face_mesh_static) against MediaPipe 0.10.14 on the
same frames: a thin wrapper over ``facegraph.app.bench`` (what
``facegraph bench`` runs), printing the two reports and a summary line.

    python benchmarks/bench_face_mesh.py [--frames 120] [--warmup 10]
        [--video clip.mp4] [--mode deterministic]
        [--mediapipe PYTHON | --no-mediapipe] [--json-dir DIR]

``--mediapipe`` defaults to ``$FACEGRAPH_MEDIAPIPE_PYTHON`` (a python with mediapipe
0.10.14). For the four standard rows use ``facegraph bench --table``.

Default input: synthetic 640×480 frames with one face (``--input synthetic`` of
``facegraph bench``). For a single graph and all options use ``facegraph bench``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from facegraph.app.bench import BenchConfig, run_bench
from facegraph.app.bench_cli import print_report
from facegraph.atomic_files import write_whole
from rich.console import Console

MP_PYTHON = os.environ.get("FACEGRAPH_MEDIAPIPE_PYTHON")
GRAPHS = ("face_mesh", "face_mesh_static")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--video", default="synthetic", help="any facegraph input; default synthetic")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--mode", choices=("deterministic", "threads"), default="deterministic")
    ap.add_argument("--mediapipe", type=Path, default=MP_PYTHON, help="python of a mediapipe venv")

    ap.add_argument("--no-mediapipe", action="store_true")
    ap.add_argument("--json-dir", type=Path, help="write <graph>.json here")
    args = ap.parse_args()

    use_mp = not args.no_mediapipe and args.mediapipe is not None and args.mediapipe.exists()
    console = Console(highlight=False)
    summary = []
    for graph in GRAPHS:
        result = run_bench(
            BenchConfig(
                graph=graph,
                input=args.video,
                frames=args.frames,
                warmup=args.warmup,
                mode=args.mode,
                baseline="mediapipe" if use_mp else None,
                baseline_python=str(args.mediapipe) if use_mp else None,
            )
        )
        print_report(result, console)
        console.print()
        if args.json_dir is not None:
            args.json_dir.mkdir(parents=True, exist_ok=True)
            write_whole(args.json_dir / f"{graph}.json", json.dumps(result, indent=1))
        line = f"{graph:17s} p50 {result['ours']['p50_ms']:6.2f} ms"
        line += f"  floor {result['floor']['p50_ms']:6.2f} ms"
        if result["ratio"] is not None:
            line += (
                f"  MediaPipe {result['baseline']['p50_ms']:6.2f} ms"
                f"  ratio {result['ratio']['p50']:.2f}x"
            )
        summary.append(line)
    console.print("[b]summary (p50 per frame)[/b]")
    for line in summary:
        console.print("  " + line)


if __name__ == "__main__":
    main()
