"""Throughput of ``facegraph batch`` with 1 and 2 local workers (target: ≥ 1.8× with 2 on 2 cores).

    python benchmarks/bench_batch.py                      # 8 clips x 300 frames of the sample
    python benchmarks/bench_batch.py --clips 8 --frames 125 --workers 1 2
    python benchmarks/bench_batch.py --video clip.mp4     # cut the clips from another video
    python benchmarks/bench_batch.py --ray                # Ray actors instead of processes

The collection is made in a temporary folder: ``--clips`` short mp4 videos cut from the
bundled sample (or ``--video``) at different offsets, re-encoded with OpenCV (mp4v). Each
worker count runs the whole collection into a fresh output folder. Printed per run:
frames, wall-clock seconds (worker start-up included), frames/s, and frames/s of the busy
time (frames / the longest sum of task seconds of one worker: start-up excluded), then the
ratio of each run to the first. Run it on an otherwise idle machine (the load average is
printed before and after).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path


def _load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def make_collection(folder: Path, video: str | None, clips: int, frames: int) -> int:
    """``clips`` videos of ``frames`` frames each in ``folder``; returns the frame count."""
    import cv2
    from facegraph.app.runner import sample_video

    def read(path: str) -> list:
        cap = cv2.VideoCapture(path)
        out = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            out.append(frame)
        cap.release()
        return out

    if video is None:
        with sample_video() as sample:
            source = read(str(sample))
    else:
        source = read(video)
    if not source:
        raise SystemExit(f"no frames in {video or 'the bundled sample'}")
    h, w = source[0].shape[:2]
    total = 0
    for k in range(clips):
        path = folder / f"clip{k:02d}.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 30.0, (w, h))
        start = (k * 17) % len(source)
        for i in range(frames):
            # Loop over the source (forwards then backwards) when a clip is longer than it.
            j = (start + i) % (2 * len(source))
            writer.write(source[j if j < len(source) else 2 * len(source) - 1 - j])
            total += 1
        writer.release()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graph", default="face_mesh")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=300, help="frames per clip")
    parser.add_argument("--video", help="cut the clips from this video (default: the sample)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--ray", action="store_true", help="Ray actors on a local Ray instance")
    args = parser.parse_args()

    from facegraph.app.batch import run_batch

    print(f"load average before: {_load()}; CPUs: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        inputs = Path(tmp) / "inputs"
        inputs.mkdir()
        total = make_collection(inputs, args.video, args.clips, args.frames)
        print(f"collection: {args.clips} clips x {args.frames} frames = {total} frames")
        print(f"{'workers':>7} {'frames':>7} {'wall s':>7} {'fps':>7} {'busy fps':>9} {'ratio':>6}")
        first: float | None = None
        for n in args.workers:
            out = Path(tmp) / f"out{n}"
            t0 = time.perf_counter()
            summary = run_batch(
                args.graph, inputs, out, workers=n, ray_address="local" if args.ray else None
            )
            wall = time.perf_counter() - t0
            if summary.failed:
                raise SystemExit(f"{summary.failed} input(s) failed: {summary.failures}")
            busy: dict[str, float] = defaultdict(float)
            for result in summary.results:
                busy[result.worker] += result.seconds
            fps = summary.frames / wall
            busy_fps = summary.frames / max(busy.values())
            first = first or fps
            print(
                f"{n:>7} {summary.frames:>7} {wall:>7.2f} {fps:>7.1f} {busy_fps:>9.1f} "
                f"{fps / first:>5.2f}x  (models loaded {summary.model_loads}x, "
                f"reused {summary.model_reuses}x)"
            )
            shutil.rmtree(out)
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
