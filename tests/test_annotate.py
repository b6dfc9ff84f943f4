"""Annotators draw where the face is (and only there), compose, and run as a graph node."""

from __future__ import annotations

import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from facegraph import Graph
from facegraph.config import graph_from_yaml
from facegraph.vision.annotate import (
    BoxAnnotator,
    Compose,
    ContourAnnotator,
    FpsAnnotator,
    IrisAnnotator,
    KeypointAnnotator,
    MeshAnnotator,
    TextAnnotator,
    default_annotators,
)
from facegraph.vision.face import connections
from facegraph.vision.face.types import Detection, FaceLandmarks

from tests.helpers import astronaut_detection, astronaut_face

FIXTURES = Path(__file__).parent / "fixtures"
W = H = 512


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    bgr = cv2.imread(str(FIXTURES / "faces" / "astronaut.png"))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    rgb.flags.writeable = False
    assert rgb.shape == (H, W, 3)
    return rgb


@pytest.fixture(scope="module")
def face() -> FaceLandmarks:
    return astronaut_face(score=0.99)


@pytest.fixture(scope="module")
def detection() -> Detection:
    return astronaut_detection(score=0.9)


def changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return (before != after).any(axis=2)


def hull_mask(face: FaceLandmarks, margin: int) -> np.ndarray:
    """Pixels within ``margin`` of the landmarks' convex hull."""
    mask = np.zeros((H, W), np.uint8)
    pts = np.round(face.pixels(W, H)[:, :2]).astype(np.int32)
    cv2.fillConvexPoly(mask, cv2.convexHull(pts), 1)
    if margin:
        mask = cv2.dilate(mask, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    return mask.astype(bool)


def test_mesh_draws_over_the_face_and_nowhere_else(image: np.ndarray, face: FaceLandmarks) -> None:
    out = MeshAnnotator().annotate(image, [face])
    diff = changed(image, out)
    inside = hull_mask(face, margin=2)
    assert not diff[~inside].any()  # nothing outside the face
    # A dense mesh: most of the face area is touched by some anti-aliased edge.
    assert diff[hull_mask(face, 0)].mean() > 0.3
    # Every edge endpoint got drawn on.
    px = np.round(face.pixels(W, H)[:468, :2]).astype(int)
    assert diff[px[:, 1], px[:, 0]].mean() > 0.95


def test_contours_touch_lip_and_oval_points_and_less_than_the_mesh(
    image: np.ndarray, face: FaceLandmarks
) -> None:
    contour = changed(image, ContourAnnotator().annotate(image, [face]))
    mesh = changed(image, MeshAnnotator().annotate(image, [face]))
    idx = sorted({i for edge in connections.LIPS + connections.FACE_OVAL for i in edge})
    px = np.round(face.pixels(W, H)[idx, :2]).astype(int)
    assert contour[px[:, 1], px[:, 0]].all()
    assert contour.sum() < 0.5 * mesh.sum()
    assert not contour[~hull_mask(face, margin=2)].any()


def test_iris_circles_are_drawn_at_the_iris_radius(image: np.ndarray, face: FaceLandmarks) -> None:
    diff = changed(image, IrisAnnotator(center=False).annotate(image, [face]))
    xy = face.pixels(W, H)[:, :2]
    for centre, ring in ((468, [469, 470, 471, 472]), (473, [474, 475, 476, 477])):
        r = np.linalg.norm(xy[ring] - xy[centre], axis=1).mean()
        yy, xx = np.nonzero(diff)
        dist = np.hypot(xx - xy[centre, 0], yy - xy[centre, 1])
        near = dist < 3 * r
        assert near.sum() > 10
        # Drawn pixels of this iris lie on its circle (a 1 px anti-aliased line on pixel
        # centres: within 2 px, 1 px on average).
        assert np.abs(dist[near] - r).max() < 2.0
        assert np.abs(dist[near] - r).mean() < 1.0
        assert not diff[round(xy[centre, 1]), round(xy[centre, 0])]  # hollow without centre


def test_iris_annotator_skips_faces_without_iris_points(
    image: np.ndarray, face: FaceLandmarks
) -> None:
    mesh_only = FaceLandmarks(face.points[:468], face.score)
    out = IrisAnnotator().annotate(image, [mesh_only])
    assert not changed(image, out).any()
    # The 468-point face still gets its mesh (edges to iris points are left out).
    assert changed(image, MeshAnnotator().annotate(image, [mesh_only])).any()


def test_box_and_keypoints_of_a_detection(image: np.ndarray, detection: Detection) -> None:
    out = BoxAnnotator(show_label=False).annotate(image, [detection])
    diff = changed(image, out)
    x, y, w, h = detection.box_pixels(W, H)
    x0, y0, x1, y1 = round(x), round(y), round(x + w), round(y + h)
    assert diff[y0, x0 + 5 : x1 - 5].all() and diff[y1, x0 + 5 : x1 - 5].all()
    assert diff[y0 + 5 : y1 - 5, x0].all() and diff[y0 + 5 : y1 - 5, x1].all()
    assert not diff[y0 + 5 : y1 - 5, x0 + 5 : x1 - 5].any()  # the inside stays clean
    kp = KeypointAnnotator().annotate(image, [detection])
    for kx, ky in detection.keypoints * [W, H]:
        assert changed(image, kp)[round(ky), round(kx)]


def test_read_only_images_are_copied_writable_ones_drawn_in_place(
    image: np.ndarray, face: FaceLandmarks
) -> None:
    before = image.copy()
    out = ContourAnnotator().annotate(image, [face])
    assert out is not image
    np.testing.assert_array_equal(image, before)
    canvas = image.copy()
    assert ContourAnnotator().annotate(canvas, [face]) is canvas


def test_compose_draws_the_same_as_its_parts_in_order(
    image: np.ndarray, face: FaceLandmarks, detection: Detection
) -> None:
    parts = [MeshAnnotator(), ContourAnnotator(), IrisAnnotator(), BoxAnnotator()]
    composed = Compose(parts).annotate(image, [face, detection])
    step = image.copy()
    for part in parts:
        step = part.annotate(step, [face, detection])
    np.testing.assert_array_equal(composed, step)
    default = default_annotators().annotate(image, [face, detection])
    assert changed(image, default).sum() >= changed(image, composed).sum()


def test_no_faces_draws_nothing(image: np.ndarray) -> None:
    for faces in (None, []):
        out = default_annotators().annotate(image, faces)
        np.testing.assert_array_equal(out, image)


def test_fps_label_counts_calls_and_draws_in_its_corner(image: np.ndarray) -> None:
    clock = iter(np.arange(0.0, 10.0, 0.1).tolist())
    fps = FpsAnnotator(clock=lambda: next(clock))
    for _ in range(11):
        out = fps.annotate(image, None)
    assert fps.fps == pytest.approx(10.0)
    assert fps.label(None) == "10.0 FPS"
    diff = changed(image, out)
    assert diff[:30, :120].any() and not diff[60:, :].any()


def test_text_annotator_accepts_a_function_of_the_faces(
    image: np.ndarray, face: FaceLandmarks
) -> None:
    label = TextAnnotator(lambda faces: f"{len(faces or [])} face(s)", corner="bottom-right")
    assert label.label([face]) == "1 face(s)"
    diff = changed(image, label.annotate(image, [face]))
    assert diff[-30:, -150:].any() and not diff[: H - 40, :].any()


def test_annotators_reject_non_rgb_images(face: FaceLandmarks) -> None:
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        MeshAnnotator().annotate(np.zeros((10, 10), np.uint8), [face])


def test_mesh_overlay_is_fast_enough_for_live_video(image: np.ndarray, face: FaceLandmarks) -> None:
    import time

    overlay = default_annotators()
    canvas = image.copy()
    start = time.perf_counter()
    for _ in range(20):
        overlay.annotate(canvas, [face])
    per_frame_ms = (time.perf_counter() - start) / 20 * 1000
    assert per_frame_ms < 15, per_frame_ms  # measured ~1 ms on the 2-core dev machine


@pytest.mark.parametrize("mode", ["deterministic", "threads"])
def test_annotate_node_draws_faces_and_passes_frames_without_faces(
    image: np.ndarray, face: FaceLandmarks, detection: Detection, mode: str
) -> None:
    spec = graph_from_yaml(
        textwrap.dedent(
            """
            inputs: [image, faces, detections]
            outputs: [drawn]
            nodes:
              - calculator: Annotate
                inputs: {IMAGE: image, FACES: faces, DETECTIONS: detections}
                outputs: {IMAGE: drawn}
                options: {mesh: false}
            """
        )
    )
    graph = Graph(spec, mode=mode)  # type: ignore[arg-type]
    got: dict[int, np.ndarray] = {}
    graph.observe("drawn", lambda p: got.__setitem__(p.timestamp, p.value))
    graph.start()
    for t in range(3):
        graph.add_packet("image", image, t)
    graph.add_packet("faces", [face], 1)
    graph.add_packet("detections", [detection], 2)
    graph.close_all_inputs()
    graph.wait_until_done(timeout=30)
    assert sorted(got) == [0, 1, 2]
    np.testing.assert_array_equal(got[0], image)
    expected = default_annotators(mesh=False).annotate(image, [face])
    np.testing.assert_array_equal(got[1], expected)
    assert changed(image, got[2]).any()
    assert not got[1].flags.writeable
