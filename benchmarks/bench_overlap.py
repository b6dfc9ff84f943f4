"""What running two faces' landmark work side by side could gain (issue 13, lever 4).

    python benchmarks/bench_overlap.py [--rounds 20] [--block 20]

On a 960×540 synthetic frame with two faces, per frame: the crop (``image_to_tensor``)
and the Attention Mesh model (lowered, one thread) for each face,

- **sequential**: face 1 then face 2 on the calling thread (what the graph does today);
- **overlapped**: face 2 on a pool thread with its own interpreter while face 1 runs on
  the calling thread (LiteRT's invoke and OpenCV's remap release the GIL).

Both alternate in blocks of ``--block`` frames; prints p50 wall ms per frame, CPU ms per
frame and the ratio, with the load average. Speed needs idle cores: on a loaded machine
the overlap gains nothing, which is why the graph does not do it by default.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from facegraph import Graph, load_graph
from facegraph.app.bench import grid_photo_frames
from facegraph.models import model_path
from facegraph.models.inference import TfLiteModel
from facegraph.vision.face.image_to_tensor import image_to_tensor


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--block", type=int, default=20)
    args = ap.parse_args()

    frames = grid_photo_frames(args.block, 960, 540, 2)
    graph = Graph(load_graph("face_mesh_static"), mode="deterministic")
    graph.start({"num_faces": 2})
    rois = [graph.run_once({"image": f})["rois"] for f in frames]
    graph.close_all_inputs()
    graph.wait_until_done()
    assert all(len(r) == 2 for r in rois), "both faces must be found"
    path = model_path("face_landmark_with_attention")
    models = [TfLiteModel(path), TfLiteModel(path)]

    def face(k: int, frame: np.ndarray, roi: object) -> None:
        models[k].run(image_to_tensor(frame, roi, 192, 192).tensor)  # type: ignore[arg-type]

    pool = ThreadPoolExecutor(1)

    def sequential(i: int) -> None:
        face(0, frames[i], rois[i][0])
        face(1, frames[i], rois[i][1])

    def overlapped(i: int) -> None:
        other = pool.submit(face, 1, frames[i], rois[i][1])
        face(0, frames[i], rois[i][0])
        other.result()

    ways = {"sequential": sequential, "overlapped": overlapped}
    wall: dict[str, list[float]] = {k: [] for k in ways}
    cpu = dict.fromkeys(ways, 0.0)
    load0 = os.getloadavg()[0]
    for fn in ways.values():  # warm-up
        for i in range(len(frames)):
            fn(i)
    for _ in range(args.rounds):
        for name, fn in ways.items():
            time.sleep(0.01)  # each block starts from the same state
            c0 = time.process_time()
            for i in range(len(frames)):
                t0 = time.perf_counter()
                fn(i)
                wall[name].append((time.perf_counter() - t0) * 1e3)
            cpu[name] += (time.process_time() - c0) * 1e3
    pool.shutdown()
    n = args.rounds * len(frames)
    for name in ways:
        print(
            f"{name:11s} p50 {statistics.median(wall[name]):6.3f} ms  CPU {cpu[name] / n:6.3f} ms"
        )
    ratio = statistics.median(wall["sequential"]) / statistics.median(wall["overlapped"])
    print(
        f"sequential / overlapped p50: {ratio:.2f}x; 1-min load {load0:.2f} -> "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
