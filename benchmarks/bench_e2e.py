"""End to end: ``facegraph run face_mesh --input CLIP --output x.jsonl`` against the obvious
MediaPipe 0.10.14 script (``benchmarks/mediapipe_face_mesh_jsonl.py``: OpenCV decode,
``process``, ``json.dumps``, one line per frame), alternating runs so both see the same load.

    python benchmarks/bench_e2e.py [--clip CLIP] [--max-frames 600] [--rounds 3] [--render]
        [--mediapipe-python PY]   (default $FACEGRAPH_MEDIAPIPE_PYTHON)

Per contender: frames/s as each reports it (first frame to last write, model loading
excluded), and the whole process's wall and CPU time (startup and model loading
included). Each contender runs once untimed first (warm file cache, compiled bytecode),
then the rounds alternate; the summary gives medians and same-run ratios both ways.
``--render`` adds an overlay video to both (facegraph ``--render``, MediaPipe's
``drawing_utils`` + ``cv2.VideoWriter``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CLIP = HERE.parent / "graphs" / "samples" / "face_sample.mp4"
FPS_LINE = re.compile(r"([0-9.]+) frames/s")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed(cmd: list[str]) -> tuple[float, float, str, str]:
    """(wall s, CPU s of the child, its stdout, its stderr)."""
    c0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - c0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, cpu, proc.stdout, proc.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--render", action="store_true")
    ap.add_argument("--mediapipe-python", default=os.environ.get("FACEGRAPH_MEDIAPIPE_PYTHON"))
    args = ap.parse_args()
    if not args.mediapipe_python:
        sys.exit("give --mediapipe-python or set FACEGRAPH_MEDIAPIPE_PYTHON (mediapipe 0.10.14)")
    facegraph = shutil.which("facegraph") or sys.exit("facegraph is not on PATH")
    limit = [] if args.max_frames is None else ["--max-frames", str(args.max_frames)]
    results: dict[str, list[tuple[float, float, float]]] = {"facegraph": [], "mediapipe": []}
    with tempfile.TemporaryDirectory(prefix="facegraph-e2e-") as tmp:
        t = Path(tmp)
        ours = [facegraph, "run", "face_mesh", "--input", str(args.clip)]
        ours += ["--output", str(t / "ours.jsonl"), *limit]
        theirs = [args.mediapipe_python, str(HERE / "mediapipe_face_mesh_jsonl.py")]
        theirs += [str(args.clip), str(t / "mp.jsonl"), *limit]
        if args.render:
            ours += ["--render", str(t / "ours.mp4")]
            theirs += ["--render", str(t / "mp.mp4")]
        # One untimed run each: the first run of a process pays for cold caches (the
        # clip, the models, .pyc files), which is not what the rounds compare.
        for cmd in (ours, theirs):
            _timed(cmd)
        load = os.getloadavg()[0]
        for r in range(args.rounds):
            order = ["facegraph", "mediapipe"] if r % 2 == 0 else ["mediapipe", "facegraph"]
            for who in order:
                wall, cpu, text, err = _timed(ours if who == "facegraph" else theirs)
                if who == "facegraph":
                    m = FPS_LINE.search(text + err)
                    fps = float(m.group(1)) if m else float("nan")
                else:
                    fps = json.loads(text.strip().splitlines()[-1])["frames_per_s"]
                results[who].append((fps, wall, cpu))
                print(
                    f"round {r} {who:9s} {fps:7.1f} frames/s  process {wall:.2f} s wall, "
                    f"{cpu:.2f} s CPU",
                    flush=True,
                )
        frames = len((t / "ours.jsonl").read_text().splitlines())
    med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in results.items()}
    (fo, wo, co), (fm, wm, cm) = med["facegraph"], med["mediapipe"]
    print(
        f"\n{args.clip.name}, {frames} frames, render={'yes' if args.render else 'no'}, "
        f"{args.rounds} alternating rounds; 1-min load {load:.2f} -> {os.getloadavg()[0]:.2f}"
    )
    print(
        f"frames/s (median): facegraph {fo:.1f}, MediaPipe {fm:.1f}: "
        f"ours/MediaPipe {fo / fm:.2f}x, MediaPipe/ours {fm / fo:.2f}x"
    )
    print(
        f"process wall (incl. startup): facegraph {wo:.2f} s, MediaPipe {wm:.2f} s: "
        f"MediaPipe/ours {wm / wo:.2f}x (ours/MediaPipe {wo / wm:.2f}x)"
    )
    print(
        f"process CPU: facegraph {co:.2f} s, MediaPipe {cm:.2f} s: "
        f"MediaPipe/ours {cm / co:.2f}x (ours/MediaPipe {co / cm:.2f}x)"
    )


if __name__ == "__main__":
    main()
