"""`from facegraph import drawing` draws what mp.solutions.drawing_utils draws, and every
annotator draws every form of face result (FaceMesh's Face, FaceLandmarks, arrays, lists
of landmark objects as in MediaPipe Tasks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from facegraph.vision.annotate import Compose, MeshAnnotator, default_annotators, face_items
from facegraph.vision.face.types import FaceLandmarks, NormalizedRect

REF = Path(__file__).parent / "fixtures" / "reference"
POINTS = np.load(REF / "mesh_static_astronaut_refine.npz")["landmarks"][0, 0]


@dataclass
class _Landmark:  # the shape of MediaPipe Tasks' NormalizedLandmark
    x: float
    y: float
    z: float


def _forms() -> dict[str, object]:
    from facegraph.app.face_mesh import Face

    raw = FaceLandmarks(POINTS, 1.0, NormalizedRect(0.5, 0.5, 0.5, 0.5, 0.0, 7))
    return {
        "FaceLandmarks": raw,
        "Face": Face(raw.points, 1.0, raw.box_pixels(512, 512), 512, 512, raw),
        "ndarray": POINTS.copy(),
        "landmark objects": [_Landmark(*p) for p in POINTS.tolist()],
    }


def _styles_image(face: object) -> np.ndarray:
    from facegraph import drawing

    image = np.zeros((512, 512, 3), np.uint8)
    for connections, style in (
        (drawing.FACEMESH_TESSELATION, drawing.get_default_face_mesh_tesselation_style()),
        (drawing.FACEMESH_CONTOURS, drawing.get_default_face_mesh_contours_style()),
        (drawing.FACEMESH_IRISES, drawing.get_default_face_mesh_iris_connections_style()),
    ):
        drawing.draw_landmarks(
            image, face, connections, landmark_drawing_spec=None, connection_drawing_spec=style
        )
    return image


@pytest.mark.parametrize("form", list(_forms()))
def test_draw_landmarks_matches_mediapipe_pixel_for_pixel(form: str) -> None:
    # Reference: MediaPipe 0.10.14's own drawing_utils (scripts/reference_drawing.py).
    expected = cv2.imread(str(REF / "drawing_mediapipe_styles.png"))
    drawn = _styles_image(_forms()[form])
    assert np.count_nonzero(drawn) > 1000
    assert np.array_equal(drawn, expected), f"{np.count_nonzero(drawn != expected)} values differ"


def test_draw_landmarks_default_specs_match_mediapipe() -> None:
    from facegraph import drawing

    expected = cv2.imread(str(REF / "drawing_mediapipe_points.png"))
    image = np.zeros((512, 512, 3), np.uint8)
    drawing.draw_landmarks(image, _forms()["Face"], drawing.FACEMESH_CONTOURS)
    assert np.array_equal(image, expected)


def test_draw_landmarks_refuses_bad_input_in_one_line() -> None:
    from facegraph import drawing

    with pytest.raises(ValueError, match="read-only"):
        frozen = np.zeros((64, 64, 3), np.uint8)
        frozen.flags.writeable = False
        drawing.draw_landmarks(frozen, POINTS, drawing.FACEMESH_CONTOURS)
    with pytest.raises(ValueError, match="out of range"):
        drawing.draw_landmarks(np.zeros((64, 64, 3), np.uint8), POINTS[:100], [(0, 200)])
    with pytest.raises(ValueError, match="cannot read landmarks from a str"):
        drawing.draw_landmarks(np.zeros((64, 64, 3), np.uint8), "face")


@pytest.mark.parametrize("form", list(_forms()))
def test_annotators_draw_every_form_of_face(form: str) -> None:
    face = _forms()[form]
    blank = np.zeros((512, 512, 3), np.uint8)
    reference = MeshAnnotator().annotate(blank.copy(), [_forms()["FaceLandmarks"]])
    assert np.count_nonzero(reference) > 1000
    # a list of faces, or one face on its own
    assert np.array_equal(MeshAnnotator().annotate(blank.copy(), [face]), reference)
    if form != "landmark objects":  # a bare list of landmarks is one face, not a list
        assert np.array_equal(MeshAnnotator().annotate(blank.copy(), face), reference)


def test_compose_draws_facemesh_results(model_cache: Path) -> None:
    """The issue's case: Compose([...]).annotate(image, mesh.process(rgb)) changed 0 pixels."""
    import facegraph

    bgr = cv2.imread(str(Path(__file__).parent / "fixtures" / "faces" / "astronaut.png"))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    with facegraph.FaceMesh() as mesh:
        faces = mesh.process(rgb)
    assert len(faces) == 1
    drawn = default_annotators().annotate(rgb.copy(), faces)
    changed = np.any(drawn != rgb, axis=2)
    assert changed.sum() > 5000
    x0, y0, x1, y1 = faces[0].box
    ys, xs = np.nonzero(changed)
    # the drawing is on the face (box + labels may reach a few pixels beyond it)
    assert xs.min() >= x0 - 10 and xs.max() <= x1 + 10 and ys.max() <= y1 + 10
    assert ys.min() >= y0 - 25  # the track-id label sits just above the box


def test_face_items_of_a_tasks_like_result() -> None:
    @dataclass
    class Result:  # the shape of MediaPipe Tasks' FaceLandmarkerResult
        face_landmarks: list[list[_Landmark]]

    one = [_Landmark(*p) for p in POINTS.tolist()]
    result = Result([one, one])
    assert len(face_items(result)) == 2
    blank = np.zeros((512, 512, 3), np.uint8)
    assert np.count_nonzero(Compose([MeshAnnotator()]).annotate(blank, result)) > 1000
