"""Per-frame time of the shipped face_mesh (tracking) and face_mesh_static graphs on a
640×480 video, with a per-node breakdown, next to pure LiteRT inference of the same
models and (when ``/work/mpvenv`` exists) MediaPipe 0.10.14 on the same frames.

    /work/venv/bin/python benchmarks/bench_face_mesh.py [--frames 120] [--repeat 3]
        [--video /work/shared/data/videos/webcam_head_turns.mp4] [--mode deterministic]
        [--mediapipe /work/mpvenv/bin/python | --no-mediapipe]

Default input: the synthetic "moving" clip (``facegraph.calculators.face.synthetic``) of
the test photo ``tests/fixtures/faces/astronaut.png``; ``--video`` reads any video with
OpenCV and resizes it to 640×480. Frames are fed with ``Graph.run_once`` (what
``facegraph.FaceMesh`` does). Timings: wall clock per frame over ``--repeat`` passes after
one warm-up pass; the per-node table comes from a separate profiled pass (profiling adds
two clock reads per call, so it is not used for the headline figures).

"LiteRT alone" is ``TfLiteModel.run`` of the same models on the same inputs the graph
used on that frame (the mesh model per ROI, the detector when it ran; crops made outside
the timing). The facegraph/LiteRT ratio is what the rest of the pipeline costs (crops,
decoding, ROIs, scheduling). MediaPipe runs in a subprocess of its venv that times one
``FaceMesh.process`` per request. Every contender is timed twice: *solo* (alone, as a user
runs it) and *interleaved* (all contenders on frame i before any moves to frame i + 1, so
they share the machine's load on a busy machine; they also evict each other's caches,
which makes everyone slower).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "tests" / "fixtures" / "faces" / "astronaut.png"
MP_PYTHON = Path("/work/mpvenv/bin/python")


def synthetic_frames(n: int) -> list[np.ndarray]:
    import cv2
    from facegraph.calculators.face.synthetic import moving_face_video

    photo = np.ascontiguousarray(cv2.imread(str(PHOTO), cv2.IMREAD_COLOR)[:, :, ::-1])
    return list(moving_face_video([photo], "moving", n, 640, 480))


def video_frames(path: str, n: int) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(path)
    frames = []
    while len(frames) < n:
        ok, bgr = cap.read()
        if not ok:
            break
        small = cv2.resize(bgr, (640, 480), interpolation=cv2.INTER_AREA)
        frames.append(np.ascontiguousarray(small[:, :, ::-1]))
    cap.release()
    if not frames:
        sys.exit(f"cannot read frames from {path}")
    return frames


def summary(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    return {
        "mean": statistics.fmean(s),
        "p50": statistics.median(s),
        "p99": s[min(len(s) - 1, int(0.99 * len(s)))],
        "min": s[0],
    }


class GraphContender:
    """A shipped graph fed one frame per step (what facegraph.FaceMesh does)."""

    def __init__(self, name: str, frames: list[np.ndarray], mode: str) -> None:
        from facegraph import Graph, load_graph

        self.frames = frames
        self.graph = Graph(load_graph(name), mode=mode)  # type: ignore[arg-type]
        self.graph.start({})
        self.outputs: list[dict[str, Any]] = [{} for _ in frames]

    def step(self, i: int) -> float:
        t0 = time.perf_counter()
        out = self.graph.run_once({"image": self.frames[i]})
        ms = (time.perf_counter() - t0) * 1e3
        self.outputs[i] = out
        return ms

    def close(self) -> None:
        self.graph.close_all_inputs()
        self.graph.wait_until_done()


class LiteRtContender:
    """Only the model invocations a graph made on frame i: the mesh model on the crop of
    each of its ROIs, plus the detector when it ran. Crops are made outside the timing."""

    def __init__(self, graph: GraphContender) -> None:
        from facegraph.models import model_path
        from facegraph.models.inference import TfLiteModel

        self.graph = graph
        self.det = TfLiteModel(model_path("face_detection_short_range"))
        self.mesh = TfLiteModel(model_path("face_landmark_with_attention"))

    def step(self, i: int) -> float:
        from facegraph.calculators.face.image_to_tensor import image_to_tensor

        frame, out = self.graph.frames[i], self.graph.outputs[i]
        inputs = [
            (self.mesh, image_to_tensor(frame, r, 192, 192).tensor) for r in out.get("rois", [])
        ]
        if "detections" in out:
            det_in = image_to_tensor(frame, None, 128, 128, (-1.0, 1.0), "zero", True).tensor
            inputs.append((self.det, det_in))
        t0 = time.perf_counter()
        for model, x in inputs:
            model.run(x)
        return (time.perf_counter() - t0) * 1e3


MP_SERVER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import mediapipe as mp
    frames = np.load(sys.argv[1])
    meshes = {
        kind: mp.solutions.face_mesh.FaceMesh(
            static_image_mode=kind == "static", max_num_faces=1, refine_landmarks=True)
        for kind in ("tracking", "static")
    }
    print("ready", flush=True)
    for line in sys.stdin:
        kind, i = line.split()
        t0 = time.perf_counter()
        meshes[kind].process(frames[int(i)])
        print((time.perf_counter() - t0) * 1e3, flush=True)
    """
)


class MediaPipeServer:
    """MediaPipe 0.10.14 in its own venv, timing ``FaceMesh.process`` on request, so its
    frames interleave with ours and see the same machine load."""

    def __init__(self, python: Path, frames: list[np.ndarray], tmp: Path) -> None:
        path = tmp / "frames.npy"
        np.save(path, np.stack(frames))
        self.proc = subprocess.Popen(
            [str(python), "-c", MP_SERVER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        if self.stdout.readline().strip() != "ready":
            raise RuntimeError("mediapipe subprocess did not start")

    def step(self, kind: str, i: int) -> float:
        self.stdin.write(f"{kind} {i}\n")
        self.stdin.flush()
        return float(self.stdout.readline())

    def close(self) -> None:
        self.stdin.close()
        self.proc.wait(timeout=30)


def profiled_pass(name: str, frames: list[np.ndarray], mode: str) -> Any:
    from facegraph import Graph, load_graph

    graph = Graph(load_graph(name), mode=mode, profile=True)  # type: ignore[arg-type]
    graph.start({})
    for f in frames:
        graph.run_once({"image": f})
    stats = graph.stats()
    graph.close_all_inputs()
    graph.wait_until_done()
    return stats


def fmt(s: dict[str, float]) -> str:
    return (
        f"mean {s['mean']:6.2f}  p50 {s['p50']:6.2f}  p99 {s['p99']:6.2f}  min {s['min']:6.2f} ms"
    )


def node_table(stats: Any, n_frames: int) -> None:
    rows = sorted(stats.nodes, key=lambda s: -s.total_ms)
    print(f"    {'node':32s} {'calls':>6s} {'p50 ms':>8s} {'ms/frame':>9s}")
    for s in rows:
        if s.timed_calls:
            print(
                f"    {s.node:32s} {s.timed_calls:6d} {s.p50_ms:8.3f} {s.total_ms / n_frames:9.3f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", help="video file (resized to 640x480); default: synthetic")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mode", choices=("deterministic", "threads"), default="deterministic")
    ap.add_argument("--mediapipe", type=Path, default=MP_PYTHON, help="python of a mediapipe venv")
    ap.add_argument("--no-mediapipe", action="store_true")
    args = ap.parse_args()

    frames = video_frames(args.video, args.frames) if args.video else synthetic_frames(args.frames)
    source = args.video or f"synthetic moving face ({PHOTO.name})"
    print(f"{len(frames)} frames 640x480 from {source}; mode {args.mode}; repeat {args.repeat}")

    ours = {k: GraphContender(g, frames, args.mode) for k, g in GRAPHS.items()}
    litert = {k: LiteRtContender(g) for k, g in ours.items()}
    steps: dict[str, Callable[[int], float]] = {}
    for k in GRAPHS:
        steps[f"facegraph {k}"] = ours[k].step
    for k in GRAPHS:
        steps[f"litert {k}"] = litert[k].step
    with tempfile.TemporaryDirectory() as tmp:
        mp = None
        if not args.no_mediapipe and args.mediapipe.exists():
            try:
                mp = MediaPipeServer(args.mediapipe, frames, Path(tmp))
            except (OSError, RuntimeError) as exc:
                print(f"(no mediapipe baseline: {exc})")
        if mp is not None:
            for k in GRAPHS:
                steps[f"mediapipe {k}"] = functools.partial(mp.step, k)
        n = len(frames)
        # Solo: each contender alone, as a user runs it (first pass warms up).
        solo: dict[str, list[float]] = {name: [] for name in steps}
        for name, step in steps.items():
            for rep in range(1 + args.repeat):
                for i in range(n):
                    ms = step(i)
                    if rep:
                        solo[name].append(ms)
        # Interleaved: every contender on frame i before any goes to frame i + 1, so all
        # see the same machine load (they also evict each other's caches: slower, fairer).
        mixed: dict[str, list[float]] = {name: [] for name in steps}
        for rep in range(1 + args.repeat):
            for i in range(n):
                for name, step in steps.items():
                    ms = step(i)
                    if rep:
                        mixed[name].append(ms)
        if mp is not None:
            mp.close()
    info = {
        k: [(len(o.get("faces", [])), "detections" in o) for o in g.outputs]
        for k, g in ours.items()
    }
    for g in ours.values():
        g.close()

    print("\nper-frame ms: solo (each alone) | interleaved (same load for all)")
    for name in steps:
        print(f"  {name:20s} {fmt(summary(solo[name]))} | p50 {summary(mixed[name])['p50']:6.2f}")
    for k, name in GRAPHS.items():
        faces = sum(f for f, _ in info[k]) / n
        det_runs = sum(d for _, d in info[k])
        print(f"\n{name} ({k}): faces/frame {faces:.2f}; detector ran on {det_runs}/{n} frames")
        print("  per node (separate profiled pass):")
        node_table(profiled_pass(name, frames, args.mode), n)

    print("\nsummary (p50 ms/frame; ratios of p50s, solo / interleaved)")
    for k, target in (("tracking", 2.5), ("static", 3.8)):
        o, lr = summary(solo[f"facegraph {k}"]), summary(solo[f"litert {k}"])
        om, lm = summary(mixed[f"facegraph {k}"]), summary(mixed[f"litert {k}"])
        line = (
            f"  {k:9s} facegraph {o['p50']:5.2f} (target {target})  LiteRT alone "
            f"{lr['p50']:5.2f}  facegraph/LiteRT {o['p50'] / lr['p50']:.2f} / "
            f"{om['p50'] / lm['p50']:.2f}"
        )
        if mp is not None:
            m, mm = summary(solo[f"mediapipe {k}"]), summary(mixed[f"mediapipe {k}"])
            line += (
                f"  mediapipe {m['p50']:5.2f}  facegraph/mediapipe {o['p50'] / m['p50']:.2f} / "
                f"{om['p50'] / mm['p50']:.2f}"
            )
        print(line)


GRAPHS = {"tracking": "face_mesh", "static": "face_mesh_static"}


if __name__ == "__main__":
    main()
