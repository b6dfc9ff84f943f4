"""What `facegraph run` writes and refuses, as a user runs it (real subprocesses, real
models): every output stream under its name, user types through encoders, faces drawn
from any stream, side packets checked before anything starts, stable track ids."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.cli_helpers import facegraph

FIXTURES = Path(__file__).parent / "fixtures"


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- every output stream --------------------------------------------------------------------


def test_every_output_stream_is_written_under_its_name(tmp_path: Path, model_cache: Path) -> None:
    out = tmp_path / "out.jsonl"
    r = facegraph("run", "face_mesh", "--input", "sample", "--output", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    recs = records(out)
    assert len(recs) == 125
    assert all({"faces", "detections", "rois"} <= set(rec) for rec in recs)
    # the detector runs on the first frame only (then the face is tracked)
    assert recs[0]["detections"][0]["box"]["width"] > 50
    assert all(rec["detections"] is None for rec in recs[1:])
    roi = recs[10]["rois"][0]
    assert set(roi) == {"xCenter", "yCenter", "width", "height", "rotation", "trackId"}
    assert 0 < roi["xCenter"] < 1 and roi["trackId"] == recs[10]["faces"][0]["trackId"]


def test_streams_option_selects_and_checks_names(tmp_path: Path, model_cache: Path) -> None:
    r = facegraph(
        "run", "face_mesh", "--input", "sample", "--output", "-", "--max-frames", "3",
        "--streams", "rois", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [sorted(rec) for rec in lines] == [
        ["frame", "height", "rois", "source", "timestamp_us", "width"]
    ] * 3
    bad = facegraph("run", "face_mesh", "--input", "sample", "--streams", "face", cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1] == (
        "error: --streams: graph 'face_mesh' has no output stream 'face' (did you mean "
        "'faces'?); its outputs: faces, detections, rois, blendshapes, geometry"
    )


THINGS = """
from dataclasses import dataclass

from facegraph import Calculator, CalculatorContext, Input, Output
from facegraph.vision.encoders import json_encoder


@dataclass
class Opaque:
    size: int


@dataclass
class Known:
    size: int


@json_encoder(Known)
def _known(value, ctx):
    return {"size": value.size, "frame_width": ctx.width}


class Measure(Calculator):
    IMAGE = Input("IMAGE")
    OPAQUE = Output("OPAQUE", optional=True)
    KNOWN = Output("KNOWN", optional=True)

    def process(self, ctx: CalculatorContext) -> None:
        image = ctx.get(self.IMAGE)
        if ctx.count(self.OPAQUE):
            ctx.emit(self.OPAQUE, Opaque(image.shape[0]))
        if ctx.count(self.KNOWN):
            ctx.emit(self.KNOWN, Known(image.shape[0]))
"""


def _graph(tmp_path: Path, output: str) -> Path:
    (tmp_path / "things.py").write_text(THINGS)
    graph = tmp_path / f"{output}.yaml"
    graph.write_text(
        textwrap.dedent(
            f"""\
            inputs: [image]
            outputs: [{output}]
            nodes:
              - calculator: things:Measure
                inputs: {{IMAGE: image}}
                outputs: {{{output.upper()}: {output}}}
            """
        )
    )
    return graph


def test_user_types_encode_through_a_registered_encoder(tmp_path: Path) -> None:
    graph = _graph(tmp_path, "known")
    out = tmp_path / "known.jsonl"
    # run from another folder: the module is found beside the graph file
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = facegraph(
        "run", str(graph), "--allow-imports", "--input", "sample", "--max-frames", "4",
        "--output", str(out), cwd=elsewhere,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert [rec["known"] for rec in records(out)] == [{"size": 300, "frame_width": 400}] * 4


def test_an_unencodable_value_is_one_line_at_the_first_frame(tmp_path: Path) -> None:
    graph = _graph(tmp_path, "opaque")
    out = tmp_path / "opaque.jsonl"
    r = facegraph(
        "run", str(graph), "--allow-imports", "--input", "sample", "--output", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith(
        "error: output stream 'opaque': cannot write a things.Opaque as JSON; give it a "
        "to_dict() method or register an encoder with @facegraph.vision.encoders.json_encoder"
    )
    # Stopped at the first frame: a run that completed no frame writes no file.
    assert not out.exists()


def test_render_draws_faces_of_any_output_stream(tmp_path: Path, model_cache: Path) -> None:
    graph = tmp_path / "renamed.yaml"
    graph.write_text(
        "inputs: [image]\noutputs: [my_faces]\nnodes:\n"
        "  - {calculator: face_mesh_static, inputs: {IMAGE: image}, outputs: {FACES: my_faces}}\n"
    )
    photo = FIXTURES / "faces" / "astronaut.png"
    r = facegraph(
        "run", str(graph), "--input", str(photo), "--render", "drawn.png",
        "--output", "faces.jsonl", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    (face,) = records(tmp_path / "faces.jsonl")[0]["my_faces"]
    drawn, original = cv2.imread(str(tmp_path / "drawn.png")), cv2.imread(str(photo))
    changed = np.any(drawn != original, axis=2)
    assert changed.sum() > 5000
    xs = np.nonzero(changed)[1]
    box = face["box"]
    assert box["xMin"] - 10 <= xs.min() and xs.max() <= box["xMax"] + 10


# -- side packets -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "message"),
    [
        (
            "detector=yunett",
            "side packet 'detector' must be one of face_landmarker, full_range, short_range, "
            "yunet, got 'yunett'; did you mean 'yunet'?",
        ),
        ("num_faces=two", "side packet 'num_faces' must be an int >= 1, got 'two'"),
        ("num_faces=0", "side packet 'num_faces' must be an int >= 1, got 0"),
        (
            "min_detection_confidence=2",
            "side packet 'min_detection_confidence' must be a number in [0, 1], got 2",
        ),
        ("with_attention=maybe", "side packet 'with_attention' must be true or false, got 'maybe'"),
    ],
)
def test_bad_side_packets_are_one_line_before_anything_runs(
    tmp_path: Path, side: str, message: str
) -> None:
    r = facegraph(
        "run", "face_mesh", "--input", "sample", "--output", "o.jsonl", "--side", side,
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: --side: {message}"
    assert not (tmp_path / "o.jsonl").exists()  # nothing was opened


def test_facemesh_raises_valueerror_with_the_same_message(model_cache: Path) -> None:
    import facegraph

    with pytest.raises(ValueError) as caught:
        facegraph.FaceMesh(detector="yunett")
    assert str(caught.value) == (
        "side packet 'detector' must be one of face_landmarker, full_range, short_range, "
        "yunet, got 'yunett'; did you mean 'yunet'?"
    )


def test_side_input_rules_in_a_graph_file_are_checked(tmp_path: Path) -> None:
    from facegraph import Graph, graph_from_yaml
    from facegraph.side_packets import SidePacketError

    spec = graph_from_yaml(
        textwrap.dedent(
            """\
            inputs: [x]
            outputs: [y]
            side_inputs:
              mode: {default: fast, choices: [fast, accurate]}
              gain: {default: 1.0, type: float, min: 0, max: 10}
            nodes:
              - {calculator: PassThrough, inputs: {IN: x}, outputs: {OUT: y}}
            """
        )
    )
    wrong = r"'mode' must be one of fast, accurate, got 'acurate'; did you mean 'accurate'\?"
    with pytest.raises(SidePacketError, match=wrong):
        Graph(spec).start({"mode": "acurate"})
    with pytest.raises(SidePacketError, match=r"'gain' must be a number in \[0, 10\], got 11"):
        Graph(spec).start({"gain": 11})
    with Graph(spec).start({"gain": 3, "mode": "accurate"}) as graph:  # int accepted as float
        assert graph.run_once({"x": 1}) == {"y": 1}


# -- track ids --------------------------------------------------------------------------------


def _ids(frames: list[list[int | None]]) -> list[tuple[int | None, ...]]:
    return [tuple(sorted(f, key=lambda v: -1 if v is None else v)) for f in frames]


def test_track_ids_stay_while_tracked_and_change_after_a_loss(model_cache: Path) -> None:
    import facegraph

    from tests.test_face_reference import video

    frames = video("lost")  # 45 frames; the face is absent in frames 15-29
    # Frames where MediaPipe finds the face (it is found again two frames after it returns).
    counts = np.load(FIXTURES / "reference" / "mesh_track_lost_refine.npz")["landmarks_count"]
    with facegraph.FaceMesh() as mesh:
        ids = [[f.track_id for f in mesh.process(rgb)] for rgb in frames]
    assert [len(f) for f in ids] == counts.tolist()
    before = {i for frame in ids[:15] for i in frame}
    after = {i for frame in ids[30:] for i in frame}
    assert len(before) == 1 and len(after) == 1  # one id while tracked
    assert before != after  # a new id for the face found again


def test_two_faces_keep_distinct_ids(model_cache: Path) -> None:
    import facegraph

    from tests.test_face_reference import video

    with facegraph.FaceMesh(max_num_faces=2) as mesh:
        per_frame = [mesh.process(rgb) for rgb in video("two")]
    assert all(len(faces) == 2 for faces in per_frame)
    # the face on the image left keeps its id; so does the one on the right
    left = {min(fs, key=lambda f: f.box[0]).track_id for fs in per_frame}
    right = {max(fs, key=lambda f: f.box[0]).track_id for fs in per_frame}
    assert len(left) == 1 and len(right) == 1 and left != right
    static = facegraph.FaceMesh(static_image_mode=True, max_num_faces=2)
    with static:
        first = {f.track_id for f in static.process(video("two")[0])}
        second = {f.track_id for f in static.process(video("two")[1])}
    assert len(first) == 2 and not first & second  # no tracking: new faces every frame


def test_readme_claim_on_the_group_photo(model_cache: Path) -> None:
    """README: on t1.jpg short range finds no face; full range 1 / 3 / 4 with max 1 / 3 / 5."""
    import facegraph

    rgb = cv2.cvtColor(cv2.imread(str(FIXTURES / "faces" / "t1.jpg")), cv2.COLOR_BGR2RGB)
    found = {}
    for detector, n in (
        ("short_range", 5),
        ("full_range", 1),
        ("full_range", 3),
        ("full_range", 5),
    ):
        with facegraph.FaceMesh(True, n, detector=detector) as mesh:
            found[detector, n] = len(mesh.process(rgb))
    assert found == {
        ("short_range", 5): 0,
        ("full_range", 1): 1,
        ("full_range", 3): 3,
        ("full_range", 5): 4,
    }
