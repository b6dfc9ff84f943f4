"""The face_landmarker graphs: optional outputs off means their nodes never run; head pose
and blendshapes on face_mesh; MediaPipe's smoothing rule and the all-faces extra."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from facegraph import Graph, load_graph

FACES = Path(__file__).parent / "fixtures" / "faces"


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    bgr = cv2.imread(str(FACES / "astronaut.png"))
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _run(graph_name: str, side: dict[str, object], frames: list[np.ndarray]) -> tuple[list, Graph]:
    graph = Graph(load_graph(graph_name), mode="deterministic", profile=True)
    graph.start(side)
    outs = [graph.run_once({"image": f}) for f in frames]
    graph.close_all_inputs()
    graph.wait_until_done()
    return outs, graph


@pytest.mark.parametrize("graph_name", ["face_landmarker", "face_landmarker_static"])
def test_optional_outputs_off_means_their_nodes_never_run(
    graph_name: str, astronaut: np.ndarray
) -> None:
    off, g_off = _run(graph_name, {}, [astronaut, astronaut])
    assert all(len(o["faces"]) == 1 and "blendshapes" not in o and "geometry" not in o for o in off)
    # timed_calls counts process() calls (calls also counts open/close).
    assert g_off.stats().node("face_blendshapes").timed_calls == 0
    assert g_off.stats().node("face_geometry").timed_calls == 0
    assert g_off.stats().node("landmarks/model").timed_calls == 2

    on, g_on = _run(graph_name, {"blendshapes": True, "head_pose": True}, [astronaut])
    assert g_on.stats().node("face_blendshapes").timed_calls == 1
    (shapes,) = on[0]["blendshapes"]
    (geometry,) = on[0]["geometry"]
    assert shapes.scores.shape == (52,) and shapes.names[0] == "_neutral"
    assert geometry.matrix.shape == (4, 4)
    # The astronaut looks at the camera, head nearly upright.
    assert abs(geometry.yaw) < 25 and abs(geometry.roll) < 15


def test_smoothing_rule_follows_mediapipe_and_all_gives_track_ids(astronaut: np.ndarray) -> None:
    shifted = np.roll(astronaut, 6, axis=1)
    frames = [astronaut, shifted, astronaut]
    raw, _ = _run("face_landmarker", {"smoothing": "off"}, frames)
    auto, _ = _run("face_landmarker", {}, frames)
    raw2, _ = _run("face_landmarker", {"num_faces": 2, "smoothing": "off"}, frames)
    auto2, _ = _run("face_landmarker", {"num_faces": 2}, frames)
    every, _ = _run("face_landmarker", {"smoothing": "all", "num_faces": 2}, frames)
    first = [o[1]["faces"][0].points for o in (raw, auto, raw2, auto2, every)]
    # num_faces == 1: MediaPipe smooths (the jump of 6 px is damped); 2: it does not.
    assert not np.array_equal(first[0], first[1])
    np.testing.assert_array_equal(first[2], first[3])
    # smoothing=all smooths with num_faces 2 too, and labels the face's track.
    assert not np.array_equal(first[2], first[4])
    ids = [o["faces"][0].roi.rect_id for o in every]
    assert ids == [0, 0, 0]


@pytest.mark.parametrize("graph_name", ["face_landmarker", "face_mesh"])
def test_run_writes_blendshapes_transform_and_head_pose(graph_name: str, tmp_path: Path) -> None:
    import json

    from facegraph.app.runner import run_source

    out = tmp_path / "faces.jsonl"
    clip = Path(__file__).parent / "fixtures" / "videos" / "talking_face_40.mp4"
    side = {"blendshapes": True, "head_pose": True}
    run_source(graph_name, clip, output=out, side_packets=side, max_frames=3, mode="deterministic")
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 3
    for record in records:
        (face,) = record["faces"]
        assert len(face["blendshapes"]) == 52 and face["blendshapes"]["_neutral"] >= 0
        assert np.asarray(face["transform"]).shape == (4, 4)
        # The talking face looks at the camera.
        assert all(abs(face["head_pose"][k]) < 30 for k in ("yaw", "pitch", "roll"))


def test_overlay_draws_head_pose_axes_and_blendshape_bars(astronaut: np.ndarray) -> None:
    from facegraph.vision.annotate import BlendshapeBarsAnnotator, HeadPoseAnnotator

    (out,), _ = _run(
        "face_landmarker_static", {"blendshapes": True, "head_pose": True}, [astronaut]
    )
    faces = out["faces"]
    for annotator in (HeadPoseAnnotator(), BlendshapeBarsAnnotator()):
        drawn = annotator.annotate_outputs(astronaut.copy(), faces, out)
        plain = annotator.annotate_outputs(astronaut.copy(), faces, {"faces": faces})
        np.testing.assert_array_equal(plain, astronaut)  # nothing to draw without the output
        changed = np.any(drawn != astronaut, axis=2)
        ys, xs = np.nonzero(changed)
        assert changed.sum() > 50
        # Drawn at the face (axes from its origin; bars right of its box), not elsewhere.
        x0, y0, _, y1 = faces[0].box_pixels(astronaut.shape[1], astronaut.shape[0])
        assert ys.min() >= y0 - 40 and ys.max() <= y1 + 40 and xs.min() >= x0 - 40
