"""Face geometry: MediaPipe Tasks' facial transformation matrix, metric landmarks, head pose.

Without MediaPipe: the canonical face is rotated by known yaw/pitch/roll, placed in front
of the 63° camera, projected to normalised landmarks (z as the landmark models give it:
depth relative to the face's mean, scaled like x, under the weak-perspective scale) and
the angles are recovered to ≤ 0.5° (measured ≤ 1e-5°).

Parity (issue 14): given MediaPipe 1.2.3's own landmarks, our matrices match its
``facial_transformation_matrixes`` to ≤ 2e-3 on rotation entries and ≤ 0.1 cm on the
translation (measured ≤ 1e-6 and ≤ 1e-4 cm).
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
from facegraph import Graph, graph_from_yaml
from facegraph.models import ModelError, model_path, open_task_bundle
from facegraph.models.geometry_metadata import parse_geometry_metadata, read_geometry_metadata
from facegraph.vision.face.geometry import (
    FaceGeometry,
    GeometryPipeline,
    PerspectiveCamera,
    head_pose,
)
from facegraph.vision.face.types import FaceLandmarks

from .tasks_reference import IMAGE_CASES, image_case

ANGLE_TOLERANCE_DEG = 0.5
ROTATION_TOLERANCE = 2e-3
TRANSLATION_TOLERANCE_CM = 0.1


@pytest.fixture(scope="module")
def pipeline(model_cache: Path) -> GeometryPipeline:
    return GeometryPipeline()


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Ry(yaw) Rx(-pitch) Rz(roll), the documented convention (degrees)."""
    a, b, c = (math.radians(v) for v in (yaw, -pitch, roll))
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return ry @ rx @ rz


def synthetic_face(
    pipeline: GeometryPipeline,
    angles: tuple[float, float, float],
    translation: tuple[float, float, float],
    width: int,
    height: int,
) -> np.ndarray:
    """Normalised (468, 3) landmarks of the canonical face posed in front of the camera."""
    camera = pipeline.camera
    posed = pipeline.metadata.canonical_vertices.astype(np.float64) @ rotation(*angles).T
    posed += np.asarray(translation)
    xy = camera.project(posed, width, height)
    left, right, _, _ = camera.frustum(width, height)
    depth = -posed[:, 2]
    z = (depth - depth.mean()) * camera.near / (depth.mean() * (right - left))
    return np.column_stack([xy, z]).astype(np.float32)


POSES = [
    (0.0, 0.0, 0.0),
    (25.0, 0.0, 0.0),
    (0.0, -20.0, 0.0),
    (0.0, 0.0, 30.0),
    (-35.0, 15.0, -20.0),
    (10.0, 30.0, 40.0),
    (50.0, -25.0, 10.0),
]


@pytest.mark.parametrize("size", [(640, 480), (480, 640), (1280, 720)])
@pytest.mark.parametrize("angles", POSES)
def test_known_rotations_are_recovered(
    pipeline: GeometryPipeline, angles: tuple[float, float, float], size: tuple[int, int]
) -> None:
    width, height = size
    translation = (4.0, -3.0, -60.0)
    landmarks = synthetic_face(pipeline, angles, translation, width, height)
    geometry = pipeline.estimate(landmarks, width, height)
    assert geometry is not None
    got = (geometry.yaw, geometry.pitch, geometry.roll)
    assert np.abs(np.subtract(got, angles)).max() <= ANGLE_TOLERANCE_DEG, got
    np.testing.assert_allclose(geometry.translation, translation, atol=0.05)
    # A rigid face: its metric landmarks are the canonical face itself.
    np.testing.assert_allclose(
        geometry.metric_landmarks, pipeline.metadata.canonical_vertices, atol=1e-3
    )


def test_angle_signs_follow_the_image(pipeline: GeometryPipeline) -> None:
    """yaw > 0: nose toward the image's right; pitch > 0: nose up; roll > 0: the eye
    line turns counter-clockwise in the image (the subject's left eye rises)."""
    w, h = 640, 480
    base = synthetic_face(pipeline, (0, 0, 0), (0, 0, -60), w, h)
    yawed = synthetic_face(pipeline, (20, 0, 0), (0, 0, -60), w, h)
    pitched = synthetic_face(pipeline, (0, 20, 0), (0, 0, -60), w, h)
    rolled = synthetic_face(pipeline, (0, 0, 20), (0, 0, -60), w, h)
    nose, right_eye, left_eye = 1, 33, 263
    assert yawed[nose, 0] > base[nose, 0]
    assert pitched[nose, 1] < base[nose, 1]  # image y grows downward
    assert rolled[left_eye, 1] < rolled[right_eye, 1]


def test_real_photo_pose_is_plausible(pipeline: GeometryPipeline) -> None:
    """Tom Hanks turns his nose toward the image's right, chin down, eyes slightly rising
    to the right (as the landmarks themselves show)."""
    ref = image_case("tom_hanks")
    lm = ref.landmarks[0, 0]
    geometry = pipeline.estimate(lm, ref.width, ref.height)
    assert geometry is not None
    mid_x = (lm[234, 0] + lm[454, 0]) / 2
    assert lm[1, 0] > mid_x and geometry.yaw > 10
    assert geometry.pitch < -5
    assert lm[263, 1] < lm[33, 1] and geometry.roll > 0


@pytest.mark.parametrize("name", IMAGE_CASES)
def test_matrices_match_mediapipe_given_its_landmarks(
    pipeline: GeometryPipeline, name: str
) -> None:
    ref = image_case(name)
    for f in ref.faces():
        geometry = pipeline.estimate(ref.landmarks[0, f], ref.width, ref.height)
        assert geometry is not None
        theirs = ref.matrices[0, f]
        rot = np.abs(geometry.matrix[:3, :3] - theirs[:3, :3]).max()
        trans = np.abs(geometry.matrix[:3, 3] - theirs[:3, 3]).max()
        assert rot <= ROTATION_TOLERANCE, f"{name} face {f}: rotation entries off by {rot:.2e}"
        assert trans <= TRANSLATION_TOLERANCE_CM, f"{name} face {f}: translation off {trans} cm"
        np.testing.assert_array_equal(geometry.matrix[3], [0, 0, 0, 1])
        assert head_pose(theirs) == pytest.approx(
            (geometry.yaw, geometry.pitch, geometry.roll), abs=0.2
        )


def test_iris_points_are_ignored_and_468_points_suffice(pipeline: GeometryPipeline) -> None:
    ref = image_case("astronaut")
    full = pipeline.estimate(ref.landmarks[0, 0], ref.width, ref.height)
    mesh_only = pipeline.estimate(FaceLandmarks(ref.landmarks[0, 0, :468], 1.0), 512, 512)
    assert full is not None and mesh_only is not None
    np.testing.assert_array_equal(full.matrix, mesh_only.matrix)
    assert full.metric_landmarks.shape == (468, 3)
    with pytest.raises(ValueError, match=r"needs \(468\+, 3\) landmarks"):
        pipeline.estimate(ref.landmarks[0, 0, :400], 512, 512)


def test_a_face_too_small_to_fit_is_skipped(pipeline: GeometryPipeline) -> None:
    ref = image_case("astronaut")
    lm = ref.landmarks[0, 0].copy()
    centre = lm[:, :2].mean(axis=0)
    lm[:, :2] = centre + (lm[:, :2] - centre) * 1e-4  # all within 1e-3 of the mean
    assert pipeline.estimate(lm, 512, 512) is None


def test_geometry_value_is_frozen_and_serialisable(pipeline: GeometryPipeline) -> None:
    ref = image_case("takeo")
    geometry = pipeline.estimate(ref.landmarks[0, 0], ref.width, ref.height)
    assert isinstance(geometry, FaceGeometry)
    assert geometry.matrix.dtype == np.float32 and geometry.metric_landmarks.dtype == np.float32
    with pytest.raises(ValueError):
        geometry.matrix[0, 0] = 2.0
    data = json.loads(json.dumps(geometry.to_dict()))
    assert np.allclose(data["transform"], geometry.matrix)
    assert set(data["head_pose"]) == {"yaw", "pitch", "roll"}


def test_projection_matrix_agrees_with_the_camera() -> None:
    camera = PerspectiveCamera()
    points = np.array([[3.0, -2.0, -50.0], [-10.0, 6.0, -80.0]])
    clip = camera.projection_matrix(640, 480) @ np.column_stack([points, np.ones(2)]).T
    ndc = clip[:2] / clip[3]
    from_matrix = np.column_stack([(ndc[0] + 1) / 2, 1 - (ndc[1] + 1) / 2])
    np.testing.assert_allclose(from_matrix, camera.project(points, 640, 480), atol=1e-6)
    top = camera.frustum(640, 480)[3]
    assert top == pytest.approx(math.tan(math.radians(31.5)))  # 63° vertical FOV, near 1


def test_metadata_is_the_canonical_face(model_cache: Path) -> None:
    meta = read_geometry_metadata(model_path("face_geometry_metadata"))
    assert meta.canonical_vertices.shape == (468, 3) and meta.triangles.shape == (898, 3)
    assert np.count_nonzero(meta.weights) == 33 and meta.triangles.max() == 467
    # The nose tip (landmark 4) is the frontmost point, on the symmetry plane (cm).
    assert meta.canonical_vertices[4, 0] == 0.0
    assert meta.canonical_vertices[:, 2].argmax() == 4
    with pytest.raises(ModelError, match=r"bytes.bin: .*runs past the end"):
        data = model_path("face_geometry_metadata").read_bytes()
        parse_geometry_metadata(data[:-3], "bytes.bin")


USER_METADATA = """
name: geometry_only
inputs: [faces, image]
outputs: [geometry]
side_inputs:
  metadata: {}
nodes:
  - calculator: FaceGeometry
    inputs: {FACES: faces, IMAGE: image}
    outputs: {GEOMETRY: geometry}
    side_inputs: {METADATA: metadata}
"""


def test_node_uses_a_user_bundles_metadata(model_cache: Path, tmp_path: Path) -> None:
    user = tmp_path / "mine.task"
    user.write_bytes(model_path("face_landmarker").read_bytes())
    bundle = open_task_bundle(user, cache_dir=tmp_path / "cache")
    graph = Graph(graph_from_yaml(textwrap.dedent(USER_METADATA)), mode="deterministic")
    graph.start({"metadata": bundle.model_path("face_geometry_metadata")})
    ref = image_case("two_faces")
    faces = [FaceLandmarks(ref.landmarks[0, f], 1.0) for f in ref.faces()]
    image = np.zeros((ref.height, ref.width, 3), np.uint8)
    out = graph.run_once({"faces": faces, "image": image})
    empty = graph.run_once({"faces": [], "image": image})
    graph.close_all_inputs()
    graph.wait_until_done()
    assert len(out["geometry"]) == 2 and empty["geometry"] == []
    for f, geometry in enumerate(out["geometry"]):
        assert np.abs(geometry.matrix - ref.matrices[0, f]).max() <= TRANSLATION_TOLERANCE_CM
