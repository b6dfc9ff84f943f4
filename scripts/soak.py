"""Soak test: loop a video through the face_mesh graph for a long time; watch RSS and CPU.

Documented command (not a CI test; CI runs a ~90 s variant, tests/test_hardening_soak.py)::

    python scripts/soak.py --minutes 30                 # synthetic clip
    python scripts/soak.py --minutes 30 --video clip.mp4 --interval 60

Each pass re-opens the video (``open_source``), so the decoder, the graph's tracking
loop and the model runners are all exercised for the whole run. Every ``--interval``
seconds one line gives frames, FPS, process CPU time per frame and RSS (``VmRSS`` from
``/proc/self/status``). At the end: RSS after warm-up and at the end, FPS and CPU ms/frame
of the first and last thirds. The exit status is 1 when RSS grew by more than
``--max-growth-mb`` after warm-up or the last third's CPU time per frame is above
``--max-cpu-ratio`` times the first third's.

Why CPU time and not FPS for the verdict: a slowdown that comes from the pipeline (a
queue, cache or list that grows) costs more CPU per frame, while FPS also drops whenever
another process takes the cores, which on a shared machine says nothing about us (the
FPS criterion failed here once at 0.795× under other load). Process CPU time counts all
our threads (LiteRT's, the scheduler's) and barely moves with other load.

Without ``--video`` a 4-second 640x480 clip of a test photo panning and zooming is
written to a temporary directory (mp4v, as OpenCV writes it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

FACE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "faces" / "astronaut.png"


def rss_mb() -> float:
    """Current resident set size in MB (``/proc/self/status``; peak RSS elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_clip(path: Path, seconds: float = 4.0, fps: float = 25.0) -> Path:
    """A clip of the test photo moving and zooming, so tracking follows a moving face."""
    import cv2
    import numpy as np

    face = cv2.imread(str(FACE))
    if face is None:
        raise SystemExit(f"cannot read {FACE}")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    if not writer.isOpened():
        raise SystemExit(f"cannot write {path}")
    n = int(seconds * fps)
    for i in range(n):
        phase = 2 * np.pi * i / n
        scale = 0.75 + 0.1 * np.sin(phase)
        m = np.float32(
            [[scale, 0, 60 + 40 * np.cos(phase)], [0, scale, 40 + 20 * np.sin(2 * phase)]]
        )
        writer.write(cv2.warpAffine(face, m, (640, 480), borderMode=cv2.BORDER_REPLICATE))
    writer.release()
    return path


@dataclass
class Interval:
    """One reporting interval."""

    end_s: float
    frames: int
    fps: float
    rss_mb: float
    faces: int
    #: Process CPU time (all threads) per frame in this interval.
    cpu_ms_per_frame: float = 0.0


@dataclass
class SoakResult:
    seconds: float
    frames: int
    passes: int
    warmup_rss_mb: float
    end_rss_mb: float
    intervals: list[Interval] = field(default_factory=list)

    @property
    def growth_mb(self) -> float:
        return self.end_rss_mb - self.warmup_rss_mb

    def fps_thirds(self) -> tuple[float, float]:
        """Mean FPS of the first and the last third of the intervals."""
        return self._thirds([iv.fps for iv in self.intervals])

    def cpu_thirds(self) -> tuple[float, float]:
        """Mean CPU ms/frame of the first and the last third of the intervals."""
        return self._thirds([iv.cpu_ms_per_frame for iv in self.intervals])

    @staticmethod
    def _thirds(values: list[float]) -> tuple[float, float]:
        k = max(1, len(values) // 3)
        return sum(values[:k]) / k, sum(values[-k:]) / k


def soak(
    video: str,
    seconds: float,
    *,
    interval: float = 60.0,
    warmup: float = 10.0,
    report: Callable[[Interval], object] | None = None,
) -> SoakResult:
    """Loop ``video`` through ``FaceMesh`` (the face_mesh graph) for ``seconds``."""
    from facegraph import FaceMesh
    from facegraph.vision.media import open_source

    frames = passes = 0
    warmup_rss: float | None = None
    intervals: list[Interval] = []
    with FaceMesh() as mesh:
        start = time.monotonic()  # after loading the models: they are not steady state
        next_report = start + interval
        last_frames, last_time, faces_in_interval = 0, start, 0
        last_cpu = time.process_time()
        while time.monotonic() - start < seconds:
            passes += 1
            with open_source(video) as source:
                for frame in source:
                    faces_in_interval += len(mesh.process(frame.image))
                    frames += 1
                    now = time.monotonic()
                    if warmup_rss is None and now - start >= warmup:
                        warmup_rss = rss_mb()
                    if now >= next_report:
                        cpu = time.process_time()
                        iv = Interval(
                            end_s=round(now - start, 1),
                            frames=frames - last_frames,
                            fps=round((frames - last_frames) / (now - last_time), 2),
                            rss_mb=round(rss_mb(), 1),
                            faces=faces_in_interval,
                            cpu_ms_per_frame=round(
                                (cpu - last_cpu) * 1e3 / max(1, frames - last_frames), 3
                            ),
                        )
                        intervals.append(iv)
                        if report is not None:
                            report(iv)
                        last_frames, last_time, faces_in_interval = frames, now, 0
                        last_cpu = cpu
                        next_report += interval
                    if now - start >= seconds:
                        break
    end_rss = rss_mb()
    return SoakResult(
        seconds=round(time.monotonic() - start, 1),
        frames=frames,
        passes=passes,
        warmup_rss_mb=round(warmup_rss if warmup_rss is not None else end_rss, 1),
        end_rss_mb=round(end_rss, 1),
        intervals=intervals,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--video", help="video to loop (default: a generated 4 s clip)")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds per report line")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before RSS baseline")
    parser.add_argument("--max-growth-mb", type=float, default=30.0)
    parser.add_argument("--max-cpu-ratio", type=float, default=1.25)
    parser.add_argument("--json", help="also write the result as JSON to this file")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or str(make_clip(Path(tmp) / "soak_clip.mp4"))
        print(f"soak: {video} for {args.minutes} min, pid {os.getpid()}", flush=True)
        print(f"start RSS {rss_mb():.1f} MB", flush=True)

        def line(iv: Interval) -> None:
            print(
                f"t={iv.end_s:7.1f}s  frames={iv.frames:6d}  fps={iv.fps:6.1f}  "
                f"cpu={iv.cpu_ms_per_frame:6.2f} ms/frame  faces={iv.faces:6d}  "
                f"rss={iv.rss_mb:7.1f} MB",
                flush=True,
            )

        result = soak(
            video, args.minutes * 60, interval=args.interval, warmup=args.warmup, report=line
        )
    first, last = result.fps_thirds()
    cpu_first, cpu_last = result.cpu_thirds()
    print(
        f"done: {result.frames} frames in {result.seconds} s ({result.passes} passes); RSS "
        f"after warm-up {result.warmup_rss_mb} MB, at end {result.end_rss_mb} MB "
        f"(growth {result.growth_mb:+.1f} MB); CPU ms/frame first third {cpu_first:.2f}, "
        f"last third {cpu_last:.2f}; FPS first third {first:.1f}, last third {last:.1f}",
        flush=True,
    )
    if args.json:
        from facegraph.atomic_files import describe_os_error, write_whole

        summary = {"fps_first_third": first, "fps_last_third": last}
        summary |= {"cpu_ms_first_third": cpu_first, "cpu_ms_last_third": cpu_last}
        try:  # whole: an earlier result there is only replaced by a complete one
            write_whole(args.json, json.dumps({**asdict(result), **summary}))
        except OSError as exc:
            print(f"error: cannot write {args.json}: {describe_os_error(exc)}", file=sys.stderr)
            return 2
    ok = result.growth_mb < args.max_growth_mb and cpu_last <= args.max_cpu_ratio * cpu_first
    if not ok:
        print("FAIL: memory grew or CPU time per frame rose beyond the tolerance", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
