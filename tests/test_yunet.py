"""YuNet face detector (OpenCV FaceDetectorYN) as a drop-in for BlazeFace.

Compared with MediaPipe 0.10.14's BlazeFace outputs in ``fixtures/reference`` (a
different detector, so agreement is approximate; tolerances are stated per test and
scaled by the inter-ocular distance IOD where the face size matters):

- boxes overlap BlazeFace's with IoU > 0.5 (measured with the default BlazeFace-equivalent
  box: 0.92, 0.88; with YuNet's own box: 0.77, 0.79);
- eye keypoints within 0.2 IOD of BlazeFace's (measured ≤ 0.15 IOD);
- face mesh from the YuNet ROI vs from MediaPipe's own detection ROI: mean ≤ 0.02 IOD
  (measured 0.007–0.014 IOD, i.e. 0.30–1.67 px; 0.61 px on astronaut), and ≤ 0.01 IOD
  after one landmarks → ROI step, what tracking mode does on the next frame (measured
  0.004–0.006 IOD).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from facegraph import GraphConfigError, GraphSpec, load_graph
from facegraph.calculators.face.yunet import YuNetFaceDetector
from facegraph.config import graph_from_yaml
from facegraph.models import ModelError
from facegraph.vision.face.rois import detection_to_roi, landmarks_to_roi
from facegraph.vision.face.types import Detection, NormalizedRect
from facegraph.vision.face.yunet import (
    BLAZEFACE_BOX_SCALE,
    BLAZEFACE_BOX_SHIFT,
    TRAGION_ALONG,
    YuNetDetector,
    yunet_to_detections,
)

from .helpers import run_frames
from .test_face_reference import REFERENCE, FrontPipeline, image, pixel_errors

PHOTOS = ["astronaut", "face_detection_expected"]


@pytest.fixture(scope="module")
def yunet(model_cache: Path) -> YuNetDetector:
    return YuNetDetector(model_cache / "face_detection_yunet_2023mar.onnx")


def _iou(a: Detection, b: np.ndarray) -> float:
    bx0, by0, bw, bh = (float(v) for v in b)
    w = max(0.0, min(a.xmax, bx0 + bw) - max(a.xmin, bx0))
    h = max(0.0, min(a.ymax, by0 + bh) - max(a.ymin, by0))
    inter = w * h
    return inter / (a.width * a.height + bw * bh - inter)


def _blazeface(name: str) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's short-range detection on photo ``name``: box and keypoints."""
    ref = np.load(REFERENCE / "detection_model0.npz")
    return ref[f"{name}__box"][0], ref[f"{name}__keypoints"][0]


@pytest.mark.parametrize("name", PHOTOS)
def test_detects_the_face_where_blazeface_does(yunet: YuNetDetector, name: str) -> None:
    rgb = image(name)
    h, w = rgb.shape[:2]
    dets = yunet.detect(rgb)
    assert len(dets) == 1
    d = dets[0]
    assert d.score > 0.85  # measured 0.93
    box, kps = _blazeface(name)
    assert _iou(d, box) > 0.5
    assert d.width * w == pytest.approx(d.height * h, rel=1e-5)  # square, like BlazeFace
    assert d.keypoints.shape == (6, 2)
    px, ref_px = d.keypoints * [w, h], kps * [w, h]
    iod = float(np.hypot(*(ref_px[1] - ref_px[0])))
    eye_err = np.hypot(*(px[:2] - ref_px[:2]).T)
    assert eye_err.max() < 0.2 * iod, eye_err / iod
    # BlazeFace's keypoint order and handedness: the subject's right eye is image-left,
    # the nose between the eyes, the mouth below the nose, each tragion outside its eye.
    right_eye, left_eye, nose, mouth, right_ear, left_ear = px
    assert right_eye[0] < nose[0] < left_eye[0]
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]
    assert right_ear[0] < right_eye[0] and left_ear[0] > left_eye[0]
    ear_err = np.hypot(*(px[4:] - ref_px[4:]).T)
    assert ear_err.max() < 0.35 * iod, ear_err / iod  # an estimate (module doc)


def test_no_face_on_blank_or_noise(yunet: YuNetDetector) -> None:
    assert yunet.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert yunet.detect(np.full((300, 200, 3), 200, np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert yunet.detect(noise) == []  # best background score measured: 0.12


def test_group_photo_sorted_and_clipped(model_cache: Path, yunet: YuNetDetector) -> None:
    # t1 has six small faces that MediaPipe's short-range BlazeFace does not find at all.
    rgb = image("t1")
    dets = yunet.detect(rgb)
    assert len(dets) == 6
    scores = [d.score for d in dets]
    assert scores == sorted(scores, reverse=True) and min(scores) > 0.85
    best2 = YuNetDetector(yunet.path, max_detections=2).detect(rgb)
    assert [d.score for d in best2] == scores[:2]


def test_large_images_are_shrunk_to_max_input_size(yunet: YuNetDetector) -> None:
    rgb = image("t1")  # 1280x886
    h, w = rgb.shape[:2]
    shrunk = yunet.detect(rgb)
    assert yunet.input_size == (640, 443)  # what YuNet ran on: ~1/4 of the pixels
    native = YuNetDetector(yunet.path, max_input_size=None).detect(rgb)
    assert len(shrunk) == len(native) == 6
    # Same faces, in original-image coordinates either way (boxes within 10% of a side).
    for d in shrunk:
        cx, cy = d.xmin + d.width / 2, d.ymin + d.height / 2
        nearest = min(native, key=lambda n: abs(n.xmin + n.width / 2 - cx))
        assert abs(nearest.xmin + nearest.width / 2 - cx) * w < 0.1 * d.width * w
        assert abs(nearest.ymin + nearest.height / 2 - cy) * h < 0.1 * d.height * h
        assert nearest.width == pytest.approx(d.width, rel=0.1)


def test_input_is_converted_from_rgb_to_bgr_for_yunet(yunet: YuNetDetector) -> None:
    rgb = image("astronaut")
    h, w = rgb.shape[:2]
    net = cv2.FaceDetectorYN.create(str(yunet.path), "", (w, h), 0.5, 0.3, 5000)
    _, faces = net.detect(np.ascontiguousarray(rgb[:, :, ::-1]))
    expected = yunet_to_detections(faces, w, h)
    got = yunet.detect(rgb)
    assert [(d.xmin, d.ymin, d.score) for d in got] == [(d.xmin, d.ymin, d.score) for d in expected]
    # Gray and RGBA images are accepted (converted like MediaPipe), floats rejected.
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    assert len(yunet.detect(gray)) == 1
    assert len(yunet.detect(np.dstack([rgb, np.full((h, w), 255, np.uint8)]))) == 1
    with pytest.raises(ValueError, match="uint8"):
        yunet.detect(rgb.astype(np.float32))


def test_box_styles(yunet: YuNetDetector) -> None:
    rgb = image("astronaut")
    h, w = rgb.shape[:2]
    net = cv2.FaceDetectorYN.create(str(yunet.path), "", (w, h), 0.5, 0.3, 5000)
    _, faces = net.detect(np.ascontiguousarray(rgb[:, :, ::-1]))
    x, y, bw, bh = (float(v) for v in faces[0, :4])
    (own,) = YuNetDetector(yunet.path, box="yunet").detect(rgb)
    np.testing.assert_allclose(own.box_pixels(w, h), (x, y, bw, bh), atol=1e-3)
    (blaze,) = yunet.detect(rgb)
    side = BLAZEFACE_BOX_SCALE * np.sqrt(bw * bh)
    cy = y + bh / 2 + BLAZEFACE_BOX_SHIFT * bh
    expected = (x + bw / 2 - side / 2, cy - side / 2, side, side)
    np.testing.assert_allclose(blaze.box_pixels(w, h), expected, atol=1e-3)
    np.testing.assert_array_equal(own.keypoints, blaze.keypoints)  # only the box differs
    assert own.score == blaze.score
    box, _ = _blazeface("astronaut")
    assert _iou(blaze, box) > _iou(own, box) > 0.5


def test_tragions_follow_the_eye_line() -> None:
    # A face rolled by 90°: eyes one above the other; the tragions stay on the eye line
    # (TRAGION_ALONG eye distances out) and move towards the mouth side.
    row = np.zeros((1, 15), np.float32)
    row[0, :4] = [40, 40, 40, 40]
    row[0, 4:14] = [60, 50, 60, 70, 50, 60, 40, 55, 40, 65]  # eyes at x=60; mouth at x=40
    row[0, 14] = 0.9
    (d,) = yunet_to_detections(row, 100, 100)
    px = d.keypoints * 100
    np.testing.assert_allclose(px[3], [40, 60], atol=1e-4)  # mouth centre = corner midpoint
    np.testing.assert_allclose(px[4], [60 - 20 * 0.2, 60 - 20 * TRAGION_ALONG], atol=1e-4)
    np.testing.assert_allclose(px[5], [60 - 20 * 0.2, 60 + 20 * TRAGION_ALONG], atol=1e-4)
    # The ROI turns by the eye line: +90° (clockwise on screen) for this face.
    assert detection_to_roi(d, 100, 100).rotation == pytest.approx(np.pi / 2, abs=1e-6)


@pytest.mark.parametrize("name", [*PHOTOS, "takeo"])
def test_face_mesh_from_yunet_roi_agrees_with_blazeface_roi(
    model_cache: Path, yunet: YuNetDetector, name: str
) -> None:
    rgb = image(name)
    h, w = rgb.shape[:2]
    ref = np.load(REFERENCE / f"mesh_static_{name}_refine.npz")
    kps = ref["detections_keypoints"][0, 0] * [w, h]
    iod = float(np.hypot(*(kps[1] - kps[0])))
    pipe = FrontPipeline(model_cache, refine=True, max_faces=1, static=True)

    (det,) = yunet.detect(rgb)
    roi = detection_to_roi(det, w, h)
    # The ROI's rotation is YuNet's eye line (keypoint 0 → 1), like BlazeFace's.
    eye = (det.keypoints[1] - det.keypoints[0]) * [w, h]
    assert roi.rotation == pytest.approx(-np.arctan2(-eye[1], eye[0]), abs=1e-5)
    mediapipe_roi = NormalizedRect.from_array(ref["rects_from_landmarks"][0, 0])
    assert abs(roi.rotation - mediapipe_roi.rotation) < 0.1  # radians

    pts, score = pipe.landmarks(rgb, roi)
    assert score > 0.5
    err = pixel_errors(pts, ref["landmarks"][0, 0], w, h)
    assert err.mean() <= 0.02 * iod, (err.mean(), iod)
    # One tracking step (landmarks → ROI → mesh) from each side brings them closer.
    again, _ = pipe.landmarks(rgb, landmarks_to_roi(pts, w, h))
    ref_again, _ = pipe.landmarks(rgb, landmarks_to_roi(ref["landmarks"][0, 0], w, h))
    assert pixel_errors(again, ref_again, w, h).mean() <= 0.01 * iod


#: The YuNet node alone; the face mesh on its detections is the shipped graph (below).
YUNET_NODE = """
inputs: [image]
outputs: [detections]
side_inputs: {num_faces: {}, min_detection_confidence: {}}
nodes:
  - calculator: YuNetFaceDetector
    inputs: {IMAGE: image}
    outputs: {DETECTIONS: detections}
    side_inputs: {MIN_SCORE: min_detection_confidence, NUM_FACES: num_faces}
    options: OPTIONS
"""


def yunet_node(options: str = "{}") -> GraphSpec:
    return graph_from_yaml(textwrap.dedent(YUNET_NODE.replace("OPTIONS", options)))


def test_yunet_node_in_a_graph() -> None:
    frames = [image("astronaut"), np.zeros((240, 320, 3), np.uint8), image("t1")]
    got = run_frames(yunet_node(), frames, {"num_faces": 2, "min_detection_confidence": 0.5})
    assert [len(got["detections"][t]) for t in (0, 33333, 66666)] == [1, 0, 2]  # t1: 2 of 6
    # MIN_SCORE (min_detection_confidence) reaches YuNet: above its 0.93, no face.
    strict = run_frames(
        yunet_node(), frames[:1], {"num_faces": 1, "min_detection_confidence": 0.99}
    )
    assert strict["detections"][0] == []


def test_shipped_face_mesh_runs_from_yunet_detections(model_cache: Path) -> None:
    frames = [image("astronaut"), np.zeros((240, 320, 3), np.uint8), image("t1")]
    sides = {"detector": "yunet", "num_faces": 2, "min_detection_confidence": 0.5}
    got = run_frames(load_graph("face_mesh_static"), frames, sides)
    assert [len(got["detections"][t]) for t in (0, 33333, 66666)] == [1, 0, 2]
    assert len(got["faces"][0]) == 1 and 33333 not in got["faces"]
    assert len(got["faces"][66666]) == 2  # the mesh accepts YuNet's small faces too
    face = got["faces"][0][0]
    ref = np.load(REFERENCE / "mesh_static_astronaut_refine.npz")
    assert len(face) == 478 and face.score > 0.5
    assert pixel_errors(face.points, ref["landmarks"][0, 0], 512, 512).mean() < 1.5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("{score_threshold: 1.5}", "score_threshold"),
        ("{nms_threshold: 0}", "nms_threshold"),
        ("{top_k: 0}", "top_k"),
        ("{max_detections: -1}", "max_detections"),
        ("{model: ''}", "model"),
        ("{box: square}", "box"),
        ("{max_input_size: 16}", "max_input_size"),
        ("{scor_threshold: 0.9}", "scor_threshold"),
    ],
)
def test_node_options_are_validated(options: str, message: str) -> None:
    with pytest.raises(GraphConfigError, match=message):
        yunet_node(options)


def test_plain_class_rejects_bad_arguments_and_models(tmp_path: Path, model_cache: Path) -> None:
    onnx = model_cache / "face_detection_yunet_2023mar.onnx"
    for kwargs, message in [
        ({"score_threshold": -0.1}, "score_threshold"),
        ({"nms_threshold": 1.5}, "nms_threshold"),
        ({"top_k": 0}, "top_k"),
        ({"max_detections": -2}, "max_detections"),
        ({"box": "round"}, "box"),
        ({"max_input_size": 8}, "max_input_size"),
    ]:
        with pytest.raises(ValueError, match=message):
            YuNetDetector(onnx, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="does not exist"):
        YuNetDetector(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx model")
    with pytest.raises(ModelError, match=r"cannot load .*junk\.onnx as a YuNet face detector"):
        YuNetDetector(junk)
    assert YuNetFaceDetector.registered_name == "YuNetFaceDetector"
