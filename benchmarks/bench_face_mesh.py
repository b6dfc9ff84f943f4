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

"Pure LiteRT" is ``TfLiteModel.run`` alone on the crops the graph feeds the models:
tracking = mesh model per face + detector on the frames where it ran; static = detector
+ mesh per face. The graph/LiteRT ratio is what the rest of the pipeline costs (crops,
decoding, ROIs, scheduling).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
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


def time_graph(
    name: str, frames: list[np.ndarray], repeat: int, mode: str
) -> tuple[dict[str, float], Any, list[int]]:
    """Headline per-frame times (unprofiled), then a profiled pass for the node table.

    Also returns, per frame of the profiled pass, the number of faces, and whether the
    detector ran (from the graph's detections output) as the last element list."""
    from facegraph import Graph, load_graph

    spec = load_graph(name)
    graph = Graph(spec, mode=mode)  # type: ignore[arg-type]
    graph.start({})
    for f in frames:  # warm-up pass
        graph.run_once({"image": f})
    times: list[float] = []
    for _ in range(repeat):
        for f in frames:
            t0 = time.perf_counter()
            graph.run_once({"image": f})
            times.append((time.perf_counter() - t0) * 1e3)
    graph.close_all_inputs()
    graph.wait_until_done()

    profiled = Graph(spec, mode=mode, profile=True)  # type: ignore[arg-type]
    profiled.start({})
    info: list[int] = []
    for f in frames:
        out = profiled.run_once({"image": f})
        info.append(len(out.get("faces", [])) * 2 + ("detections" in out))
    stats = profiled.stats()
    profiled.close_all_inputs()
    profiled.wait_until_done()
    return summary(times), stats, info


def pure_litert(frames: list[np.ndarray], info: list[int], repeat: int) -> dict[str, float]:
    """Model time per frame for the same work the graph did (see module doc)."""
    from facegraph.calculators.face.detection import SHORT_RANGE
    from facegraph.calculators.face.image_to_tensor import image_to_tensor
    from facegraph.calculators.face.rois import detection_to_roi
    from facegraph.models import model_path
    from facegraph.models.inference import TfLiteModel

    det = TfLiteModel(model_path("face_detection_short_range"))
    mesh = TfLiteModel(model_path("face_landmark_with_attention"))
    det_in = image_to_tensor(frames[0], None, 128, 128, (-1.0, 1.0), "zero", True).tensor
    from facegraph.calculators.face.detection import postprocess_detections

    outs = list(det.run(det_in).values())
    d = postprocess_detections(outs[0], outs[1], SHORT_RANGE, np.eye(4, dtype=np.float32))
    roi = detection_to_roi(d[0], 640, 480) if d else None
    mesh_in = image_to_tensor(frames[0], roi, 192, 192).tensor
    for _ in range(20):
        det.run(det_in)
        mesh.run(mesh_in)
    det_ms, mesh_ms = [], []
    for _ in range(repeat * 50):
        t0 = time.perf_counter()
        det.run(det_in)
        t1 = time.perf_counter()
        mesh.run(mesh_in)
        t2 = time.perf_counter()
        det_ms.append((t1 - t0) * 1e3)
        mesh_ms.append((t2 - t1) * 1e3)
    d50, m50 = statistics.median(det_ms), statistics.median(mesh_ms)
    n = len(info)
    faces = sum(i // 2 for i in info) / n
    det_frac = sum(i % 2 for i in info) / n
    return {
        "detector_ms": d50,
        "mesh_ms": m50,
        "tracking_ms": faces * m50 + det_frac * d50,
        "static_ms": d50 + faces * m50,
    }


MP_SCRIPT = textwrap.dedent(
    """
    import json, statistics, sys, time
    import numpy as np
    import mediapipe as mp
    frames = np.load(sys.argv[1])
    repeat = int(sys.argv[2])
    res = {}
    for static in (False, True):
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=static, max_num_faces=1,
                                             refine_landmarks=True) as fm:
            for f in frames:
                fm.process(f)
            ms = []
            for _ in range(repeat):
                for f in frames:
                    t0 = time.perf_counter()
                    fm.process(f)
                    ms.append((time.perf_counter() - t0) * 1e3)
        s = sorted(ms)
        res["static" if static else "tracking"] = {
            "mean": statistics.fmean(s), "p50": statistics.median(s),
            "p99": s[min(len(s) - 1, int(0.99 * len(s)))], "min": s[0]}
    print(json.dumps(res))
    """
)


def mediapipe_times(python: Path, frames: list[np.ndarray], repeat: int) -> dict[str, Any] | None:
    if not python.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.npy"
        np.save(path, np.stack(frames))
        proc = subprocess.run(
            [str(python), "-c", MP_SCRIPT, str(path), str(repeat)],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        print(f"(mediapipe baseline failed: {proc.stderr.strip().splitlines()[-1:]})")
        return None
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


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

    results: dict[str, dict[str, float]] = {}
    infos: dict[str, list[int]] = {}
    for name in ("face_mesh", "face_mesh_static"):
        s, stats, info = time_graph(name, frames, args.repeat, args.mode)
        results[name], infos[name] = s, info
        faces = sum(i // 2 for i in info) / len(info)
        det_runs = sum(i % 2 for i in info)
        print(f"\n{name}: {fmt(s)}")
        print(f"  faces/frame {faces:.2f}; detector ran on {det_runs}/{len(info)} frames")
        node_table(stats, len(frames))

    pure = pure_litert(frames, infos["face_mesh"], args.repeat)
    print(
        f"\npure LiteRT (p50): detector {pure['detector_ms']:.2f} ms, attention mesh "
        f"{pure['mesh_ms']:.2f} ms -> tracking {pure['tracking_ms']:.2f}, "
        f"static {pure['static_ms']:.2f} ms/frame"
    )
    mp = None if args.no_mediapipe else mediapipe_times(args.mediapipe, frames, args.repeat)
    print("\nsummary (p50 ms/frame; ratios of p50s)")
    for name, key, target in (("face_mesh", "tracking", 2.5), ("face_mesh_static", "static", 3.8)):
        ours = results[name]["p50"]
        line = (
            f"  {key:9s} facegraph {ours:6.2f} (mean {results[name]['mean']:.2f}, target "
            f"{target})  pure LiteRT {pure[key + '_ms']:5.2f}  graph/LiteRT "
            f"{ours / pure[key + '_ms']:.2f}"
        )
        if mp is not None:
            theirs = mp[key]["p50"]
            line += f"  mediapipe {theirs:5.2f}  facegraph/mediapipe {ours / theirs:.2f}"
        print(line)


if __name__ == "__main__":
    main()
