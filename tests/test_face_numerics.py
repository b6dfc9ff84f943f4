"""Face pipeline numerics on hand-made inputs (no models): anchors, decoding, NMS, ROIs,
association, refinement, projection and the OpenCV-3.4 warp emulation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from facegraph.vision.face import indices as ix
from facegraph.vision.face.detection import (
    FULL_RANGE,
    SHORT_RANGE,
    DetectionArrays,
    decode_detections,
    iou,
    postprocess_detections,
    project_detections,
    ssd_anchors,
    weighted_nms,
)
from facegraph.vision.face.image_to_tensor import (
    RotatedRect,
    _opencv_maps_are_exact,
    _opencv_remap_is_exact,
    _remap_numpy,
    _remap_opencv,
    _rounded_coords,
    _source_coords,
    as_rgb,
    box_points,
    crop_matrix,
    image_to_tensor,
    pad_roi,
    roi_in_pixels,
    warp_perspective_u8,
)
from facegraph.vision.face.landmarks import (
    ATTENTION_REFINEMENTS,
    LandmarkAssembler,
    Refinement,
    crop_eye,
    decode_iris_outputs,
    decode_landmarks,
    eye_rois,
    face_passes,
    face_presence,
    merge_iris_into_mesh,
    project_landmarks,
    refine_attention_outputs,
    refine_landmarks,
    remove_letterbox,
)
from facegraph.vision.face.rois import (
    associate_rects,
    detection_to_roi,
    landmarks_to_detection,
    landmarks_to_roi,
    normalize_radians,
    rect_iou,
)
from facegraph.vision.face.types import Detection, FaceLandmarks, NormalizedRect

F32 = np.float32

# ------------------------------------------------------------------------------- anchors


def test_short_range_anchors_count_order_and_centres() -> None:
    a = SHORT_RANGE.anchor_array()
    assert a.shape == (896, 4) and a.dtype == np.float32
    # Stride 8: 16x16 grid, 2 anchors per cell, row-major, anchors of a cell adjacent.
    assert np.array_equal(a[0], [1 / 32, 1 / 32, 1, 1]) and np.array_equal(a[1], a[0])
    assert np.allclose(a[2, :2], [3 / 32, 1 / 32])  # next column, same row
    assert np.allclose(a[32, :2], [1 / 32, 3 / 32])  # next row
    assert np.allclose(a[511, :2], [31 / 32, 31 / 32])
    # Strides 16, 16, 16 merged: 8x8 grid with 6 anchors per cell.
    assert np.allclose(a[512:518, :2], [[1 / 16, 1 / 16]] * 6)
    assert np.allclose(a[518, :2], [3 / 16, 1 / 16])
    assert np.allclose(a[-1, :2], [15 / 16, 15 / 16])
    assert np.all(a[:, 2:] == 1.0)  # fixed anchor size


def test_full_range_anchors() -> None:
    a = FULL_RANGE.anchor_array()
    assert a.shape == (2304, 4)
    assert np.allclose(a[0, :2], [0.5 / 48, 0.5 / 48]) and np.allclose(
        a[1, :2], [1.5 / 48, 0.5 / 48]
    )
    assert np.allclose(a[48, :2], [0.5 / 48, 1.5 / 48])


def test_anchor_sizes_without_fixed_size_follow_scales() -> None:
    from dataclasses import replace

    opts = replace(SHORT_RANGE.anchors, fixed_anchor_size=False)
    a = ssd_anchors(opts)
    # Layer 0: scale = min_scale, the interpolated anchor sqrt(s0 * s1).
    s0, s1 = 0.1484375, 0.1484375 + (0.75 - 0.1484375) / 3
    assert np.allclose(a[0, 2:], [s0, s0]) and np.allclose(a[1, 2:], [math.sqrt(s0 * s1)] * 2)


# ------------------------------------------------------------------------------- decoding


def _raw(n: int, entries: dict[int, tuple[float, list[float]]]) -> tuple[np.ndarray, np.ndarray]:
    reg = np.zeros((1, n, 16), F32)
    cls = np.full((1, n, 1), -50.0, F32)
    for i, (logit, values) in entries.items():
        cls[0, i, 0] = logit
        reg[0, i, : len(values)] = values
    return reg, cls


def test_decode_box_keypoints_relative_to_anchor() -> None:
    anchors = SHORT_RANGE.anchor_array()
    # Anchor 2 is centred at (3/32, 1/32). XYWH in 128-px units plus 6 keypoints.
    reg, cls = _raw(896, {2: (3.0, [12.8, -6.4, 25.6, 12.8, 6.4, 0, -6.4, 0])})
    d = decode_detections(reg, cls, anchors, 128, 0.5)
    assert len(d) == 1
    xc, yc = 3 / 32 + 0.1, 1 / 32 - 0.05
    assert np.allclose(d.boxes[0], [xc - 0.1, yc - 0.05, 0.2, 0.1], atol=1e-7)
    assert np.allclose(d.keypoints[0, 0], [3 / 32 + 0.05, 1 / 32])
    assert np.allclose(d.keypoints[0, 1], [3 / 32 - 0.05, 1 / 32])
    assert np.allclose(d.keypoints[0, 2:], [[3 / 32, 1 / 32]] * 4)  # zero offsets = centre
    assert d.scores[0] == pytest.approx(1 / (1 + math.exp(-3)), rel=1e-6)


def test_decode_threshold_is_inclusive_and_scores_are_clipped() -> None:
    anchors = SHORT_RANGE.anchor_array()
    reg, cls = _raw(896, {0: (0.0, [0, 0, 1, 1]), 1: (-1e-3, [0, 0, 1, 1]), 5: (1e6, [0, 0, 1, 1])})
    d = decode_detections(reg, cls, anchors, 128, 0.5)
    # logit 0 → exactly 0.5, kept (the rejection test is score < threshold); huge → clip 100.
    assert sorted(d.scores.tolist()) == [0.5, 1.0]


def test_decode_keeps_exactly_the_scores_at_or_above_the_threshold() -> None:
    """The sigmoid runs only on anchors whose logit can reach min_score: around each
    threshold (and at 0, where overflowed scores of exactly 0 count, and at 1) the kept
    scores are those of the float32 sigmoid over every anchor, and NaN logits are kept
    with a NaN score (the C++ test is score < threshold, false for NaN)."""
    anchors = SHORT_RANGE.anchor_array()
    reg = np.zeros((1, 896, 16), F32)
    for p in (0.0, 0.3, 0.5, 0.9999, 1.0):
        centre = 0.0 if p in (0.0, 1.0) else math.log(p / (1 - p))
        spread = 120.0 if p in (0.0, 1.0) else 0.5
        logits = np.linspace(centre - spread, centre + spread, 896).astype(F32)
        logits[7] = np.nan
        with np.errstate(over="ignore"):
            every = F32(1.0) / (F32(1.0) + np.exp(-np.clip(logits, F32(-100), F32(100))))
        want = every[~(every < F32(p))]
        got = decode_detections(reg, logits.reshape(1, 896, 1), anchors, 128, p).scores
        assert np.array_equal(got, want, equal_nan=True) and np.isnan(got).sum() == 1, p


def test_decode_drops_negative_and_nan_sizes() -> None:
    anchors = SHORT_RANGE.anchor_array()
    reg, cls = _raw(
        896, {0: (5.0, [0, 0, -1, 1]), 1: (5.0, [0, 0, 1, np.nan]), 2: (5.0, [0, 0, 0, 0])}
    )
    d = decode_detections(reg, cls, anchors, 128, 0.5)
    assert len(d) == 1 and d.boxes[0, 2] == 0  # zero size is allowed


# ------------------------------------------------------------------------------------ NMS


def _dets(rows: list[tuple[list[float], float]]) -> DetectionArrays:
    boxes = np.array([r[0] for r in rows], F32)
    kps = np.repeat(boxes[:, None, :2], 6, axis=1)  # keypoints at the box corner
    return DetectionArrays(boxes, kps, np.array([r[1] for r in rows], F32))


def test_iou_rules() -> None:
    a = np.array([0, 0, 1, 1], F32)
    assert iou(a, np.array([[0, 0, 1, 1]]))[0] == pytest.approx(1.0)
    assert iou(a, np.array([[0.5, 0, 1, 1]]))[0] == pytest.approx(1 / 3)
    assert iou(a, np.array([[1, 0, 1, 1]]))[0] == 0.0  # touching: intersects with area 0
    assert iou(a, np.array([[2, 0, 1, 1]]))[0] == 0.0


def test_weighted_nms_averages_candidates_keeps_top_score_and_orders_by_score() -> None:
    dets = _dets(
        [
            ([0.50, 0.50, 0.2, 0.2], 0.6),  # overlaps the 0.9 box (IoU 0.68)
            ([0.00, 0.00, 0.2, 0.2], 0.8),  # alone
            ([0.52, 0.52, 0.2, 0.2], 0.9),
        ]
    )
    out = weighted_nms(dets, 0.3)
    assert out.scores.tolist() == pytest.approx([0.9, 0.8])
    w = np.array([0.9, 0.6])
    xmin = (0.52 * w[0] + 0.50 * w[1]) / w.sum()
    assert np.allclose(out.boxes[0], [xmin, xmin, 0.2, 0.2], atol=1e-6)
    assert np.allclose(out.keypoints[0], xmin, atol=1e-6)
    assert np.allclose(out.boxes[1], [0, 0, 0.2, 0.2])


def test_weighted_nms_threshold_is_strict() -> None:
    # IoU exactly 1/3 vs threshold 1/3 (as float32): not a candidate → both survive.
    dets = _dets([([0, 0, 1, 1], 0.9), ([0.5, 0, 1, 1], 0.8)])
    thr = float(iou(dets.boxes[0], dets.boxes[1:])[0])
    assert len(weighted_nms(dets, thr)) == 2
    assert len(weighted_nms(dets, thr - 1e-3)) == 1


def test_weighted_nms_max_out_gives_the_first_outputs_of_the_full_result() -> None:
    dets = _dets(
        [
            ([0.50, 0.50, 0.2, 0.2], 0.6),
            ([0.00, 0.00, 0.2, 0.2], 0.8),
            ([0.52, 0.52, 0.2, 0.2], 0.9),
            ([0.70, 0.00, 0.2, 0.2], 0.7),
        ]
    )
    full = weighted_nms(dets, 0.3)
    assert len(full) == 3
    for n in (0, 1, 2, 3, 5):
        some = weighted_nms(dets, 0.3, max_out=n)
        assert len(some) == min(n, 3)
        assert np.array_equal(some.boxes, full.boxes[:n])
        assert np.array_equal(some.keypoints, full.keypoints[:n])
        assert np.array_equal(some.scores, full.scores[:n])


def test_weighted_nms_keeps_a_zero_area_best_detection_as_is_and_stops() -> None:
    """A box of zero area overlaps nothing, itself included: MediaPipe outputs it unchanged
    and stops (nothing was suppressed); this used to raise an IndexError."""
    dets = _dets([([0.3, 0.3, 0.0, 0.2], 0.9), ([0.3, 0.3, 0.2, 0.2], 0.8)])
    out = weighted_nms(dets, 0.3)
    assert len(out) == 1
    assert np.array_equal(out.boxes[0], dets.boxes[0])
    assert np.array_equal(out.keypoints[0], dets.keypoints[0])
    assert out.scores[0] == dets.scores[0]


def _nms_by_definition(dets: DetectionArrays, thr: float) -> DetectionArrays:
    """Weighted NMS written the slow, obvious way: one IoU pair at a time, float32 scalar
    sums in candidate order (MediaPipe's loop)."""
    order = sorted(range(len(dets)), key=lambda i: -dets.scores[i])  # stable: ties keep order
    remaining = list(order)
    boxes, kps, scores = [], [], []
    while remaining:
        top = remaining[0]
        cand = [j for j in remaining if iou(dets.boxes[top], dets.boxes[j : j + 1])[0] > F32(thr)]
        if not cand:  # a zero-area best box: kept as is, and the loop stops
            boxes.append(dets.boxes[top])
            kps.append(dets.keypoints[top])
            scores.append(dets.scores[top])
            break
        b = dets.boxes
        corners = [
            np.array([b[j, 0], b[j, 1], b[j, 0] + b[j, 2], b[j, 1] + b[j, 3]], F32) for j in cand
        ]
        vals = [
            np.concatenate([corners[n], dets.keypoints[j].reshape(-1)]) for n, j in enumerate(cand)
        ]
        total, acc = dets.scores[cand[0]], vals[0] * dets.scores[cand[0]]
        for n, j in enumerate(cand[1:], 1):
            total = F32(total + dets.scores[j])
            acc = (acc + vals[n] * dets.scores[j]).astype(F32)
        mean = (acc / total).astype(F32)
        boxes.append(np.concatenate([mean[:2], mean[2:4] - mean[:2]]))
        kps.append(mean[4:].reshape(-1, 2))
        scores.append(dets.scores[top])
        remaining = [j for j in remaining if j not in cand]
    k = dets.keypoints.shape[1]
    return DetectionArrays(
        np.array(boxes, F32).reshape(-1, 4),
        np.array(kps, F32).reshape(-1, k, 2),
        np.array(scores, F32),
    )


@pytest.mark.parametrize("seed", range(6))
def test_weighted_nms_equals_its_definition_bit_for_bit(seed: int) -> None:
    """Clusters of overlapping boxes, tied scores and a zero-area box: the vectorised NMS
    gives exactly the bits of the pair-by-pair loop."""
    rng = np.random.default_rng(seed)
    n = 40
    centres = rng.random((4, 2)).astype(F32)[rng.integers(0, 2 + seed % 3, n)]
    xy = (centres + rng.normal(0, 0.02, (n, 2))).astype(F32)
    wh = rng.uniform(0.05, 0.2, (n, 2)).astype(F32)
    if seed % 2:
        wh[3, 0] = 0.0  # zero area: overlaps nothing
    scores = rng.choice(np.array([0.6, 0.7, 0.8, 0.9], F32), n)  # many ties
    boxes = np.concatenate([xy, wh], axis=1)
    kps = (xy[:, None, :] + rng.normal(0, 0.01, (n, 6, 2))).astype(F32)
    dets = DetectionArrays(boxes, kps, scores)
    want = _nms_by_definition(dets, 0.3)
    got = weighted_nms(dets, 0.3)
    assert got.boxes.tobytes() == want.boxes.tobytes()
    assert got.keypoints.tobytes() == want.keypoints.tobytes()
    assert got.scores.tobytes() == want.scores.tobytes()


def test_letterbox_projection_640x480() -> None:
    img = np.full((480, 640, 3), 255, np.uint8)
    crop = image_to_tensor(img, None, 128, 128, (-1, 1), "zero", keep_aspect=True)
    assert crop.padding == pytest.approx((0.0, 0.125, 0.0, 0.125))
    # Letterbox rows sample the constant 0 → -1.0; image rows are 255 → 1.0 (row 112 is the
    # image's last row and blends with the border).
    assert crop.tensor.shape == (1, 128, 128, 3)
    assert np.all(crop.tensor[0, :16] == -1.0) and np.all(crop.tensor[0, 113:] == -1.0)
    assert np.all(crop.tensor[0, 16:112] == 1.0)
    dets = _dets([([0.25, 0.125, 0.5, 0.75], 0.9)])
    p = project_detections(dets, crop.matrix)
    # Tensor y 0.125 is the image's top edge, 0.875 its bottom; x is unchanged.
    assert np.allclose(p.boxes[0], [0.25, 0.0, 0.5, 1.0], atol=1e-6)


def test_postprocess_clips_to_max_faces_by_score() -> None:
    reg, cls = _raw(
        896, {0: (1.0, [0, 0, 8, 8]), 300: (4.0, [0, 0, 8, 8]), 700: (2.0, [0, 0, 8, 8])}
    )
    m = np.eye(4, dtype=F32)
    dets = postprocess_detections(reg, cls, SHORT_RANGE, m, 0.5, max_faces=2)
    assert [round(d.score, 4) for d in dets] == [
        round(1 / (1 + math.exp(-4)), 4),
        round(1 / (1 + math.exp(-2)), 4),
    ]
    assert all(isinstance(d, Detection) and d.keypoints.shape == (6, 2) for d in dets)


# ----------------------------------------------------------------------------------- ROIs


def test_normalize_radians() -> None:
    assert normalize_radians(3.5) == pytest.approx(3.5 - 2 * math.pi, abs=1e-6)
    assert normalize_radians(-3.0) == pytest.approx(-3.0)
    # The input is a float: float32(pi) is a hair above pi and wraps to -pi; float32(-pi) is
    # a hair below -pi and wraps to +pi (as in MediaPipe).
    assert normalize_radians(math.pi) == pytest.approx(-math.pi, abs=1e-6)
    assert normalize_radians(-math.pi) == pytest.approx(math.pi, abs=1e-6)
    assert normalize_radians(0.25) == pytest.approx(0.25)


def test_detection_to_roi_square_long_and_rotation_sign() -> None:
    # 640x480 image; box 128x48 px; eyes (256,144) → (320,192): the right eye is lower.
    kps = np.array([[0.4, 0.3], [0.5, 0.4]] + [[0.45, 0.35]] * 4, F32)
    det = Detection(0.4, 0.3, 0.2, 0.1, 0.9, kps)
    roi = detection_to_roi(det, 640, 480)
    assert roi.x_center == pytest.approx(0.5) and roi.y_center == pytest.approx(0.35)
    assert roi.width == pytest.approx(0.3) and roi.height == pytest.approx(0.4)  # 192 px square
    assert roi.width * 640 == pytest.approx(roi.height * 480)
    # Clockwise on screen (y down) is positive.
    assert roi.rotation == pytest.approx(math.atan2(48, 64), abs=1e-6)


def test_landmarks_to_roi_uses_bbox_of_all_points_and_eye_corners() -> None:
    pts = np.zeros((478, 3), F32)
    pts[:, 0] = np.linspace(0.2, 0.6, 478)
    pts[:, 1] = np.linspace(0.3, 0.5, 478)
    pts[33, :2] = (0.3, 0.4)
    pts[263, :2] = (0.5, 0.4)  # level eyes → rotation 0
    roi = landmarks_to_roi(pts, 400, 400)
    assert roi.x_center == pytest.approx(0.4) and roi.y_center == pytest.approx(0.4)
    assert roi.width == pytest.approx(0.6) and roi.height == pytest.approx(0.6)
    assert roi.rotation == pytest.approx(0.0, abs=1e-7)


def test_landmarks_to_roi_is_the_roi_of_the_landmark_detection_bit_for_bit() -> None:
    # landmarks_to_roi skips building the detection (MediaPipe's two calculators in one);
    # the ROI must stay exactly what the two steps give, NaN and off-image points included.
    rng = np.random.default_rng(7)
    clouds = [rng.normal(0.5, 0.2, (478, 3)).astype(F32) for _ in range(50)]
    clouds.append(np.full((478, 3), -0.5, F32))  # the FLT_MIN quirk
    nan_cloud = rng.normal(0.5, 0.2, (478, 3)).astype(F32)
    nan_cloud[5, 0] = np.nan
    clouds.append(nan_cloud)
    for pts in clouds:
        for w, h in ((640, 480), (960, 540), (300, 700)):
            two_steps = detection_to_roi(landmarks_to_detection(pts), w, h, 33, 263)
            assert repr(landmarks_to_roi(pts, w, h)) == repr(two_steps)


def test_face_presence_is_the_float32_sigmoid_without_overflow_warnings() -> None:
    # Far below the threshold exp(-logit) overflows to inf: score 0, as in C++, silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert face_presence(np.array([-100.0], F32)) == 0.0
        assert face_presence(np.array([-88.0], F32)) > 0.0
        assert face_presence(np.array([20.0], F32)) == 1.0
    logits = np.linspace(-30, 30, 601, dtype=F32)
    expected = F32(1.0) / (F32(1.0) + np.exp(-logits))
    assert [face_presence(v[None]) for v in logits] == [float(e) for e in expected]


def test_landmarks_to_detection_flt_min_quirk() -> None:
    pts = np.full((5, 3), -0.5, F32)
    det = landmarks_to_detection(pts)
    # MediaPipe starts its max accumulators at FLT_MIN (positive): xmax never goes below it.
    assert det.xmin == -0.5 and det.width == pytest.approx(0.5)


def test_association_later_stream_wins_and_keeps_order() -> None:
    a = NormalizedRect(0.3, 0.3, 0.2, 0.2)
    b = NormalizedRect(0.7, 0.7, 0.2, 0.2)
    a_prev = NormalizedRect(0.31, 0.3, 0.2, 0.2, 0.1, rect_id=7)
    out = associate_rects([[a, b], [a_prev]])
    assert out == [b, a_prev]
    # A new detection that overlaps a tracked rect inherits its id.
    out2 = associate_rects([[a_prev], [a]])
    assert out2[0].rect_id == 7 and out2[0].x_center == a.x_center
    # Empty or missing first stream: the previous rects pass through.
    assert associate_rects([None, [a_prev, b]]) == [a_prev, b]
    assert associate_rects([[], []]) == []


def test_association_ignores_rotation_and_uses_strict_threshold() -> None:
    a = NormalizedRect(0.5, 0.5, 0.2, 0.2, 0.0)
    rotated = NormalizedRect(0.5, 0.5, 0.2, 0.2, 0.7)
    assert rect_iou(a, rotated) == pytest.approx(1.0)
    half = NormalizedRect(0.5 + 0.2 / 3, 0.5, 0.2, 0.2)  # IoU = 0.5 exactly (in reals)
    assert rect_iou(a, half) == pytest.approx(0.5, abs=1e-6)
    assert len(associate_rects([[a], [NormalizedRect(0.55, 0.5, 0.2, 0.2)]])) == 1


# -------------------------------------------------------------------- landmarks and refinement


def _attention_outputs(rng: np.random.Generator) -> list[np.ndarray]:
    mesh = rng.uniform(0, 192, (1, 1, 1, 1404)).astype(F32)
    sizes = [160, 142, 142, 10, 10]
    return [mesh] + [rng.uniform(0, 192, (1, 1, 1, n)).astype(F32) for n in sizes]


def test_refinement_covers_0_to_477_and_applies_z_rules() -> None:
    rng = np.random.default_rng(0)
    outs = _attention_outputs(rng)
    pts = refine_attention_outputs(outs)
    assert pts.shape == (478, 3) and pts.dtype == np.float32
    mesh = outs[0].reshape(468, 3) / F32(192)
    lips = outs[1].reshape(80, 2) / F32(192)
    left_iris = outs[4].reshape(5, 2) / F32(192)
    # Lips overwrite x, y but keep the mesh z.
    assert np.array_equal(pts[list(ix.LIPS), :2], lips)
    assert np.array_equal(pts[list(ix.LIPS), 2], mesh[list(ix.LIPS), 2])
    # Untouched mesh points are copied as is.
    untouched = sorted(set(range(468)) - set(ix.LIPS) - set(ix.LEFT_EYE) - set(ix.RIGHT_EYE))
    assert np.array_equal(pts[untouched], mesh[untouched])
    # Irises: xy from the model, z = mean mesh z of the 16 eye-contour points.
    assert np.array_equal(pts[468:473, :2], left_iris)
    assert np.allclose(pts[468:473, 2], mesh[list(ix.LEFT_EYE[:16]), 2].mean(), rtol=1e-6)
    assert np.allclose(pts[473:478, 2], mesh[list(ix.RIGHT_EYE[:16]), 2].mean(), rtol=1e-6)
    covered = sorted({i for r in ATTENTION_REFINEMENTS for i in r.indices})
    assert covered == list(range(478))


def test_fused_assembler_equals_decode_then_refine_bit_for_bit() -> None:
    # RefineLandmarks uses LandmarkAssembler per frame; it must be the unfused result.
    rng = np.random.default_rng(1)
    asm = LandmarkAssembler(ATTENTION_REFINEMENTS)
    for _ in range(20):
        outs = _attention_outputs(rng)
        assert np.array_equal(
            asm(outs).view(np.uint32), refine_attention_outputs(outs).view(np.uint32)
        )
    # Custom rules: overlapping sets, a 2-D "copy" (z = 0), an average over earlier z.
    refs = (
        Refinement(tuple(range(6)), "copy"),
        Refinement((4, 1), "copy"),
        Refinement((5,), "average", (0, 1, 2)),
    )
    outs = [
        rng.normal(size=18).astype(F32),
        rng.normal(size=(2, 2)).astype(F32),
        rng.normal(size=2).astype(F32),
    ]
    sets = [decode_landmarks(t, len(r.indices), 50, 40) for t, r in zip(outs, refs, strict=True)]
    assert np.array_equal(LandmarkAssembler(refs, 50, 40)(outs), refine_landmarks(sets, refs))
    with pytest.raises(ValueError, match="not a multiple of 468 landmarks"):
        asm([o.reshape(-1)[:-1] for o in _attention_outputs(rng)])


def test_refinement_rejects_gaps_and_size_mismatch() -> None:
    with pytest.raises(ValueError, match="without gaps"):
        refine_landmarks([np.zeros((2, 3))], [Refinement((0, 2), "copy")])
    with pytest.raises(ValueError, match="3 landmarks but 2 indices"):
        refine_landmarks([np.zeros((3, 3))], [Refinement((0, 1), "copy")])


def test_index_lists_are_consistent() -> None:
    assert len(ix.LIPS) == 80 and len(set(ix.LIPS)) == 80
    assert len(ix.LEFT_EYE) == 71 and len(ix.RIGHT_EYE) == 71
    assert not set(ix.LIPS) & set(ix.LEFT_EYE) and not set(ix.LEFT_EYE) & set(ix.RIGHT_EYE)
    assert ix.LEFT_EYE[0] == 33 and ix.LEFT_EYE[8] == 133 and ix.RIGHT_EYE[0] == 263
    assert set(ix.REGION_POINTS["leftIris"]) == {473, 474, 475, 476, 477}
    names = ix.region_names(468)
    assert names[61] == "lips" and names[263] == "leftEye" and names[10] == "faceOval"


def test_decode_landmarks_scales_z_by_width_and_2d_outputs_get_zero_z() -> None:
    t = np.array([96.0, 48.0, 19.2, 192.0, 0.0, -9.6], F32)
    p = decode_landmarks(t, 2, 192, 96)
    assert np.allclose(p, [[0.5, 0.5, 0.1], [1.0, 0.0, -0.05]])
    p2 = decode_landmarks(np.array([16.0, 32.0], F32), 1, 64, 64, flip_horizontally=True)
    assert np.allclose(p2, [[0.75, 0.5, 0.0]])


def test_projection_rotation_is_clockwise_and_z_scales_with_width() -> None:
    roi = NormalizedRect(0.5, 0.4, 0.2, 0.3, math.pi / 2)
    p = project_landmarks(np.array([[1.0, 0.5, 0.1], [0.5, 0.5, 0.0]], F32), roi)
    # The crop's right edge maps below the centre (clockwise 90°), scaled by the height.
    assert np.allclose(p[0], [0.5, 0.4 + 0.5 * 0.3, 0.02], atol=1e-6)
    assert np.allclose(p[1], [0.5, 0.4, 0.0])


def test_face_flag_threshold_is_strict() -> None:
    assert face_presence(np.array([0.0])) == 0.5
    assert not face_passes(0.5, 0.5) and face_passes(0.5000001, 0.5)


def test_face_landmarks_value_is_read_only() -> None:
    f = FaceLandmarks(np.zeros((478, 3)), 0.9, NormalizedRect(0.5, 0.5, 0.1, 0.1))
    assert f.points.dtype == np.float32 and len(f) == 478
    with pytest.raises(ValueError):
        f.points[0, 0] = 1.0
    assert np.allclose(f.pixels(640, 480)[1], [0, 0, 0])


# ------------------------------------------------------------------------------ iris path


def test_eye_rois_iris_crop_and_merge() -> None:
    mesh = np.zeros((468, 3), F32)
    mesh[33, :2], mesh[133, :2] = (0.30, 0.40), (0.40, 0.40)
    mesh[362, :2], mesh[263, :2] = (0.60, 0.40), (0.70, 0.45)
    left, right = eye_rois(mesh, 200, 100)
    assert left.x_center == pytest.approx(0.35) and left.rotation == pytest.approx(0.0, abs=1e-7)
    assert left.width * 200 == pytest.approx(2.3 * 20) and left.height * 100 == pytest.approx(46)
    assert right.rotation == pytest.approx(math.atan2(0.05 * 100, 0.1 * 200), abs=1e-6)

    img = np.zeros((100, 200, 3), np.uint8)
    img[:, :70] = 255  # bright left part of the image
    crop = crop_eye(img, left, flip=False)
    flipped = crop_eye(img, left, flip=True)
    assert crop.tensor.shape == (1, 64, 64, 3) and crop.padding == (0.0, 0.0, 0.0, 0.0)
    assert np.array_equal(flipped.tensor[0, :, ::-1], crop.tensor[0])
    assert crop.tensor[0, 32, 0, 0] == 1.0 and crop.tensor[0, 32, 63, 0] == 0.0

    # Decoding a flipped crop undoes the flip: model x = 16 ↔ crop x = 48.
    contour = np.tile(np.array([16.0, 32.0, 0.0], F32), 71)
    iris = np.tile(np.array([16.0, 32.0, 6.4], F32), 5)
    c_pts, i_pts = decode_iris_outputs(contour, iris, flipped, left)
    expect_x = left.x_center + (48 / 64 - 0.5) * left.width
    assert np.allclose(c_pts[:, 0], expect_x, atol=1e-6)
    assert np.allclose(i_pts[:, 2], 0.1 * left.width)

    merged = merge_iris_into_mesh(mesh, c_pts, c_pts + 1, i_pts, i_pts + 1)
    assert merged.shape == (478, 3)
    assert np.array_equal(merged[list(ix.LEFT_EYE)], c_pts)
    assert np.array_equal(merged[468:473], i_pts) and np.array_equal(merged[473:], i_pts + 1)


def test_remove_letterbox() -> None:
    p = remove_letterbox(np.array([[0.5, 0.25, 0.2]], F32), (0.0, 0.25, 0.0, 0.25))
    assert np.allclose(p, [[0.5, 0.0, 0.2]])


# ----------------------------------------------------------------------------- warp / crop


def _direct_bilinear(img: np.ndarray, m: np.ndarray, ow: int, oh: int, border: str) -> np.ndarray:
    """Reference: sample at the 1/32-quantised source point with float64 bilinear weights
    (exact dyadic numbers), round half up. Independent of the fixed-point code path."""
    h, w, _ = img.shape
    v, u = np.mgrid[0:oh, 0:ow].astype(np.float64)
    q = m @ np.stack([u.ravel(), v.ravel(), np.ones(u.size)])
    sx = np.rint(q[0] / q[2] * 32) / 32
    sy = np.rint(q[1] / q[2] * 32) / 32
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    fx, fy = sx - x0, sy - y0
    acc = np.zeros((u.size, img.shape[2]))
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            vals = img[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)].astype(np.float64)
            if border == "zero":
                vals[(xi < 0) | (xi >= w) | (yi < 0) | (yi >= h)] = 0
            acc += vals * (wx * wy)[:, None]
    return np.floor(acc + 0.5).astype(np.uint8).reshape(oh, ow, -1)


@pytest.mark.parametrize("border", ["replicate", "zero"])
def test_warp_matches_direct_fixed_point_formula(border: str) -> None:
    rng = np.random.default_rng(3)
    for _ in range(6):
        img = rng.integers(0, 256, (rng.integers(20, 90), rng.integers(20, 90), 3), np.uint8)
        h, w = img.shape[:2]
        rect = NormalizedRect(
            rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.3, 1.6), rng.uniform(0.3, 1.6),
            rng.uniform(-3, 3),
        )  # fmt: skip
        m = crop_matrix(roi_in_pixels(rect, w, h), 48, 40)
        got = warp_perspective_u8(img, m, 48, 40, border)  # type: ignore[arg-type]
        want = _direct_bilinear(img, m, 48, 40, border)
        # Equal except where the 1/32-px rounding hits an exact tie differently (rare: none
        # with this seed; a few values allowed).
        assert np.count_nonzero(got != want) <= 3


def test_warp_backends_agree_and_integer_translation_is_a_copy() -> None:
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (60, 80, 3), np.uint8)
    fx = rng.integers(-15 * 32, 95 * 32, (30, 31), dtype=np.int64)
    fy = rng.integers(-15 * 32, 75 * 32, (30, 31), dtype=np.int64)
    for border in ("replicate", "zero"):
        assert np.array_equal(_remap_numpy(img, fx, fy, border), _remap_opencv(img, fx, fy, border))
    # An unrotated ROI whose size equals the output and whose corner is on a pixel centre:
    # output pixel (u, v) samples exactly source (x0 + u, y0 + v).
    rect = NormalizedRect((10 + 16) / 80, (5 + 12) / 60, 32 / 80, 24 / 60, 0.0)
    out = image_to_tensor(img, rect, 32, 24, (0, 255))
    assert np.array_equal(out.tensor[0], img[5:29, 10:42].astype(np.float32))


def test_float_map_route_equals_the_integer_maps_on_crops() -> None:
    # warp_perspective_u8 hands rounded coordinates to cv2.convertMaps when a bound proves
    # them small; the result must be the integer-map remap's, byte for byte.
    # The route is self-checked once; on the OpenCV we ship with it must be taken.
    assert _opencv_remap_is_exact() and _opencv_maps_are_exact()
    rng = np.random.default_rng(11)
    img = rng.integers(0, 256, (120, 160, 3), np.uint8)
    for k in range(40):
        rect = NormalizedRect(
            rng.uniform(-0.3, 1.3), rng.uniform(-0.3, 1.3), rng.uniform(0.05, 2.5),
            rng.uniform(0.05, 2.5), rng.uniform(-4, 4) if k % 4 else 0.0,
        )  # fmt: skip
        m = crop_matrix(roi_in_pixels(rect, 160, 120), 64, 48)
        assert _rounded_coords(m, 64, 48, 32.0)[2]  # typical crops take the fast route
        fx, fy = _source_coords(m, 64, 48, 32.0)
        for border in ("replicate", "zero"):
            want = _remap_numpy(img, fx, fy, border)
            assert np.array_equal(warp_perspective_u8(img, m, 64, 48, border), want)
    # Coordinates beyond what float32 holds exactly take the integer route, same result.
    huge = np.array([[1e6, 0.5, 3e6], [0.0, 1e6, -2e6], [0.0, 0.0, 1.0]])
    assert not _rounded_coords(huge, 16, 8, 32.0)[2]
    fx, fy = _source_coords(huge, 16, 8, 32.0)
    assert np.array_equal(
        warp_perspective_u8(img, huge, 16, 8), _remap_numpy(img, fx, fy, "replicate")
    )


def test_crops_on_two_threads_at_once_equal_the_same_crops_one_by_one() -> None:
    # warp_perspective_u8 reuses per-thread coordinate buffers: crops running at the
    # same time on two threads (the thread-pool executor) must not see each other's.
    import threading

    rng = np.random.default_rng(13)
    img = rng.integers(0, 256, (120, 160, 3), np.uint8)
    mats = [
        crop_matrix(roi_in_pixels(NormalizedRect(0.5, 0.5, s, s, r), 160, 120), 64, 64)
        for s, r in ((0.4, 0.3), (0.9, -1.1))
    ]
    want = [warp_perspective_u8(img, m, 64, 64) for m in mats]
    start = threading.Barrier(2)
    got: list[list[np.ndarray]] = [[], []]

    def crop(k: int) -> None:
        start.wait(timeout=30)
        for _ in range(200):
            got[k].append(warp_perspective_u8(img, mats[k], 64, 64))

    threads = [threading.Thread(target=crop, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for k in (0, 1):
        assert len(got[k]) == 200
        assert all(np.array_equal(g, want[k]) for g in got[k])


def test_whole_image_crop_reuses_its_plan_and_matches_the_general_path() -> None:
    # rect=None (the detectors) caches matrix and maps per size; every frame must still
    # be the general crop of that frame, whatever the memory layout.
    rng = np.random.default_rng(12)
    for keep, border in ((True, "zero"), (False, "replicate")):
        roi, pad = pad_roi(roi_in_pixels(None, 90, 70), 32, 32, keep)
        m = crop_matrix(roi, 32, 32)
        for k in range(3):
            img = rng.integers(0, 256, (70, 90, 3), np.uint8)
            img = np.asfortranarray(img) if k == 2 else img
            got = image_to_tensor(img, None, 32, 32, (0, 255), border, keep)  # type: ignore[arg-type]
            want = warp_perspective_u8(img, m, 32, 32, border, backend="numpy")  # type: ignore[arg-type]
            assert np.array_equal(got.tensor[0], want.astype(np.float32))
            assert got.padding == pad and got.roi == roi
            got.matrix[:] = 0  # the caller's copy: the next frame is unaffected


@pytest.mark.parametrize(
    ("width", "height", "size"),
    [
        (640, 480, 128),
        (480, 640, 128),
        (1280, 720, 128),
        (1920, 1080, 192),
        (256, 256, 128),
        (960, 540, 128),
        (400, 300, 128),
        (641, 480, 128),
    ],
)
def test_detector_letterbox_of_common_frame_sizes_is_the_general_crop(
    width: int, height: int, size: int
) -> None:
    # 640x480, 1280x720, 1920x1080 onto the detectors' squares sample whole pixels at an
    # integer step (a strided copy, no interpolation); 960x540, 400x300 and 641x480 do not.
    # Either way the letterbox must be the general bilinear crop, bit for bit, with zeros
    # in the bars, and stay so for a frame that is not C-contiguous.
    rng = np.random.default_rng(width * 7 + height)
    roi, _ = pad_roi(roi_in_pixels(None, width, height), size, size, True)
    m = crop_matrix(roi, size, size)
    img = rng.integers(1, 256, (height, width, 3), np.uint8)  # no zeros: bars are visible
    want = warp_perspective_u8(img, m, size, size, "zero", backend="numpy")
    for frame in (img, np.asfortranarray(img)):
        got = image_to_tensor(frame, None, size, size, None, "zero", keep_aspect=True)
        assert got.tensor.dtype == np.uint8 and got.tensor.shape == (1, size, size, 3)
        assert np.array_equal(got.tensor[0], want)
    bars = (want == 0).all(axis=2)
    assert bars.any() == (width != height)


def test_source_coordinates_follow_opencv_block_order() -> None:
    # A pure scale by 1/3 has no exact binary representation: every pixel's coordinate is
    # computed from its block start, as OpenCV does, and stays within 1/32 px of the truth.
    m = np.array([[1 / 3, 0, 0.1], [0, 1 / 3, 0.2], [0, 0, 1]])
    fx, fy = _source_coords(m, 192, 192, 32.0)
    u = np.arange(192)
    assert np.abs(fx[0] - (u / 3 + 0.1) * 32).max() <= 0.5
    assert np.abs(fy[:, 0] - (u / 3 + 0.2) * 32).max() <= 0.5


def test_image_to_tensor_value_ranges_and_validation() -> None:
    img = np.full((10, 10, 3), 255, np.uint8)
    img[0, 0] = 0
    t = image_to_tensor(img, None, 10, 10, (-1.0, 1.0)).tensor
    assert t[0, 0, 0, 0] == -1.0 and t[0, 5, 5, 0] == 1.0
    t01 = image_to_tensor(img, None, 10, 10).tensor
    assert t01.dtype == np.float32 and t01[0, 5, 5, 1] == 1.0
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        image_to_tensor(np.zeros((10, 10), np.uint8), None, 4, 4)
    with pytest.raises(ValueError, match="empty or NaN ROI"):
        image_to_tensor(img, NormalizedRect(0.5, 0.5, 0.0, 0.1), 4, 4)
    padded, pad = pad_roi(roi_in_pixels(None, 100, 50), 64, 64, keep_aspect=True)
    assert (padded.width, padded.height) == (100, 100) and pad == (0.0, 0.25, 0.0, 0.25)


def test_replicate_border_extends_edge_pixels() -> None:
    img = np.zeros((20, 20, 3), np.uint8)
    img[:, -1] = 200  # right column
    # ROI centred on the right edge: its right half lies outside the image.
    rect = NormalizedRect(1.0, 0.5, 0.5, 0.5)
    rep = image_to_tensor(img, rect, 16, 16, (0, 255), "replicate").tensor[0, 8, :, 0]
    zero = image_to_tensor(img, rect, 16, 16, (0, 255), "zero").tensor[0, 8, :, 0]
    assert np.all(rep[10:] == 200) and np.all(zero[10:] == 0)


def test_as_rgb_converts_gray_and_rgba_and_rejects_the_rest() -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(as_rgb(gray)[..., 2], gray) and as_rgb(gray).shape == (3, 4, 3)
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 3] = 255
    assert as_rgb(rgba).shape == (3, 4, 3) and as_rgb(rgba).flags.c_contiguous
    with pytest.raises(ValueError, match="uint8"):
        as_rgb(np.zeros((3, 4, 3), np.float32))
    with pytest.raises(ValueError, match="HxWx3"):
        as_rgb(np.zeros((3, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        as_rgb(np.zeros((0, 4, 3), np.uint8))


def test_face_landmarks_to_dict_seed_format() -> None:
    pts = np.zeros((478, 3), F32)
    pts[:, 0] = np.linspace(0.25, 0.75, 478)
    pts[:, 1] = 0.5
    pts[:, 2] = 0.01
    d = FaceLandmarks(pts, 0.99).to_dict(200, 100)
    box = d["box"]
    assert box == pytest.approx(
        {"xMin": 50.0, "xMax": 150.0, "yMin": 50.0, "yMax": 50.0, "width": 100.0, "height": 0.0}
    )
    kps = d["keypoints"]
    assert len(kps) == 478 and kps[0]["z"] == pytest.approx(2.0)
    assert kps[473]["name"] == "leftIris" and kps[61]["name"] == "lips"
    assert "name" not in kps[1]  # point 1 (nose) belongs to no named region


def test_crop_matrix_maps_corners_and_rejects_degenerate_rects() -> None:
    # A rotated ROI: the returned map takes the output's corners back onto the ROI's
    # corners (box_points), to float rounding.
    roi = roi_in_pixels(NormalizedRect(0.4, 0.6, 0.3, 0.2, 0.7), 640, 480)
    m = crop_matrix(roi, 192, 96)
    out = np.array([[0, 96, 1], [0, 0, 1], [192, 0, 1], [192, 96, 1]], np.float64)
    back = out @ m.T
    assert np.abs(back[:, :2] / back[:, 2:] - box_points(roi)).max() < 1e-3
    # A rect thinner than a float32 ulp at its centre has collinear corners: a clear
    # error, not a garbage matrix (OpenCV returns one for a singular system).
    thin = RotatedRect(1000.0, 500.0, 1e-9, 50.0, 0.3)
    with pytest.raises(ValueError, match="degenerate crop rectangle"):
        crop_matrix(thin, 64, 64)


# sha256 (first 16 hex digits) of ``cv2.warpPerspective`` from opencv-python-headless
# 4.10.0.84 (the OpenCV 3.4 fixed-point algorithm MediaPipe 0.10.14 uses) for crops of the
# fixture photos, computed once with that cv2. The first case has exact 1/32-px rounding
# ties on every other column and row (scale 225/192), which only a bit-exact matrix
# resolves like OpenCV; the two rotated astronaut crops fail if box_points takes OpenCV 5's
# own far corners instead of 3.4's reflected ones.
GOLDEN_WARPS = [
    ("takeo.ppm", None, 192, True, "zero", "linear", "0e875a67263dc89f"),
    ("takeo.ppm", None, 128, True, "zero", "linear", "7f428617fd8bf59f"),
    ("astronaut.png", (0.44, 0.25, 0.31, 0.31, 0.35), 192, False, "replicate", "linear",
     "7a973ff22db36f88"),
    ("astronaut.png", (0.95, 0.05, 0.4, 0.3, -2.0), 192, False, "replicate", "linear",
     "49f95db080925555"),
    ("Tom_Hanks_54745.png", (0.5, 0.5, 1.3, 1.3, 0.1), 64, False, "replicate", "nearest",
     "e37715cf6dad243c"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("file", "rect", "size", "keep", "border", "interp", "digest"), GOLDEN_WARPS
)
def test_warp_is_bit_identical_to_opencv_3_4_algorithm(
    file: str,
    rect: tuple[float, ...] | None,
    size: int,
    keep: bool,
    border: str,
    interp: str,
    digest: str,
) -> None:
    import hashlib
    from pathlib import Path

    import cv2

    path = Path(__file__).parent / "fixtures" / "faces" / file
    img = np.ascontiguousarray(cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1])
    nrect = None if rect is None else NormalizedRect(*rect)
    roi, _ = pad_roi(roi_in_pixels(nrect, img.shape[1], img.shape[0]), size, size, keep)
    for backend in ("numpy", "auto"):
        out = warp_perspective_u8(
            img,
            crop_matrix(roi, size, size),
            size,
            size,
            border,
            interp,
            backend,  # type: ignore[arg-type]
        )
        assert hashlib.sha256(out.tobytes()).hexdigest()[:16] == digest, backend


def test_iou_equals_a_float32_pair_computation() -> None:
    """iou() (weighted NMS's IoU) gives, pair by pair, the bits of Rectangle_f's float32
    scalar arithmetic, empty, identical and touching boxes included."""
    rng = np.random.default_rng(7)
    boxes = rng.uniform(-0.2, 1.0, (40, 4)).astype(np.float32)
    boxes[::5, 2:] *= -1  # empty (negative-size) boxes never intersect
    boxes[1::7] = boxes[0::7][: len(boxes[1::7])]  # identical boxes
    boxes[3, :2] = boxes[2, :2] + boxes[2, 2:]  # touching corner: area 0

    def pair(a: np.ndarray, b: np.ndarray) -> np.float32:
        axmax, aymax, bxmax, bymax = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
        ix = min(axmax, bxmax) - max(a[0], b[0])
        iy = min(aymax, bymax) - max(a[1], b[1])
        if not (ix >= 0 and iy >= 0):
            return F32(0.0)
        inter = ix * iy
        union = (bxmax - b[0]) * (bymax - b[1]) + (axmax - a[0]) * (aymax - a[1]) - inter
        return inter / union if union > 0 else F32(0.0)

    for i in range(len(boxes)):
        want = np.array([pair(boxes[i], b) for b in boxes], F32)
        assert iou(boxes[i], boxes).tobytes() == want.tobytes(), i
