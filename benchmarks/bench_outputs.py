"""Cost of what ``facegraph run`` writes, each against its baseline in the same run.

    python benchmarks/bench_outputs.py [--blocks 5]

1. ``--render out.mp4``: H.264 through PyAV (libx264, CRF 20, veryfast) vs OpenCV's mp4v,
   on the 125 frames of the bundled sample (400x300), in alternating blocks; ms per frame
   and file size.
2. ``--output out.jsonl``: a record with every face_mesh output stream (faces,
   detections, rois) vs faces only, on the graph's real outputs for the sample; µs per
   record.

Prints medians over the blocks, their ratio and the load average (other work on the
machine makes both sides slower alike, the ratio less so).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=5, help="alternating blocks per side")
    args = ap.parse_args()

    from facegraph import Graph, load_graph
    from facegraph.app.runner import sample_video
    from facegraph.vision.media import open_source
    from facegraph.vision.render import VideoRenderer
    from facegraph.vision.writers import LandmarksWriter

    print(_load())
    with sample_video() as path, open_source(str(path)) as source:
        frames = list(source)
    images = [f.image for f in frames]

    # -- 1. video codecs --------------------------------------------------------------
    times: dict[str, list[float]] = {"h264": [], "mp4v": []}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.blocks):
            for codec in ("mp4v", "h264"):
                out = Path(tmp) / f"{codec}.mp4"
                t0 = time.perf_counter()
                with VideoRenderer(out, fps=25, fourcc=codec) as renderer:
                    for image in images:
                        renderer.write(image)
                times[codec].append((time.perf_counter() - t0) / len(images) * 1e3)
                sizes[codec] = out.stat().st_size
    h, m = statistics.median(times["h264"]), statistics.median(times["mp4v"])
    print(
        f"render {len(images)} frames {images[0].shape[1]}x{images[0].shape[0]}: "
        f"H.264 {h:.2f} ms/frame ({sizes['h264'] / 1e3:.0f} kB), "
        f"mp4v {m:.2f} ms/frame ({sizes['mp4v'] / 1e3:.0f} kB); H.264/mp4v time {h / m:.2f}x, "
        f"size {sizes['h264'] / sizes['mp4v']:.2f}x"
    )

    # -- 2. JSONL records -------------------------------------------------------------
    spec = load_graph("face_mesh")
    with Graph(spec).start() as graph:
        outputs = [graph.run_once({"image": f.image}) for f in frames]
    rec: dict[str, list[float]] = {"all": [], "faces": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.blocks):
            for kind in ("faces", "all"):
                with LandmarksWriter(Path(tmp) / f"{kind}.jsonl") as writer:
                    t0 = time.perf_counter()
                    for frame, out in zip(frames, outputs, strict=True):
                        streams = (
                            {"detections": out.get("detections"), "rois": out.get("rois")}
                            if kind == "all"
                            else None
                        )
                        writer.write(frame.info, out.get("faces"), streams)
                    rec[kind].append((time.perf_counter() - t0) / len(frames) * 1e6)
    a, f = statistics.median(rec["all"]), statistics.median(rec["faces"])
    print(f"JSONL record: all streams {a:.0f} us, faces only {f:.0f} us; ratio {a / f:.2f}x")
    print(_load())


if __name__ == "__main__":
    main()
