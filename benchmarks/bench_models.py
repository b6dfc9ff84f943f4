"""Per-model LiteRT latency of the five MediaPipe models, and the cost of splitting.

    python benchmarks/bench_models.py [--runs 200] [--warmup 20] [--threads 1 2]

For every model and thread count: mean and median (p50) wall time of
``TfLiteModel.run`` over ``--runs`` runs after ``--warmup`` runs, on a real face crop
(the test fixtures). The Attention Mesh model's split form (``custom_ops="split"``) is
also broken down into the sum of its LiteRT sub-model ``invoke`` calls, the sum of its
numpy custom-op kernels, and the rest (copies in and out, bookkeeping). Two ratios of
medians are printed: ``whole run / LiteRT invokes`` (everything the split adds,
kernels included; target ≤ 1.10) and ``whole run / (LiteRT invokes + kernels)`` (the
bookkeeping of the split alone), from the medians and from the minima (the minimum is
the steadiest figure on a busy machine).

The Attention Mesh model runs by default with its custom ops lowered to built-in ops (one
interpreter, ``custom_ops="lower"``); it is timed both ways, split and lowered, in
alternating blocks of 20 runs, and ``split / lowered`` (ratio of p50s) is printed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from facegraph.models import model_path
from facegraph.models.inference import TfLiteModel

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "models"
MODELS = {
    # name: (input fixture, input range)
    "face_detection_short_range": ("scene_128.png", (-1.0, 1.0)),
    "face_detection_full_range_sparse": ("face_crop_192.png", (-1.0, 1.0)),
    "face_landmark": ("face_crop_192.png", (0.0, 1.0)),
    "face_landmark_with_attention": ("face_crop_192.png", (0.0, 1.0)),
    "iris_landmark": ("eye_crop_64.png", (0.0, 1.0)),
}


def model_input(image: str, rng: tuple[float, float]) -> np.ndarray:
    import cv2

    rgb = cv2.cvtColor(cv2.imread(str(FIXTURES / image), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    scale = float(np.float32((rng[1] - rng[0]) / 255.0))
    return (rgb.astype(np.float64) * scale + rng[0]).astype(np.float32)[None]


def bench(
    model: TfLiteModel,
    x: np.ndarray,
    runs: int,
    warmup: int,
    into: dict[str, list[float]] | None = None,
) -> dict[str, list[float]]:
    for _ in range(warmup):
        model.run(x)
    r = into if into is not None else {"total": [], "litert": [], "kernels": []}
    total, litert, kernels = r["total"], r["litert"], r["kernels"]
    kinds = [s.kind for s in model.steps]
    for _ in range(runs):
        steps: list[float] = []
        t0 = time.perf_counter()
        model.run(x, timings=steps)
        total.append(time.perf_counter() - t0)
        litert.append(sum(t for t, k in zip(steps, kinds, strict=True) if k == "litert"))
        kernels.append(sum(t for t, k in zip(steps, kinds, strict=True) if k == "custom"))
    return r


def ms(values: list[float]) -> str:
    mean, p50, low = statistics.fmean(values), statistics.median(values), min(values)
    return f"{1e3 * mean:6.3f} {1e3 * p50:6.3f} {1e3 * low:6.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()

    print(f"runs={args.runs} warmup={args.warmup}; times in ms as 'mean p50 min'")
    print(
        f"{'model':34} {'thr':>3}  {'whole run':>20}  {'LiteRT invokes':>20}  "
        f"{'kernels':>20}  whole/invokes / whole/(invokes+kernels), of p50s, of mins"
    )
    for name in args.models:
        image, rng = MODELS[name]
        x = model_input(image, rng)
        path = model_path(name)
        for threads in args.threads:
            model = TfLiteModel(path, threads=threads)
            if not model.is_lowered:
                r = bench(model, x, args.runs, args.warmup)
                report(name, threads, model, r)
                continue
            # Lowered and split in alternating blocks (same machine load).
            split = TfLiteModel(path, threads=threads, custom_ops="split")
            r = {"total": [], "litert": [], "kernels": []}
            rs = {"total": [], "litert": [], "kernels": []}
            for start in range(0, args.runs, 20):
                n = min(20, args.runs - start)
                bench(model, x, n, args.warmup if start == 0 else 2, into=r)
                bench(split, x, n, args.warmup if start == 0 else 2, into=rs)
            report(name + " (lowered)", threads, model, r)
            report(name + " (split)", threads, split, rs)
            ratio = statistics.median(rs["total"]) / statistics.median(r["total"])
            print(f"{'':34} {threads:>3}  split / lowered, p50: x{ratio:.3f}", flush=True)


def report(name: str, threads: int, model: TfLiteModel, r: dict[str, list[float]]) -> None:
    line = f"{name:34} {threads:>3}  {ms(r['total'])}"
    if model.is_split:
        n_lite = sum(s.kind == "litert" for s in model.steps)
        n_custom = sum(s.kind == "custom" for s in model.steps)
        ratios = []
        for stat in (statistics.median, min):
            total, invokes, kernels = (stat(r[k]) for k in ("total", "litert", "kernels"))
            ratios.append(f"x{total / invokes:.3f}/x{total / (invokes + kernels):.3f}")
        line += (
            f"  {ms(r['litert'])}  {ms(r['kernels'])}  {' '.join(ratios)}"
            f"  ({n_lite} sub-models, {n_custom} kernels)"
        )
    else:
        # Baseline: what a plain model's run() adds to its one invoke (copies in/out).
        base = statistics.median(r["total"]) / statistics.median(r["litert"])
        line += f"  {ms(r['litert'])}  {'':20}  x{base:.3f} (one interpreter)"
    print(line, flush=True)


if __name__ == "__main__":
    main()
