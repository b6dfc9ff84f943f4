"""End to end in one YAML graph: video file → face_mesh → JSONL + overlay video.

The same wiring ``facegraph run face_mesh --input in.mp4 --output out.jsonl --render
out.mp4`` uses: MediaSource, the shipped face_mesh graph as a subgraph, LandmarksWriter,
Annotate and Render, with real models and a real (synthetic-face) video file.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from facegraph import Graph, graph_from_yaml, load_graph
from facegraph.app import synthetic
from facegraph.app.media_loop import FrameResult, faces_stream_of, run_frames
from facegraph.config import shipped_graphs
from facegraph.vision.live import LiveServer
from facegraph.vision.media import open_source
from facegraph.vision.render import VideoRenderer, open_renderer
from facegraph.vision.writers import LandmarksWriter

from tests.helpers import read_video_frames, skip_unless_ci

FIXTURES = Path(__file__).parent / "fixtures"

PIPELINE = """
side_inputs: {input: {}}
nodes:
  - calculator: MediaSource
    side_inputs: {INPUT: input}
    outputs: {IMAGE: image, FRAME_INFO: info}
  - calculator: face_mesh
    inputs: {IMAGE: image}
    outputs: {FACES: faces}
  - calculator: LandmarksWriter
    inputs: {FRAME_INFO: info, FACES: faces}
    options: {path: "%(jsonl)s"}
  - calculator: Annotate
    inputs: {IMAGE: image, FACES: faces}
    outputs: {IMAGE: drawn}
  - calculator: Render
    inputs: {IMAGE: drawn, FRAME_INFO: info}
    options: {path: "%(video)s"}
"""

if "face_mesh" not in shipped_graphs():
    skip_unless_ci("face_mesh graph not shipped", allow_module_level=True)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 frames of a gently moving face, then 2 frames without a face, as an MP4."""
    photo = np.ascontiguousarray(cv2.imread(str(FIXTURES / "faces" / "astronaut.png"))[:, :, ::-1])
    frames = list(synthetic.moving_face_video([photo], "moving", 60, 640, 480))[:8]
    frames += [synthetic.background(640, 480)] * 2
    path = tmp_path_factory.mktemp("clip") / "in.mp4"
    with VideoRenderer(path, fps=25) as renderer:
        for f in frames:
            renderer.write(f)
    return path


def reference_faces(clip: Path) -> dict[int, Any]:
    """face_mesh run directly on the decoded frames: timestamp → faces."""
    graph = Graph(load_graph("face_mesh"), mode="deterministic")
    got: dict[int, Any] = {}
    graph.observe("faces", lambda p: got.__setitem__(p.timestamp, p.value))
    graph.start()
    for frame in open_source(str(clip)):
        graph.add_packet("image", frame.image, frame.info.timestamp_us)
    graph.close_all_inputs()
    graph.wait_until_done(timeout=60)
    return got


@pytest.mark.parametrize("mode", ["threads", "deterministic"])
def test_video_to_jsonl_and_overlay_video(
    model_cache: Path, clip: Path, tmp_path: Path, mode: str
) -> None:
    jsonl, video = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    spec = graph_from_yaml(
        textwrap.dedent(PIPELINE % {"jsonl": jsonl.as_posix(), "video": video.as_posix()})
    )
    graph = Graph(spec, mode=mode)  # type: ignore[arg-type]
    graph.start({"input": str(clip)})
    graph.wait_until_done(timeout=120)

    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(10))
    assert [r["timestamp_us"] for r in records] == [i * 40_000 for i in range(10)]
    assert all(
        r["source"] == str(clip) and (r["width"], r["height"]) == (640, 480) for r in records
    )
    assert [len(r["faces"]) for r in records] == [1] * 8 + [0, 0]

    # The file holds exactly what the graph computed, frame by frame (3 decimals in px).
    expected = reference_faces(clip)
    for r in records[:8]:
        (face,) = expected[r["timestamp_us"]]
        got = np.array([[k["x"], k["y"], k["z"]] for k in r["faces"][0]["keypoints"]])
        np.testing.assert_allclose(got, face.pixels(640, 480), atol=6e-4)
        assert r["faces"][0]["score"] == pytest.approx(face.score, abs=1e-6)

    # The overlay video has every frame; the mesh is drawn where the face is.
    drawn = read_video_frames(video)
    assert len(drawn) == 10
    original = [f.image[:, :, ::-1] for f in open_source(str(clip))]
    box = records[0]["faces"][0]["box"]
    x0, y0, x1, y1 = (round(box[k]) for k in ("xMin", "yMin", "xMax", "yMax"))
    face_diff = np.abs(drawn[0][y0:y1, x0:x1].astype(int) - original[0][y0:y1, x0:x1]).mean()
    assert face_diff > 10  # the mesh lines (codec noise alone is ~1-2 levels)
    no_face_diff = np.abs(drawn[9].astype(int) - original[9]).mean()
    assert no_face_diff < 4  # frames without a face pass unchanged (up to re-encoding)


# -- the Python loop (run_frames) -----------------------------------------------------------------


def test_faces_stream_of_the_shipped_graphs() -> None:
    assert faces_stream_of(load_graph("face_mesh")) == "faces"
    assert faces_stream_of(load_graph("face_detection")) == "detections"


def test_run_frames_writes_renders_and_serves_every_frame(
    model_cache: Path, clip: Path, tmp_path: Path
) -> None:
    jsonl, video = tmp_path / "loop.jsonl", tmp_path / "loop.mp4"
    seen: list[FrameResult] = []
    spec = load_graph("face_mesh")
    with (
        open_source(str(clip)) as source,
        LandmarksWriter(jsonl) as writer,
        open_renderer(video, fps=source.fps) as renderer,
        LiveServer("127.0.0.1", 0) as server,
    ):
        graph = Graph(spec).start()
        n = run_frames(
            graph,
            source,
            faces_stream=faces_stream_of(spec),
            writer=writer,
            renderer=renderer,
            server=server,
            on_frame=seen.append,
        )
        graph.close_all_inputs()
        graph.wait_until_done(timeout=60)
        stats = server.stats()
    assert n == 10 and len(seen) == 10
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [len(r["faces"]) for r in records] == [1] * 8 + [0, 0]
    assert [len(s.faces) for s in seen] == [1] * 8 + [0, 0]
    assert stats["frames"] == 10 and stats["faces"] == 0
    assert cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT) == 10
    # The drawn frame differs from the input where the face is, not elsewhere.
    first = seen[0]
    assert first.drawn is not None
    assert (first.drawn != first.frame.image).any()
    np.testing.assert_array_equal(seen[9].drawn, seen[9].frame.image)


def test_run_frames_stops_at_max_frames_and_ctrl_c_keeps_a_complete_file(
    model_cache: Path, clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "limited.json"
    with open_source(str(clip)) as source, LandmarksWriter(out) as writer:
        graph = Graph(load_graph("face_mesh")).start()
        assert run_frames(graph, source, writer=writer, max_frames=3) == 3
        graph.cancel()
    assert [r["frame"] for r in json.loads(out.read_text())] == [0, 1, 2]

    def interrupt(result: FrameResult) -> None:
        if result.frame.info.index == 1:
            raise KeyboardInterrupt

    out = tmp_path / "interrupted.json"
    graph = Graph(load_graph("face_mesh")).start()
    with (
        pytest.raises(KeyboardInterrupt),
        open_source(str(clip)) as source,
        LandmarksWriter(out) as writer,
    ):
        run_frames(graph, source, writer=writer, on_frame=interrupt)
    graph.cancel()
    assert [r["frame"] for r in json.loads(out.read_text())] == [0, 1]
