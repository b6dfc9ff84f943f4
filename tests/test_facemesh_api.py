"""facegraph.FaceMesh, the drop-in for mp.solutions.face_mesh, against MediaPipe 0.10.14.

Tolerances (issue 4): static mean ≤ 0.05 px, max ≤ 0.5 px per image; tracking mean
≤ 0.1 px over the clip, same face count on every frame. Plus input handling (gray, RGBA,
wrong dtype/shape named in the error), the result format, the context manager and the
one-call-at-a-time lock.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import facegraph
import numpy as np
import pytest
from facegraph.app.face_mesh import Face, FaceMesh

from .test_face_reference import REFERENCE, case, frames_of, image


@pytest.fixture(scope="module")
def static_mesh(model_cache: Path) -> Iterator[FaceMesh]:
    with facegraph.FaceMesh(static_image_mode=True, max_num_faces=2) as mesh:
        yield mesh


def px_errors(points: np.ndarray, ref: np.ndarray, w: int, h: int) -> np.ndarray:
    d = (points[:, :2] - ref[:, :2]) * np.array([w, h])
    return np.hypot(d[:, 0], d[:, 1])


def test_import_facegraph_stays_light() -> None:
    code = (
        "import sys, facegraph; assert 'FaceMesh' in facegraph.__all__; "
        "print(sorted(m for m in ('cv2', 'ai_edge_litert', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert facegraph.FaceMesh is FaceMesh


@pytest.mark.parametrize(
    "name",
    [
        "mesh_static_face_detection_expected_refine",
        "mesh_static_t1_refine",
        "mesh_static_two_frame0_max2",
        "mesh_static_takeo_norefine",
    ],
)
def test_static_mode_matches_mediapipe(model_cache: Path, name: str) -> None:
    c = case(name)
    s = c["settings"]
    ref = np.load(REFERENCE / c["file"])
    frame = frames_of(c["input"])[0]
    h, w = frame.shape[:2]
    with FaceMesh(
        static_image_mode=True,
        max_num_faces=s["max_num_faces"],
        refine_landmarks=s["refine_landmarks"],
    ) as mesh:
        faces = mesh.process(frame)
        again = mesh.process(frame)  # static: no state carries over
    assert len(faces) == ref["landmarks_count"][0]
    for j, face in enumerate(faces):
        n = 478 if s["refine_landmarks"] else 468
        assert face.landmarks.shape == (n, 3) and face.landmarks.dtype == np.float32
        err = px_errors(face.landmarks, ref["landmarks"][0, j], w, h)
        assert err.mean() <= 0.05 and err.max() <= 0.5
        assert np.abs(face.landmarks[:, 2] - ref["landmarks"][0, j, :, 2]).max() * w <= 0.5
        assert np.array_equal(face.landmarks, again[j].landmarks)


def test_tracking_mode_matches_mediapipe(model_cache: Path) -> None:
    c = case("mesh_track_moving_refine")
    ref = np.load(REFERENCE / c["file"])
    errors = []
    with FaceMesh() as mesh:
        for i, frame in enumerate(frames_of(c["input"])):
            faces = mesh.process(frame)
            assert len(faces) == ref["landmarks_count"][i]
            errors += [
                px_errors(f.landmarks, ref["landmarks"][i, j], 640, 480)
                for j, f in enumerate(faces)
            ]
    assert len(errors) == 60
    assert np.concatenate(errors).mean() <= 0.1


def test_lost_face_is_found_again(model_cache: Path) -> None:
    c = case("mesh_track_lost_refine")
    ref = np.load(REFERENCE / c["file"])
    with FaceMesh() as mesh:
        counts = [len(mesh.process(f)) for f in frames_of(c["input"])]
    assert counts == list(ref["landmarks_count"])
    assert counts[0] == 1 and 0 in counts and counts[-1] == 1


def test_result_format(static_mesh: FaceMesh) -> None:
    frame = image("face_detection_expected")
    (face,) = static_mesh.process(frame)
    assert isinstance(face, Face) and 0.5 < face.score <= 1.0
    xmin, ymin, xmax, ymax = face.box
    px = face.landmarks[:, :2] * [600, 600]
    assert xmin == pytest.approx(px[:, 0].min(), abs=1e-3)
    assert ymax == pytest.approx(px[:, 1].max(), abs=1e-3)
    assert 0 <= xmin < xmax <= 600 and 0 <= ymin < ymax <= 600
    d = face.to_dict()
    assert set(d["box"]) == {"xMin", "xMax", "yMin", "yMax", "width", "height"}  # type: ignore[arg-type]
    kps = d["keypoints"]
    assert isinstance(kps, list) and len(kps) == 478
    assert kps[0]["x"] == pytest.approx(float(px[0, 0]), abs=1e-3)
    names = {k.get("name") for k in kps}
    assert {"lips", "leftEye", "rightEye", "leftIris", "rightIris", "faceOval"} <= names


def test_no_face_returns_empty_list(static_mesh: FaceMesh) -> None:
    assert static_mesh.process(np.full((480, 640, 3), 90, np.uint8)) == []
    assert static_mesh.process(np.zeros((16, 16, 3), np.uint8)) == []


def test_grayscale_and_rgba_are_converted(static_mesh: FaceMesh) -> None:
    rgb = image("face_detection_expected")
    gray = (rgb.astype(np.uint16).sum(axis=2) // 3).astype(np.uint8)
    from_gray = static_mesh.process(gray)
    from_gray3 = static_mesh.process(np.repeat(gray[:, :, None], 3, axis=2))
    assert len(from_gray) == 1 and np.array_equal(from_gray[0].landmarks, from_gray3[0].landmarks)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])
    (a,) = static_mesh.process(rgba)
    (b,) = static_mesh.process(rgb)
    assert np.array_equal(a.landmarks, b.landmarks)
    assert static_mesh.process(gray[:, :, None])[0].landmarks.shape == (478, 3)


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (np.zeros((32, 32, 3), np.float32), TypeError, "float32"),
        (np.zeros((32, 32, 3), np.int64), TypeError, "int64"),
        (np.zeros((2, 32, 32, 3), np.uint8), ValueError, r"\(2, 32, 32, 3\)"),
        (np.zeros((32, 32, 2), np.uint8), ValueError, r"\(32, 32, 2\)"),
        (np.zeros(32, np.uint8), ValueError, "ndim 1"),
        (np.zeros((0, 32, 3), np.uint8), ValueError, "empty"),
        ([[0, 1], [2, 3]], TypeError, "list"),
    ],
)
def test_bad_input_is_rejected_clearly(
    static_mesh: FaceMesh, bad: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        static_mesh.process(bad)  # type: ignore[arg-type]


def test_bad_settings_are_rejected(model_cache: Path) -> None:
    with pytest.raises(ValueError, match="max_num_faces"):
        FaceMesh(max_num_faces=0)
    with pytest.raises(ValueError, match="min_detection_confidence"):
        FaceMesh(min_detection_confidence=1.5)
    with pytest.raises(TypeError, match="min_tracking_confidence"):
        FaceMesh(min_tracking_confidence="high")  # type: ignore[arg-type]


def test_close_and_reuse(model_cache: Path) -> None:
    mesh = FaceMesh(refine_landmarks=False)
    (face,) = mesh.process(image("face_detection_expected"))
    assert face.landmarks.shape == (468, 3)
    mesh.close()
    mesh.close()  # idempotent
    with pytest.raises(RuntimeError, match="close"):
        mesh.process(image("face_detection_expected"))


def test_concurrent_callers_are_serialised(static_mesh: FaceMesh) -> None:
    """Several threads on one instance: every call completes with the right result."""
    frame = image("face_detection_expected")
    (want,) = static_mesh.process(frame)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):
                (face,) = static_mesh.process(frame)
                results.append(face.landmarks)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 12
    assert all(np.array_equal(r, want.landmarks) for r in results)


def test_full_range_detector_finds_small_faces(model_cache: Path) -> None:
    """A ~65 px face in a 1280x720 frame: MediaPipe's face-mesh detector (short range,
    128x128 input) misses it; `detector="full_range"` finds it and the mesh follows."""
    from facegraph.app import synthetic

    placement = synthetic.FacePlacement(400, 300, 0.2, 0.0)
    frame = synthetic.render_frame([image("face_detection_expected")], [placement], 1280, 720)
    with FaceMesh(static_image_mode=True) as short:
        assert short.process(frame) == []
    with FaceMesh(static_image_mode=True, detector="full_range") as full:
        (face,) = full.process(frame)
    xmin, ymin, xmax, ymax = face.box
    assert 50 < xmax - xmin < 80 and face.score > 0.5
    # The face's centre lands where it was placed (the photo's face is a bit off-centre).
    assert abs((xmin + xmax) / 2 - 400) < 25 and abs((ymin + ymax) / 2 - 300) < 40
