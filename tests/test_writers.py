"""Landmark output files: JSONL schema and per-line flush, atomic .json, stdout, the node."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from facegraph import Graph
from facegraph.config import graph_from_yaml
from facegraph.vision.face.types import Detection, FaceLandmarks
from facegraph.vision.media import FrameInfo
from facegraph.vision.writers import LandmarksWriter, OutputError, detection_to_dict, face_to_dict

from tests.helpers import astronaut_detection, astronaut_face

FIXTURES = Path(__file__).parent / "fixtures"
REGIONS = {
    "lips",
    "leftEye",
    "rightEye",
    "leftEyebrow",
    "rightEyebrow",
    "leftIris",
    "rightIris",
    "faceOval",
}


@pytest.fixture(scope="module", name="astronaut_face")
def astronaut_face_fixture() -> FaceLandmarks:
    """MediaPipe 0.10.14's 478 landmarks on astronaut.png (512x512), from the fixtures."""
    return astronaut_face(score=0.987654321)


@pytest.fixture(scope="module", name="astronaut_detection")
def astronaut_detection_fixture() -> Detection:
    return astronaut_detection(score=0.93)


def info(i: int, w: int = 512, h: int = 512) -> FrameInfo:
    return FrameInfo(i, i * 40_000, "clip.mp4", w, h)


def check_face_schema(face: dict, landmarks: FaceLandmarks, w: int, h: int) -> None:
    # trackId: only for a face that came through a tracker (FaceLandmarks.track_id)
    expected_keys = {"score", "box", "keypoints"} | (
        {"trackId"} if landmarks.track_id is not None else set()
    )
    assert set(face) == expected_keys
    if landmarks.track_id is not None:
        assert face["trackId"] == landmarks.track_id
    assert set(face["box"]) == {"xMin", "xMax", "yMin", "yMax", "width", "height"}
    kps = face["keypoints"]
    assert len(kps) == len(landmarks) == 478
    px = np.array([[k["x"], k["y"], k["z"]] for k in kps])
    expected = landmarks.points.astype(np.float64) * [w, h, w]
    np.testing.assert_allclose(px, expected, atol=6e-4)  # 3 decimals in pixels
    assert {k["name"] for k in kps if "name" in k} == REGIONS
    assert all(set(k) <= {"x", "y", "z", "name"} for k in kps)
    box = face["box"]
    assert box["xMin"] == pytest.approx(px[:, 0].min(), abs=1e-3)
    assert box["yMax"] == pytest.approx(px[:, 1].max(), abs=1e-3)
    assert box["width"] == pytest.approx(box["xMax"] - box["xMin"], abs=2e-3)


def test_jsonl_one_object_per_frame_in_the_seed_format(
    tmp_path: Path, astronaut_face: FaceLandmarks
) -> None:
    out = tmp_path / "out.jsonl"
    with LandmarksWriter(out) as writer:
        writer.write(info(0), [astronaut_face])
        writer.write(info(1), [])
        writer.write(info(2), None)  # no packet at this frame
    lines = out.read_text().splitlines()
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    assert records[0]["frame"] == 0 and records[0]["timestamp_us"] == 0
    assert {k: records[1][k] for k in ("frame", "timestamp_us", "source", "width", "height")} == {
        "frame": 1,
        "timestamp_us": 40_000,
        "source": "clip.mp4",
        "width": 512,
        "height": 512,
    }
    assert records[1]["faces"] == [] and records[2]["faces"] == []
    (face,) = records[0]["faces"]
    assert face["score"] == pytest.approx(0.987654, abs=1e-6)
    check_face_schema(face, astronaut_face, 512, 512)


def test_jsonl_lines_are_flushed_to_a_temporary_and_replace_the_file_at_close(
    tmp_path: Path, astronaut_face: FaceLandmarks
) -> None:
    out = tmp_path / "live.jsonl"
    out.write_text('{"previous": "run"}\n')
    writer = LandmarksWriter(out)
    writer.write(info(0), [astronaut_face])
    writer.write(info(1), [])
    # Read through another handle while the writer is still open: every line is flushed
    # to the hidden temporary, and the earlier file is untouched until the end.
    (temp,) = [p for p in tmp_path.iterdir() if p.name.startswith(".live.jsonl.")]
    assert [json.loads(line)["frame"] for line in temp.read_text().splitlines()] == [0, 1]
    assert out.read_text() == '{"previous": "run"}\n'
    writer.close()
    assert [json.loads(line)["frame"] for line in out.read_text().splitlines()] == [0, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.jsonl"]


def test_json_is_one_array_written_atomically(
    tmp_path: Path, astronaut_face: FaceLandmarks
) -> None:
    out = tmp_path / "out.json"
    out.write_text('"previous run"')
    writer = LandmarksWriter(out)
    writer.write(info(0), [astronaut_face])
    writer.write(info(1), [])
    assert out.read_text() == '"previous run"'  # untouched until the end
    writer.close()
    data = json.loads(out.read_text())
    assert isinstance(data, list) and [r["frame"] for r in data] == [0, 1]
    check_face_schema(data[0]["faces"][0], astronaut_face, 512, 512)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temp file left
    # Same permissions as any other new output file (the temporary file's are kept).
    LandmarksWriter(tmp_path / "plain.jsonl").close()
    assert out.stat().st_mode == (tmp_path / "plain.jsonl").stat().st_mode


def test_json_is_complete_after_ctrl_c(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    with pytest.raises(KeyboardInterrupt), LandmarksWriter(out) as writer:
        writer.write(info(0), [])
        raise KeyboardInterrupt
    assert [r["frame"] for r in json.loads(out.read_text())] == [0]


def test_empty_json_output_is_an_empty_array(tmp_path: Path) -> None:
    out = tmp_path / "none.json"
    LandmarksWriter(out).close()
    assert json.loads(out.read_text()) == []


def test_dash_writes_jsonl_to_stdout(astronaut_face: FaceLandmarks) -> None:
    stream = io.StringIO()
    with LandmarksWriter("-", stdout=stream) as writer:
        writer.write(info(0), [astronaut_face])
        writer.write(info(1), [])
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == [0, 1]


def test_dash_defaults_to_sys_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    with LandmarksWriter("-") as writer:
        writer.write(info(3), [])
    assert json.loads(capsys.readouterr().out)["frame"] == 3


def test_unusable_output_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"\.jsonl.*\.json"):
        LandmarksWriter(tmp_path / "out.csv")
    with pytest.raises(OutputError, match="does not exist"):
        LandmarksWriter(tmp_path / "missing" / "out.jsonl")
    (tmp_path / "a.jsonl").symlink_to("b.jsonl")
    (tmp_path / "b.jsonl").symlink_to("a.jsonl")
    with pytest.raises(OutputError, match=r"a\.jsonl: Too many levels of symbolic links"):
        LandmarksWriter(tmp_path / "a.jsonl")
    assert (tmp_path / "a.jsonl").readlink() == Path("b.jsonl")  # the loop is left alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "b.jsonl"]


def test_a_symbolic_link_is_written_through(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    link = tmp_path / "faces.jsonl"
    link.symlink_to(Path("results") / "faces.jsonl")  # dangling: the file is not there yet
    for frame in (0, 1):  # the second run replaces the first's file, through the link
        with LandmarksWriter(link) as writer:
            writer.write(info(frame), [])
        assert link.is_symlink()
        assert json.loads((tmp_path / "results" / "faces.jsonl").read_text())["frame"] == frame
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["faces.jsonl"]


def test_a_link_retargeted_during_a_run_does_not_move_the_output(tmp_path: Path) -> None:
    """The output lands in the file the link named when the writer opened, beside which
    its temporary is. Following the link again at close would move it across file
    systems (failing, and losing the run's output) or over a file the run never chose."""
    for folder in ("first", "second"):
        (tmp_path / folder).mkdir()
    (tmp_path / "second" / "faces.jsonl").write_text("kept\n")
    link = tmp_path / "faces.jsonl"
    link.symlink_to(Path("first") / "faces.jsonl")
    with LandmarksWriter(link) as writer:
        writer.write(info(0), [])
        link.unlink()
        link.symlink_to(Path("second") / "faces.jsonl")
    assert json.loads((tmp_path / "first" / "faces.jsonl").read_text())["frame"] == 0
    assert (tmp_path / "second" / "faces.jsonl").read_text() == "kept\n"
    assert sorted(p.name for p in (tmp_path / "first").iterdir()) == ["faces.jsonl"]


def test_face_dict_in_pixels_for_non_square_images(astronaut_face: FaceLandmarks) -> None:
    d = face_to_dict(astronaut_face, 640, 480, digits=None)
    check_face_schema(d, astronaut_face, 640, 480)
    full = np.array([[k["x"], k["y"], k["z"]] for k in d["keypoints"]])
    np.testing.assert_array_equal(full, astronaut_face.pixels(640, 480).astype(np.float64))


def test_detections_are_written_with_named_keypoints(
    tmp_path: Path, astronaut_detection: Detection
) -> None:
    d = detection_to_dict(astronaut_detection, 512, 512)
    assert [k["name"] for k in d["keypoints"]] == [
        "rightEye",
        "leftEye",
        "noseTip",
        "mouthCenter",
        "rightEarTragion",
        "leftEarTragion",
    ]
    assert d["box"]["xMin"] == pytest.approx(astronaut_detection.xmin * 512, abs=1e-3)
    assert d["box"]["width"] == pytest.approx(astronaut_detection.width * 512, abs=1e-3)
    assert d["keypoints"][2]["x"] == pytest.approx(
        float(astronaut_detection.keypoints[2, 0]) * 512, abs=1e-3
    )
    out = tmp_path / "det.jsonl"
    with LandmarksWriter(out) as writer:
        writer.write(info(0), [astronaut_detection])
    assert json.loads(out.read_text())["faces"][0]["score"] == pytest.approx(0.93)


def test_writing_something_that_is_not_a_face_is_a_type_error(tmp_path: Path) -> None:
    with LandmarksWriter(tmp_path / "x.jsonl") as writer, pytest.raises(TypeError, match="int"):
        writer.write(info(0), [42])


@pytest.mark.parametrize("mode", ["deterministic", "threads"])
def test_landmarks_writer_node_writes_every_frame_with_empty_faces_when_absent(
    tmp_path: Path, astronaut_face: FaceLandmarks, mode: str
) -> None:
    out = tmp_path / "node.jsonl"
    spec = graph_from_yaml(
        textwrap.dedent(
            f"""
            inputs: [info, faces]
            nodes:
              - calculator: LandmarksWriter
                inputs: {{FRAME_INFO: info, FACES: faces}}
                options: {{path: "{out.as_posix()}"}}
            """
        )
    )
    graph = Graph(spec, mode=mode)  # type: ignore[arg-type]
    graph.start()
    for i in range(3):
        graph.add_packet("info", info(i), i * 40_000)
    graph.add_packet("faces", [astronaut_face], 40_000)  # a face on frame 1 only
    graph.close_all_inputs()
    graph.wait_until_done(timeout=30)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame"] for r in records] == [0, 1, 2]
    assert [len(r["faces"]) for r in records] == [0, 1, 0]
    check_face_schema(records[1]["faces"][0], astronaut_face, 512, 512)


def test_face_dict_matches_face_landmarks_to_dict(astronaut_face: FaceLandmarks) -> None:
    # The writer's fast path must stay identical to the face type's own conversion.
    full = face_to_dict(astronaut_face, 640, 480, digits=None)
    reference = astronaut_face.to_dict(640, 480)
    assert full["keypoints"] == reference["keypoints"]
    assert full["box"] == reference["box"]


def test_face_mesh_facade_results_are_written_like_graph_faces(
    tmp_path: Path, model_cache: Path
) -> None:
    import cv2
    from facegraph import FaceMesh

    rgb = np.ascontiguousarray(cv2.imread(str(FIXTURES / "faces" / "astronaut.png"))[:, :, ::-1])
    with FaceMesh(static_image_mode=True) as mesh:
        faces = mesh.process(rgb)
    assert len(faces) == 1
    out = tmp_path / "facade.jsonl"
    with LandmarksWriter(out) as writer:
        writer.write(info(0), faces)
    (face,) = json.loads(out.read_text())["faces"]
    check_face_schema(face, faces[0].raw, 512, 512)
    assert face["score"] == pytest.approx(faces[0].score, abs=1e-6)
