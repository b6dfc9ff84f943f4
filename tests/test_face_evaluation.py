"""IOD-MAE evaluation: the metric on hand-made cases, the .pts reader, face matching and
misses, report generation, run comparison, and ``facegraph eval``/``compare`` end to end
(takeo's human 68-point annotation through the real face graphs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from facegraph.app import eval_cli as face_cli
from facegraph.app.compare import compare_runs, read_run_output
from facegraph.app.evaluation import (
    MESH_REGIONS,
    REPORT_FILES,
    AnnotatedFace,
    AnnotationError,
    Evaluation,
    evaluate_image,
    face_error,
    interocular_distance,
    iod_mae,
    load_annotations,
    nme68,
    write_report,
)
from facegraph.app.pts import (
    IBUG68_TO_MESH,
    TAKEO_RESIDUALS_PX,
    PtsError,
    mesh_to_ibug68,
    read_pts,
    write_pts,
)
from facegraph.vision.face import indices as ix
from typer.testing import CliRunner, Result

from tests.helpers import file_size_limit

FACES = Path(__file__).parent / "fixtures" / "faces"


def hand_face(
    iod_z: float = 0.0, seed: int = 0, offset: tuple[float, float] = (0, 0)
) -> np.ndarray:
    """A 478-point face in pixels whose eye centres are (110, 100, 0) and (170, 100, iod_z):
    interocular distance sqrt(60² + iod_z²)."""
    rng = np.random.default_rng(seed)
    pts = np.column_stack(
        [rng.uniform(60, 220, 478), rng.uniform(40, 240, 478), np.zeros(478)]
    ).astype(np.float64)
    pts[33], pts[133] = (100, 100, 0), (120, 100, 0)
    pts[362], pts[263] = (160, 100, iod_z), (180, 100, iod_z)
    pts[:, :2] += offset
    return pts


def test_interocular_distance_uses_eye_centres_in_3d() -> None:
    assert interocular_distance(hand_face()) == pytest.approx(60.0)
    assert interocular_distance(hand_face(iod_z=80.0)) == pytest.approx(100.0)
    # No usable z (2-D annotation): the 2-D distance.
    face = hand_face(iod_z=80.0)
    face[:, 2] = np.nan
    assert interocular_distance(face) == pytest.approx(60.0)


def test_known_offsets_give_known_iod_mae() -> None:
    truth = hand_face()
    pred = truth.copy()
    pred[:, :2] += (3.0, 4.0)  # every landmark 5 px off
    assert iod_mae(pred, truth) == pytest.approx(100 * 5 / 60)
    # 3-D IOD of 100 px: the same offsets are 5 %.
    truth3 = hand_face(iod_z=80.0)
    pred3 = truth3 + np.array([3.0, 4.0, 0.0])
    assert iod_mae(pred3, truth3) == pytest.approx(5.0)
    # z differences do not count (2-D error).
    pred3[:, 2] += 50
    assert iod_mae(pred3, truth3) == pytest.approx(5.0)
    # 468-point truth against 478-point prediction: the common 468 are compared.
    assert iod_mae(pred3, truth3[:468]) == pytest.approx(5.0)


def test_per_region_means_and_overall() -> None:
    truth = hand_face()
    pred = truth.copy()
    lips = list(MESH_REGIONS["lips"])
    pred[lips, 0] += 6.0  # only the lips, 10 % of the 60 px IOD
    fe = face_error(pred, AnnotatedFace(truth, "mesh", "hand"))
    assert fe.regions["lips"] == pytest.approx(10.0)
    assert fe.regions["eyes"] == 0.0 and fe.regions["irises"] == 0.0
    assert fe.regions["face_oval"] == 0.0
    assert fe.value == pytest.approx(10.0 * len(lips) / 478)
    assert set(MESH_REGIONS["irises"]) == set(range(468, 478))


def test_nme68_normalises_by_outer_eye_corners() -> None:
    mesh = hand_face(seed=3)
    truth68 = mesh_to_ibug68(mesh)[:, :2] + (3.0, 4.0)
    corners = np.hypot(*(truth68[36] - truth68[45]))
    assert nme68(mesh_to_ibug68(mesh)[:, :2], truth68) == pytest.approx(100 * 5 / corners)
    full = np.column_stack([truth68, np.full(68, np.nan)])
    fe = face_error(mesh, AnnotatedFace(full, "ibug68", "hand"))
    assert fe.kind == "ibug68" and fe.value == pytest.approx(100 * 5 / corners)
    assert set(fe.regions) == {"face_oval", "eyebrows", "nose", "eyes", "lips"}


def test_mapping_is_68_points_of_the_mesh() -> None:
    assert len(IBUG68_TO_MESH) == 68 and len(TAKEO_RESIDUALS_PX) == 68
    assert all(0 <= i < 468 for group in IBUG68_TO_MESH for i in group)
    # Outer eye corners are the mesh's eye corners used for the ROI rotation.
    assert IBUG68_TO_MESH[36] == (33,) and IBUG68_TO_MESH[45] == (263,)
    mesh = hand_face()
    assert mesh_to_ibug68(mesh)[3] == pytest.approx((mesh[132] + mesh[58]) / 2)


def test_matching_counts_misses_and_extras() -> None:
    a, b = hand_face(seed=1), hand_face(seed=2, offset=(400, 0))
    far = hand_face(seed=3, offset=(0, 600))
    annotated = [AnnotatedFace(a, "mesh", "f.json:1"), AnnotatedFace(far, "mesh", "f.json:1")]
    # Predictions in the other order, plus one with no annotation.
    res = evaluate_image("f.png", [b + 1.0, a + np.array([3.0, 4.0, 0.0])], annotated)
    assert len(res.faces) == 1 and res.value == pytest.approx(100 * 5 / 60)
    assert res.missed == ["f.json:1 (face 1)"] and res.n_extra == 1
    ev = Evaluation([res, evaluate_image("g.png", [], [AnnotatedFace(a, "mesh", "g.pts")])])
    s = ev.summary()
    assert s["n_missed"] == 2 and s["n_extra"] == 1 and s["n_faces_matched"] == 1
    assert s["per_image"][1]["iod_mae"] is None and s["missed"][1] == "g.pts (face 0)"


# --- .pts ------------------------------------------------------------------------------


def test_read_pts_shifts_the_one_based_origin(tmp_path: Path) -> None:
    p = read_pts(FACES / "takeo.pts")
    assert p.points.shape == (68, 2) and p.version == 1
    assert p.points[0] == pytest.approx((31.310345, 98.612347))
    raw = read_pts(FACES / "takeo.pts", origin=0).points
    assert raw[0] == pytest.approx((32.310345, 99.612347))
    write_pts(tmp_path / "x.pts", p.points)
    assert read_pts(tmp_path / "x.pts").points == pytest.approx(p.points, abs=1e-6)


def test_write_pts_replaces_a_file_only_with_a_whole_one(tmp_path: Path) -> None:
    path = tmp_path / "x.pts"
    points = read_pts(FACES / "takeo.pts").points
    write_pts(path, points)
    earlier = path.read_bytes()
    with file_size_limit(256), pytest.raises(OSError) as failed:  # no room: as a full disk
        write_pts(path, points + 1.0)
    assert path.read_bytes() == earlier and [p.name for p in tmp_path.iterdir()] == ["x.pts"]
    assert failed.value.filename == str(path)


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("version: 1\nn_points: 2\n{\n1 2\n3 x\n}\n", ":5:", "not a number"),
        ("version: 1\nn_points: 2\n{\n1 2\n3 4 5\n}\n", ":5:", "expected 'x y'"),
        ("version: 1\nn_points: 3\n{\n1 2\n3 4\n}\n", ":6:", "n_points is 3 but 2"),
        ("version: 1\nn_points: 2\n{\n1 2\n3 4\n", ":5:", "no closing"),
        ("version: 1\n{\n1 2\n}\n", ":2:", "no 'n_points:'"),
        ("version: 1\nn_points: 1\n1 2\n", ":3:", "header or '{'"),
        ("version: 1\nn_points: 1\n{\n1 2\n}\nmore\n", ":6:", "after '}'"),
        ("version: 1\nn_points: 1\n{\nnan 2\n}\n", ":4:", "non-finite"),
    ],
)
def test_malformed_pts_errors_name_file_and_line(
    tmp_path: Path, text: str, where: str, what: str
) -> None:
    f = tmp_path / "bad.pts"
    f.write_text(text)
    with pytest.raises(PtsError) as err:
        read_pts(f)
    assert f"bad.pts{where}" in str(err.value) and what in str(err.value)


def test_load_annotations_formats(tmp_path: Path) -> None:
    face = {"keypoints": [{"x": float(x), "y": float(y), "z": 0.0} for x, y, _ in hand_face()]}
    (tmp_path / "one.json").write_text(json.dumps({"faces": [face]}))
    (tmp_path / "run.jsonl").write_text(
        json.dumps({"frame": 0, "source": "imgs/a.png", "faces": [face, face]})
        + "\n"
        + json.dumps({"frame": 1, "source": "imgs/b.jpg", "faces": []})
        + "\n"
    )
    shutil.copy(FACES / "takeo.pts", tmp_path / "takeo.pts")
    ann = load_annotations(tmp_path)
    assert sorted(ann) == ["a", "b", "one", "takeo"]
    assert len(ann["a"]) == 2 and ann["b"] == [] and ann["takeo"][0].kind == "ibug68"
    assert ann["one"][0].points.shape == (478, 3) and ann["a"][0].origin.endswith("run.jsonl:1")
    (tmp_path / "bad.jsonl").write_text('{"faces": []}\n')
    with pytest.raises(AnnotationError, match=r"bad\.jsonl:1: .*'source'"):
        load_annotations(tmp_path / "bad.jsonl")
    (tmp_path / "video.jsonl").write_text(
        "".join(json.dumps({"frame": i, "source": "clip.mp4", "faces": []}) + "\n" for i in (0, 1))
    )
    with pytest.raises(AnnotationError, match=r"video\.jsonl:2: image 'clip' was already"):
        load_annotations(tmp_path / "video.jsonl")
    (tmp_path / "short.json").write_text(json.dumps({"faces": [{"keypoints": [{"x": 1}]}]}))
    with pytest.raises(AnnotationError, match=r"short\.json: face 0"):
        load_annotations(tmp_path / "short.json")


# --- report ----------------------------------------------------------------------------


def test_report_json_and_plots(tmp_path: Path) -> None:
    truth = hand_face()
    annotated = [AnnotatedFace(truth, "mesh", "a.json")]
    ev = Evaluation(
        [
            evaluate_image("a.png", [truth + np.array([3.0, 4.0, 0.0])], annotated),
            evaluate_image("b.png", [truth + np.array([6.0, 8.0, 0.0])], annotated),
            evaluate_image("c.png", [], annotated),
        ]
    )
    report = write_report(ev, tmp_path / "rep", {"graph": "g", "mode": "tracking"})
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert data == json.loads(json.dumps(report))
    for key in ("iod_mae_mean", "iod_mae_std", "n_images", "per_image", "per_region", "graph"):
        assert key in data
    assert data["n_images"] == 3 and data["n_missed"] == 1
    assert data["iod_mae_mean"] == pytest.approx(100 * 7.5 / 60)
    assert data["iod_mae_std"] == pytest.approx(100 * 2.5 / 60)
    assert data["per_image"][0] | {"per_face": None} == {
        "file": "a.png",
        "faces": 1,
        "annotated": 1,
        "predicted": 1,
        "iod_mae": pytest.approx(100 * 5 / 60),
        "per_face": None,
        "missed": [],
        "extra": 0,
    }
    assert set(data["per_region"]) == {"lips", "eyes", "irises", "face_oval"}
    for name in data["plots"]:
        img = cv2.imread(str(tmp_path / "rep" / name))
        assert img is not None and img.shape[0] > 200 and img.std() > 5


def test_a_failed_report_write_leaves_the_earlier_report_as_it_was(tmp_path: Path) -> None:
    truth = hand_face()
    annotated = [AnnotatedFace(truth, "mesh", "a.json")]
    rep = tmp_path / "rep"
    write_report(Evaluation([evaluate_image("a.png", [truth + 1.0], annotated)]), rep)
    before = {p.name: p.read_bytes() for p in rep.iterdir()}
    again = Evaluation([evaluate_image("a.png", [truth + 5.0], annotated)])
    # No room for a plot (as on a full disk; real for root too): no file is touched.
    with file_size_limit(4096), pytest.raises(OSError) as failed:
        write_report(again, rep, {"graph": "other"})
    assert {p.name: p.read_bytes() for p in rep.iterdir()} == before  # no temporary either
    assert failed.value.filename == str(rep / "error_histogram.png")


# --- compare ---------------------------------------------------------------------------


def _frame(i: int, faces: list[np.ndarray]) -> dict[str, object]:
    return {
        "frame": i,
        "timestamp_us": i * 33333,
        "faces": [
            {"score": 0.9, "keypoints": [{"x": x, "y": y, "z": z} for x, y, z in f.tolist()]}
            for f in faces
        ],
    }


def test_compare_two_runs(tmp_path: Path) -> None:
    f = hand_face()
    a = [_frame(0, [f]), _frame(1, [f]), _frame(2, [f])]
    b = [_frame(0, [f + np.array([3.0, 4.0, 0.0])]), _frame(1, []), _frame(2, [f])]
    pa, pb = tmp_path / "a.jsonl", tmp_path / "b.json"
    pa.write_text("".join(json.dumps(x) + "\n" for x in a))
    pb.write_text(json.dumps(b))
    cmp = compare_runs(read_run_output(pa), read_run_output(pb))
    s = cmp.summary()
    assert s["frames_compared"] == 3 and s["faces_compared"] == 2
    assert s["px"]["max"] == pytest.approx(5.0) and s["px"]["mean"] == pytest.approx(2.5)
    assert s["iod_pct"]["max"] == pytest.approx(100 * 5 / 60)
    assert s["face_count_differs"] == [{"frame": 1, "a": 1, "b": 0}]

    app = typer.Typer()
    face_cli.register(app)
    out = CliRunner().invoke(app, ["compare", str(pa), str(pb), "--json", str(tmp_path / "s.json")])
    assert out.exit_code == 0, out.output
    assert "frame 1: faces 1/0" in out.output and "FACE COUNT DIFFERS" in out.output
    assert "mean 2.5000 px" in out.output
    assert json.loads((tmp_path / "s.json").read_text()) == s
    (tmp_path / "broken.jsonl").write_text('{"faces": [}\n')
    bad = CliRunner().invoke(app, ["compare", str(pa), str(tmp_path / "broken.jsonl")])
    assert bad.exit_code == 2 and "broken.jsonl:1: invalid JSON" in bad.output
    # --json onto one of the runs it compares: refused in one line, the run untouched.
    before = pa.read_bytes()
    onto = CliRunner().invoke(app, ["compare", str(pa), str(pb), "--json", str(pa)])
    assert onto.exit_code == 2 and str(pa) in onto.output and "--json" in onto.output
    assert pa.read_bytes() == before
    # A folder where the file should go: one line, and no temporary left beside it.
    folder = tmp_path / "dir.json"
    folder.mkdir()
    bad = CliRunner().invoke(app, ["compare", str(pa), str(pb), "--json", str(folder)])
    errors = [line for line in bad.output.splitlines() if "cannot write" in line]
    assert bad.exit_code == 2 and errors == [errors[0]] and str(folder) in errors[0]
    assert "Traceback" not in bad.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# --- end to end on takeo's human annotation ----------------------------------------------


@pytest.fixture
def takeo_dirs(tmp_path: Path) -> tuple[Path, Path]:
    images, ann = tmp_path / "images", tmp_path / "ann"
    images.mkdir()
    ann.mkdir()
    shutil.copy(FACES / "takeo.ppm", images)
    shutil.copy(FACES / "Tom_Hanks_54745.png", images)  # no annotation: skipped, noted
    shutil.copy(FACES / "takeo.pts", ann)
    return images, ann


def test_takeo_mapping_residuals(model_cache: Path) -> None:
    """Our static graph on takeo reproduces the residuals recorded from MediaPipe 0.10.14
    (tolerance: the static parity bound, 0.5 px per point and 0.05 px on the mean)."""
    from facegraph import load_graph
    from facegraph.app.evaluation import face_points_px, predict_faces

    rgb = cv2.imread(str(FACES / "takeo.ppm"))[:, :, ::-1].copy()
    faces = predict_faces(load_graph("face_mesh_static"), rgb)
    assert len(faces) == 1
    pred68 = mesh_to_ibug68(face_points_px(faces[0], rgb.shape[1], rgb.shape[0]))
    res = np.hypot(*(pred68[:, :2] - read_pts(FACES / "takeo.pts").points).T)
    assert np.abs(res - TAKEO_RESIDUALS_PX).max() <= 0.5
    assert abs(res.mean() - np.mean(TAKEO_RESIDUALS_PX)) <= 0.05


@pytest.mark.parametrize(
    ("graph", "mode"), [("face_mesh_static", "reacquisition"), ("face_mesh", "tracking")]
)
def test_eval_command_on_takeo(
    model_cache: Path, takeo_dirs: tuple[Path, Path], tmp_path: Path, graph: str, mode: str
) -> None:
    images, ann = takeo_dirs
    app = typer.Typer()
    face_cli.register(app)
    rep = tmp_path / "report"
    args = ["eval", graph, "--images", str(images), "--annotations", str(ann)]
    out = CliRunner().invoke(app, [*args, "--mode", mode, "--report", str(rep)])
    assert out.exit_code == 0, out.output
    data = json.loads((rep / "report.json").read_text())
    assert data["n_images"] == 1 and data["n_faces_matched"] == 1 and data["n_missed"] == 0
    # MediaPipe 0.10.14 scores 4.01 % NME on takeo; tracking refines the ROI a little.
    assert 3.5 <= data["iod_mae_mean"] <= 4.6
    if mode == "reacquisition":
        assert data["iod_mae_mean"] == pytest.approx(
            float(np.mean(TAKEO_RESIDUALS_PX)) / 54.4775 * 100, abs=0.1
        )
    assert "takeo.ppm:" in out.output and "per region:" in out.output
    assert {p.name for p in rep.iterdir()} == {
        "report.json",
        "error_histogram.png",
        "landmark_heatmap.png",
    }


def test_eval_report_never_overwrites_an_input_nor_half_replaces_an_earlier_report(
    model_cache: Path, takeo_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    images, ann = takeo_dirs
    app = typer.Typer()
    face_cli.register(app)
    args = ["eval", "face_mesh_static", "--images", str(images), "--annotations", str(ann)]
    args += ["--mode", "reacquisition", "--report"]

    def errors(result: Result) -> list[str]:
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        return [line for line in result.output.splitlines() if line.startswith("error:")]

    # An input image named like a plot, in the folder given as --report: refused before
    # any image runs, the image untouched.
    photo = images / "error_histogram.png"
    shutil.copy(FACES / "Tom_Hanks_54745.png", photo)
    before = photo.read_bytes()
    onto = CliRunner().invoke(app, [*args, str(images)])
    (line,) = errors(onto)
    assert f"would overwrite the input {photo}" in line and "takeo.ppm:" not in onto.output
    assert photo.read_bytes() == before
    photo.unlink()
    a_file = tmp_path / "report.txt"
    a_file.write_text("notes\n")
    (line,) = errors(CliRunner().invoke(app, [*args, str(a_file)]))
    assert line == f"error: --report {a_file} is a file, not a folder"
    assert a_file.read_text() == "notes\n"
    # A write that fails at the end (a folder where the heat map goes): one line naming
    # it; the earlier report keeps every byte and no temporary is left.
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "report.json").write_text('{"earlier": true}\n')
    (rep / "error_histogram.png").write_bytes(b"earlier plot")
    (rep / "landmark_heatmap.png").mkdir()
    failed = CliRunner().invoke(app, [*args, str(rep)])
    assert errors(failed) == [f"error: cannot write {rep / 'landmark_heatmap.png'}: Is a directory"]
    assert "takeo.ppm:" in failed.output  # it ran, then could not write
    assert (rep / "report.json").read_text() == '{"earlier": true}\n'
    assert (rep / "error_histogram.png").read_bytes() == b"earlier plot"
    assert sorted(p.name for p in rep.iterdir()) == sorted(REPORT_FILES)


def test_eval_command_reports_unknown_annotation_dir(tmp_path: Path) -> None:
    app = typer.Typer()
    face_cli.register(app)
    out = CliRunner().invoke(
        app, ["eval", "face_mesh", "--images", str(tmp_path), "--annotations", str(tmp_path / "x")]
    )
    assert out.exit_code == 2 and "no such file or directory" in out.output


def test_iris_region_needs_478_points() -> None:
    truth = hand_face()[:468]
    fe = face_error(truth + np.array([0.0, 1.0, 0.0]), AnnotatedFace(truth, "mesh", "x"))
    assert "irises" not in fe.regions and fe.value == pytest.approx(100 / 60)
    assert len(ix.LEFT_IRIS) == 5


def test_eval_against_our_own_run_output_is_zero(model_cache: Path, tmp_path: Path) -> None:
    """Annotations in the format ``facegraph run --output`` writes (the real writer): the
    same graph scores ~0 against its own output (coordinates are rounded to 0.001 px)."""
    from facegraph import load_graph
    from facegraph.app.evaluation import predict_faces
    from facegraph.vision.writers import face_to_dict

    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(FACES / "astronaut.png", images)
    rgb = cv2.imread(str(images / "astronaut.png"))[:, :, ::-1].copy()
    h, w = rgb.shape[:2]
    faces = predict_faces(load_graph("face_mesh_static"), rgb)
    record = {"frame": 0, "source": str(images / "astronaut.png"), "width": w, "height": h}
    record["faces"] = [face_to_dict(f, w, h) for f in faces]
    (tmp_path / "run.jsonl").write_text(json.dumps(record) + "\n")
    app = typer.Typer()
    face_cli.register(app)
    rep = tmp_path / "rep"
    args = ["eval", "face_mesh_static", "--images", str(images)]
    args += ["--annotations", str(tmp_path / "run.jsonl"), "--mode", "reacquisition"]
    out = CliRunner().invoke(app, [*args, "--report", str(rep)])
    assert out.exit_code == 0, out.output
    data = json.loads((rep / "report.json").read_text())
    assert data["n_faces_matched"] == 1 and data["iod_mae_mean"] < 0.01
    assert set(data["per_region"]) == {"lips", "eyes", "irises", "face_oval"}
