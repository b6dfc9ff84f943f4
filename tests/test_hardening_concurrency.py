"""Hardening: concurrency gives the same results as sequential runs.

Several face-mesh graphs running at once in one process (threads mode, each fed from
its own thread), and one ``FaceMesh`` per thread in tracking mode. Inference is
deterministic (LiteRT, one thread per node), so results must match the sequential
runs exactly: the tolerance is 0.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from facegraph import FaceMesh, Graph, load_graph

FACES = Path(__file__).parent / "fixtures" / "faces"


def rgb(name: str) -> np.ndarray:
    image = cv2.imread(str(FACES / name))
    assert image is not None
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def clip(name: str, n: int = 6) -> list[np.ndarray]:
    """A short "video": the photo panned a few pixels per frame (exercises tracking)."""
    base = rgb(name)
    frames = []
    for i in range(n):
        m = np.float32([[1, 0, 3 * i], [0, 1, 2 * i]])
        frames.append(cv2.warpAffine(base, m, (base.shape[1], base.shape[0])))
    return frames


CLIPS = {name: clip(name) for name in ("astronaut.png", "Tom_Hanks_54745.png", "takeo.ppm")}


def mesh_run(frames: list[np.ndarray]) -> list[list[np.ndarray]]:
    with FaceMesh(max_num_faces=2) as mesh:
        return [[f.landmarks.copy() for f in mesh.process(frame)] for frame in frames]


def run_in_threads(jobs: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(jobs))

    def work(key: str, job: Callable[[], Any]) -> None:
        try:
            barrier.wait(10)
            results[key] = job()
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=item) for item in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    if errors:
        raise errors[0]
    return results


def same(a: list[list[np.ndarray]], b: list[list[np.ndarray]]) -> bool:
    return len(a) == len(b) and all(
        len(x) == len(y) and all(np.array_equal(p, q) for p, q in zip(x, y, strict=True))
        for x, y in zip(a, b, strict=True)
    )


def test_one_facemesh_per_thread_matches_sequential_runs() -> None:
    sequential = {name: mesh_run(frames) for name, frames in CLIPS.items()}
    assert all(any(faces) for faces in sequential.values())  # faces were found
    # Two threads per clip, all at once.
    jobs = {
        f"{name}#{k}": (lambda frames=frames: mesh_run(frames))
        for name, frames in CLIPS.items()
        for k in range(2)
    }
    concurrent = run_in_threads(jobs)
    for key, result in concurrent.items():
        assert same(result, sequential[key.split("#")[0]]), key


def graph_run(frames: list[np.ndarray], mode: str) -> list[list[np.ndarray]]:
    graph = Graph(load_graph("face_mesh_static"), mode=mode)  # type: ignore[arg-type]
    got: dict[int, list[np.ndarray]] = {}
    graph.observe("faces", lambda p: got.__setitem__(p.timestamp, [f.points for f in p.value]))
    with graph.start({"num_faces": 2}):
        for i, frame in enumerate(frames):
            graph.add_packet("image", frame, timestamp=i * 33_333)
    return [got.get(i * 33_333, []) for i in range(len(frames))]


def test_several_graphs_in_one_process_match_sequential_runs() -> None:
    sequential = {name: graph_run(frames, "deterministic") for name, frames in CLIPS.items()}
    assert all(any(faces) for faces in sequential.values())
    jobs = {
        name: (lambda frames=frames: graph_run(frames, "threads")) for name, frames in CLIPS.items()
    }
    concurrent = run_in_threads(jobs)
    for name, result in concurrent.items():
        assert same(result, sequential[name]), name
