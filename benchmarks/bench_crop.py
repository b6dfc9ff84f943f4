"""The landmark models' ROI crop: ``image_to_tensor(..., warp="exact")`` against
``warp="fast"`` (``cv2.warpAffine``), in µs per crop.

    python benchmarks/bench_crop.py [--rounds 15] [--block 192]

A face-sized rotated ROI (≈ 45 % of the frame's height, a slightly different centre and
rotation per frame) cropped from a 640×480 frame into 192×192 (legacy face mesh) and
256×256 (Tasks V2 landmarks), with replicate border and value range (0, 1):

- **hot**: the same frame every call (in cache);
- **cold**: ``--block`` distinct frames cycled (177 MB; the parts the crops read,
  ~43 MB, are more than this machine's 32 MB L3), as after a new video frame or a model
  run.

Exact and fast alternate in blocks of ``--block`` calls within each round; prints the
median µs per crop of each and the ratio fast/exact, with the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
from facegraph.app.bench import grid_photo_frames
from facegraph.vision.face.image_to_tensor import image_to_tensor
from facegraph.vision.face.types import NormalizedRect


def rois(n: int) -> list[NormalizedRect]:
    rng = np.random.default_rng(7)
    return [
        NormalizedRect(
            float(0.5 + rng.uniform(-0.05, 0.05)),
            float(0.48 + rng.uniform(-0.05, 0.05)),
            0.45 * 480 / 640,
            0.45,
            float(rng.uniform(-0.4, 0.4)),
        )
        for _ in range(n)
    ]


def time_block(fn: Callable[[int], object], n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--block", type=int, default=192, help="distinct frames for the cold case")
    args = ap.parse_args()

    base = grid_photo_frames(8, 640, 480, 1)
    # Distinct buffers (same content cycled): the cold case reads each from memory.
    frames = [base[i % len(base)].copy() for i in range(args.block)]
    regions = rois(args.block)
    load0 = os.getloadavg()[0]
    print(f"640×480 RGB frame, face ROI, replicate, (0, 1); load average {load0:.2f}")
    print(f"{'size':>8} {'frame':>5} {'exact µs':>9} {'fast µs':>8} {'fast/exact':>10}")
    for size in (192, 256):
        for temp in ("hot", "cold"):
            times: dict[str, list[float]] = {"exact": [], "fast": []}

            def crop(warp: str, temp: str = temp, size: int = size) -> Callable[[int], object]:
                def fn(i: int) -> object:
                    frame = frames[0] if temp == "hot" else frames[i]
                    return image_to_tensor(
                        frame, regions[i], size, size, (0.0, 1.0), "replicate", warp=warp
                    )

                return fn

            for warp in times:  # warm-up (self-checks, allocator)
                time_block(crop(warp), args.block)
            for _ in range(args.rounds):
                for warp in times:
                    times[warp] += time_block(crop(warp), args.block)
            exact = statistics.median(times["exact"])
            fast = statistics.median(times["fast"])
            print(f"{size:>4}×{size:<3} {temp:>5} {exact:>9.0f} {fast:>8.0f} {fast / exact:>10.2f}")


if __name__ == "__main__":
    main()
