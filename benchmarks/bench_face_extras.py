"""Per-face cost of the Tasks extras: blendshapes and face geometry.

Run::

    python benchmarks/bench_face_extras.py [--blocks 10] [--calls 200]

On MediaPipe 1.2.3's own landmarks of a real photo (``tests/fixtures/reference_tasks``),
in alternating blocks of ``--calls`` calls each, one thread:

- ``blendshapes.tflite`` alone (``TfLiteModel.run`` on a ready tensor): the floor;
- ``BlendshapesModel.predict`` (landmark subset → pixels → the model → ``Blendshapes``);
- ``GeometryPipeline.estimate`` (three Procrustes fits, unprojection, pose);
- the V2 landmark model alone on a 256×256 crop, for scale: what one face costs anyway.

Prints the median µs per call of each and the ratios to the floors measured in the same
run, with the load average (the figures are only comparable at the same load).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CASE = ROOT / "tests" / "fixtures" / "reference_tasks" / "image_astronaut.npz"


def per_call_us(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()

    from facegraph.models import model_path
    from facegraph.models.inference import TfLiteModel
    from facegraph.vision.face.blendshapes import BlendshapesModel, blendshape_input
    from facegraph.vision.face.geometry import GeometryPipeline

    landmarks = np.load(CASE)["landmarks"][0, 0]
    size = 512, 512
    blendshapes = BlendshapesModel()
    geometry = GeometryPipeline()
    raw = TfLiteModel(model_path("face_blendshapes"))
    v2 = TfLiteModel(model_path("face_landmarks_v2"))
    tensor = blendshape_input(landmarks, *size)
    crop = np.random.default_rng(0).uniform(0, 1, (1, 256, 256, 3)).astype(np.float32)
    cases: dict[str, Callable[[], object]] = {
        "blendshapes model alone": lambda: raw.run(tensor),
        "BlendshapesModel.predict": lambda: blendshapes.predict(landmarks, *size),
        "GeometryPipeline.estimate": lambda: geometry.estimate(landmarks, *size),
        "V2 landmark model alone": lambda: v2.run(crop),
    }
    for fn in cases.values():  # warm up
        per_call_us(fn, 10)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.blocks):
        for name, fn in cases.items():
            calls = max(1, args.calls // 10) if name.startswith("V2") else args.calls
            times[name].append(per_call_us(fn, calls))
    median = {name: float(np.median(v)) for name, v in times.items()}
    print(f"load average {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    for name, us in median.items():
        print(f"  {name:28s} {us:9.1f} µs")
    floor, face = median["blendshapes model alone"], median["V2 landmark model alone"]
    print(f"predict / blendshapes model      {median['BlendshapesModel.predict'] / floor:.3f}")
    print(f"geometry / blendshapes model     {median['GeometryPipeline.estimate'] / floor:.3f}")
    extras = median["BlendshapesModel.predict"] + median["GeometryPipeline.estimate"]
    print(f"(predict + geometry) / V2 model  {extras / face:.3f}")


if __name__ == "__main__":
    main()
