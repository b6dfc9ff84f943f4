"""MediaPipe as a benchmark contender (``facegraph bench``): 0.10.14's legacy FaceMesh
(:class:`MediaPipeFaceMesh`) or the Tasks FaceLandmarker (:class:`MediaPipeTasksLandmarker`).

Used two ways:

- in-process, when ``mediapipe`` is importable;
- as a script run by another interpreter (a venv that has mediapipe), over a pipe:
  ``python mediapipe_worker.py FRAMES.npy STATIC MAX_FACES [TASK BLENDSHAPES MATRICES]``
  (with a ``.task`` path: the Tasks FaceLandmarker). It answers one JSON line per request
  line: ``run A B [INTERVAL_MS]`` times frames ``A..B-1`` (starts INTERVAL_MS apart,
  :class:`Pacer`); ``stats`` reports its peak RSS.

This file imports only numpy and mediapipe (never facegraph), so a foreign interpreter can
run it by path.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "MediaPipeFaceMesh",
    "MediaPipeTasksLandmarker",
    "Pacer",
    "fault_in",
    "main",
    "peak_rss_mb",
]


def fault_in(frames: np.ndarray) -> None:
    """Read one byte of every page of ``frames`` (a memory-mapped ``.npy``), so that no
    timed frame pays the page faults of its first read. MediaPipe copies each frame it is
    given: from pages not yet mapped that copy took 108 µs per 640×480 frame here, 43 µs
    from memory, a cost facegraph's frames (decoded in its own process) never pay."""
    flat = frames.reshape(-1).view(np.uint8)
    if flat.size:
        flat[::4096].max()


class Pacer:
    """Frame starts ``interval_s`` apart, as a camera delivers them (``facegraph bench
    --interval``). It lives here because this file must run without facegraph; the
    bench's own loop uses it too.

    :meth:`block` starts a block: its first frame waits a whole interval. :meth:`wait`
    sleeps until the next start (``interval_s`` after the previous one); a frame that
    overran starts at once. Between frames the process idles, as it does when fed by a
    camera: at 30 frames/s each frame then starts with cold caches and sleeping threads
    (on this 2-core VM that adds ~1 ms per frame to both contenders), a regime that
    frames fed back to back never show. ``interval_s`` None: no pacing (every call
    returns at once).
    """

    def __init__(
        self,
        interval_s: float | None,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval_s = interval_s
        self._clock, self._sleep = clock, sleep
        self._next = 0.0

    def block(self) -> None:
        if self.interval_s is not None:
            self._next = self._clock() + self.interval_s

    def wait(self) -> None:
        if self.interval_s is None:
            return
        now = self._clock()
        if self._next > now:
            self._sleep(self._next - now)
            now = self._clock()
        self._next = max(self._next, now) + self.interval_s


class MediaPipeFaceMesh:
    """``mp.solutions.face_mesh.FaceMesh`` (refine_landmarks=True) timed per frame."""

    def __init__(self, frames: Sequence[np.ndarray], static: bool, max_faces: int) -> None:
        import mediapipe as mp

        self.frames = frames
        self.version = str(getattr(mp, "__version__", "?"))
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static, max_num_faces=max_faces, refine_landmarks=True
        )

    def run(self, start: int, stop: int, interval_s: float | None = None) -> dict[str, Any]:
        """Process frames ``start..stop-1`` (paced by :class:`Pacer`): wall ms per frame,
        faces found, CPU ms."""
        ms: list[float] = []
        faces: list[int] = []
        pacer = Pacer(interval_s)
        pacer.block()
        cpu0 = time.process_time()
        for i in range(start, stop):
            frame = np.ascontiguousarray(self.frames[i])
            pacer.wait()
            t0 = time.perf_counter()
            result = self._mesh.process(frame)
            ms.append((time.perf_counter() - t0) * 1e3)
            found = result.multi_face_landmarks
            faces.append(len(found) if found else 0)
        return {"ms": ms, "faces": faces, "cpu_ms": (time.process_time() - cpu0) * 1e3}

    def close(self) -> None:
        self._mesh.close()


class MediaPipeTasksLandmarker:
    """Tasks ``FaceLandmarker`` (VIDEO mode, or IMAGE when ``static``) timed per frame.

    VIDEO timestamps advance 33 ms per frame; each ``run`` continues the same video."""

    def __init__(
        self,
        frames: Sequence[np.ndarray],
        static: bool,
        max_faces: int,
        task: str,
        blendshapes: bool = True,
        matrices: bool = True,
    ) -> None:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        self.frames = frames
        self.version = str(getattr(mp, "__version__", "?"))
        self._static = static
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=task),
            running_mode=vision.RunningMode.IMAGE if static else vision.RunningMode.VIDEO,
            num_faces=max_faces,
            output_face_blendshapes=blendshapes,
            output_facial_transformation_matrixes=matrices,
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self._next_ms = 0

    def run(self, start: int, stop: int, interval_s: float | None = None) -> dict[str, Any]:
        """Process frames ``start..stop-1`` (paced by :class:`Pacer`): wall ms per frame,
        faces found, CPU ms."""
        ms: list[float] = []
        faces: list[int] = []
        pacer = Pacer(interval_s)
        pacer.block()
        cpu0 = time.process_time()
        for i in range(start, stop):
            image = self._mp.Image(
                image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(self.frames[i])
            )
            pacer.wait()
            t0 = time.perf_counter()
            if self._static:
                result = self._landmarker.detect(image)
            else:
                result = self._landmarker.detect_for_video(image, self._next_ms)
                self._next_ms += 33
            ms.append((time.perf_counter() - t0) * 1e3)
            faces.append(len(result.face_landmarks))
        return {"ms": ms, "faces": faces, "cpu_ms": (time.process_time() - cpu0) * 1e3}

    def close(self) -> None:
        self._landmarker.close()


def peak_rss_mb() -> float:
    """This process's peak RSS in MiB: ``VmHWM`` of /proc/self/status (the high-water mark
    of this program's own memory), else ``ru_maxrss`` (on Linux that one also counts the
    parent's RSS at fork time, so a child started by a big process reports at least the
    parent's). The worker's and the bench's own (here because this file runs without
    facegraph)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str]) -> int:
    """Pipe server: see the module docstring (``argv`` after the script name)."""
    path, static, max_faces = argv[0], argv[1] == "1", int(argv[2])
    frames = np.load(path, mmap_mode="r")
    fault_in(frames)
    mesh: MediaPipeFaceMesh | MediaPipeTasksLandmarker
    if len(argv) > 3:
        mesh = MediaPipeTasksLandmarker(
            frames, static, max_faces, argv[3], argv[4] == "1", argv[5] == "1"
        )
    else:
        mesh = MediaPipeFaceMesh(frames, static, max_faces)
    print(json.dumps({"ready": True, "version": mesh.version}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "run":
            interval = float(words[3]) / 1e3 if len(words) > 3 else None
            reply = mesh.run(int(words[1]), int(words[2]), interval)
        elif words[0] == "stats":
            reply = {"peak_rss_mb": peak_rss_mb()}
        else:
            reply = {"error": f"unknown request {line.strip()!r}"}
        print(json.dumps(reply), flush=True)
    mesh.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
