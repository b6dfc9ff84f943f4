"""BlazeFace post-processing: SSD anchors, box/keypoint decoding, weighted NMS, letterbox
removal (docs/face_pipeline.md §3). Pure numpy, float32 wherever MediaPipe computes in ``float``.

Typical use, after running the detector model on ``image_to_tensor(image, None, 128, 128,
(-1, 1), "zero", keep_aspect=True)``::

    cfg = SHORT_RANGE
    dets = postprocess_detections(regressors, classificators, cfg, crop.matrix,
                                  min_score=0.5, max_faces=1)
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from facegraph.vision.face.types import Detection

__all__ = [
    "FACE_LANDMARKER",
    "FULL_RANGE",
    "SHORT_RANGE",
    "DetectionArrays",
    "DetectorConfig",
    "SsdAnchorOptions",
    "decode_detections",
    "iou",
    "postprocess_detections",
    "project_detections",
    "sigmoid",
    "ssd_anchors",
    "weighted_nms",
]

_F32 = np.float32


@dataclass(frozen=True, slots=True)
class SsdAnchorOptions:
    """Options of MediaPipe's ``SsdAnchorsCalculator`` (the subset BlazeFace uses)."""

    input_width: int
    input_height: int
    strides: tuple[int, ...]
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    anchor_offset_x: float = 0.5
    anchor_offset_y: float = 0.5
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    fixed_anchor_size: bool = True
    reduce_boxes_in_lowest_layer: bool = False


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Everything that differs between the short- and full-range BlazeFace models."""

    name: str
    model_file: str
    input_size: int
    anchors: SsdAnchorOptions
    num_keypoints: int = 6
    score_clipping_thresh: float = 100.0
    nms_iou_threshold: float = 0.3
    #: Default of the graph's ``min_score_thresh`` (the Python APIs override it with
    #: ``min_detection_confidence``, default 0.5).
    default_min_score: float = 0.5
    _anchor_cache: list[np.ndarray] = field(default_factory=list, compare=False, repr=False)

    def anchor_array(self) -> np.ndarray:
        """The anchors (computed once per config), float32 (N, 4) x_center, y_center, w, h."""
        if not self._anchor_cache:
            self._anchor_cache.append(ssd_anchors(self.anchors))
        return self._anchor_cache[0]


SHORT_RANGE = DetectorConfig(
    name="short_range",
    model_file="face_detection_short_range.tflite",
    input_size=128,
    anchors=SsdAnchorOptions(128, 128, strides=(8, 16, 16, 16)),
)
FULL_RANGE = DetectorConfig(
    name="full_range",
    model_file="face_detection_full_range_sparse.tflite",
    input_size=192,
    anchors=SsdAnchorOptions(192, 192, strides=(4,), interpolated_scale_aspect_ratio=0.0),
    default_min_score=0.6,
)
#: The Tasks ``face_landmarker.task`` bundle's ``face_detector.tflite``: the short-range
#: BlazeFace anchors and decoding (``face_detector_graph.cc`` configures the same SSD
#: anchors and TensorsToDetections options), but its own weights and the Tasks default
#: NMS IoU threshold (``FaceDetectorGraphOptions.min_suppression_threshold`` = 0.5).
FACE_LANDMARKER = DetectorConfig(
    name="face_landmarker",
    model_file="face_landmarker_detector.tflite",
    input_size=128,
    anchors=SsdAnchorOptions(128, 128, strides=(8, 16, 16, 16)),
    nms_iou_threshold=0.5,
)


def _scale(min_scale: float, max_scale: float, idx: int, n: int) -> float:
    if n == 1:
        return (min_scale + max_scale) * 0.5
    return min_scale + (max_scale - min_scale) * idx / (n - 1)


def ssd_anchors(opts: SsdAnchorOptions) -> np.ndarray:
    """SSD anchors in MediaPipe's order: layer group, row, column, anchor within cell.

    Returns float32 (N, 4): x_center, y_center, width, height (normalised). Consecutive
    layers with the same stride share one grid (docs/face_pipeline.md §3.2).
    """
    n_layers = len(opts.strides)
    out: list[np.ndarray] = []
    layer = 0
    while layer < n_layers:
        sizes: list[tuple[float, float]] = []  # (w, h) per anchor in a cell
        last = layer
        while last < n_layers and opts.strides[last] == opts.strides[layer]:
            scale = _scale(opts.min_scale, opts.max_scale, last, n_layers)
            if last == 0 and opts.reduce_boxes_in_lowest_layer:
                pairs = [(1.0, 0.1), (2.0, scale), (0.5, scale)]
            else:
                pairs = [(ar, scale) for ar in opts.aspect_ratios]
                if opts.interpolated_scale_aspect_ratio > 0.0:
                    nxt = (
                        1.0
                        if last == n_layers - 1
                        else _scale(opts.min_scale, opts.max_scale, last + 1, n_layers)
                    )
                    pairs.append((opts.interpolated_scale_aspect_ratio, math.sqrt(scale * nxt)))
            for ar, sc in pairs:
                r = math.sqrt(ar)
                sizes.append((sc * r, sc / r))
            last += 1
        stride = opts.strides[layer]
        fm_h = math.ceil(opts.input_height / stride)
        fm_w = math.ceil(opts.input_width / stride)
        # Centres computed in double and stored as float, like the C++.
        yc = ((np.arange(fm_h, dtype=np.float64) + opts.anchor_offset_y) / fm_h).astype(_F32)
        xc = ((np.arange(fm_w, dtype=np.float64) + opts.anchor_offset_x) / fm_w).astype(_F32)
        k = len(sizes)
        grid = np.empty((fm_h, fm_w, k, 4), _F32)
        grid[..., 0] = xc[None, :, None]
        grid[..., 1] = yc[:, None, None]
        if opts.fixed_anchor_size:
            grid[..., 2:] = 1.0
        else:
            grid[..., 2] = np.array([s[0] for s in sizes], _F32)
            grid[..., 3] = np.array([s[1] for s in sizes], _F32)
        out.append(grid.reshape(-1, 4))
        layer = last
    return np.concatenate(out)


@dataclass(frozen=True, slots=True)
class DetectionArrays:
    """A batch of detections as arrays (the hot path avoids per-detection objects).

    ``boxes`` float32 (D, 4) xmin, ymin, width, height; ``keypoints`` float32 (D, K, 2);
    ``scores`` float32 (D,).
    """

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls, num_keypoints: int) -> DetectionArrays:
        """No detections, with arrays of the right shapes and dtype."""
        return cls(np.zeros((0, 4), _F32), np.zeros((0, num_keypoints, 2), _F32), np.zeros(0, _F32))

    def take(self, idx: np.ndarray | slice) -> DetectionArrays:
        return DetectionArrays(self.boxes[idx], self.keypoints[idx], self.scores[idx])

    def to_detections(self) -> list[Detection]:
        return [
            Detection(float(b[0]), float(b[1]), float(b[2]), float(b[3]), float(s), kp, label=0)
            for b, kp, s in zip(self.boxes, self.keypoints, self.scores, strict=True)
        ]

    @classmethod
    def from_detections(cls, dets: list[Detection]) -> DetectionArrays:
        k = dets[0].keypoints.shape[0] if dets else 0
        return cls(
            np.array([[d.xmin, d.ymin, d.width, d.height] for d in dets], _F32).reshape(-1, 4),
            np.array([d.keypoints for d in dets], _F32).reshape(-1, k, 2),
            np.array([d.score for d in dets], _F32),
        )


def decode_detections(
    regressors: np.ndarray,
    classificators: np.ndarray,
    anchors: np.ndarray,
    input_size: int,
    min_score: float,
    num_keypoints: int = 6,
    score_clipping_thresh: float = 100.0,
) -> DetectionArrays:
    """MediaPipe's ``TensorsToDetectionsCalculator`` for BlazeFace (docs/face_pipeline.md §3.3).

    ``regressors`` (1, N, 4 + 2K) and ``classificators`` (1, N, 1) are the raw model outputs.
    Boxes are XYWH (``reverse_output_order``) in pixels of the ``input_size`` tensor,
    offset by the anchor centre. Scores are clipped, passed through a sigmoid and kept when
    ``score >= min_score``; boxes with negative or NaN size are dropped. Output is in the
    (letterboxed) tensor's normalised coordinates, in anchor order.
    """
    n = anchors.shape[0]
    raw = np.asarray(regressors, _F32).reshape(n, -1)
    width = 4 + 2 * num_keypoints
    if raw.shape[1] < width:
        raise ValueError(f"regressors have {raw.shape[1]} values per anchor, need {width}")
    logits = np.asarray(classificators, _F32).reshape(n, -1)[:, 0]
    clip = _F32(score_clipping_thresh)
    floor = _logit_floor(min_score)
    # The sigmoid only where a score can reach min_score (a few anchors of 896). This runs
    # right after the detector's invoke, with the caches cold, where every numpy call
    # costs several µs whatever its size: so as few calls as possible, and the cheap forms
    # (``nonzero`` and ``take`` rather than masks and fancy indexing, no Python-level
    # wrappers such as ``np.clip``). NaN logits pass (NaN scores are kept, as in C++,
    # where NaN < threshold is false).
    cand = (~(logits < floor)).nonzero()[0] if floor is not None else np.arange(n)
    x = logits.take(cand)
    if floor is not None and floor >= -clip:
        np.minimum(x, clip, out=x)  # above the floor only the upper clip can bite
    else:
        x = np.minimum(np.maximum(x, -clip), clip)
    # Above the floor exp(-x) cannot overflow (x >= -80 then; the clip bounds it anyway).
    scores = sigmoid(x, may_overflow=floor is None or floor < -80.0)
    passed = (~(scores < _F32(min_score))).nonzero()[0]
    if passed.size == 0:
        return DetectionArrays.empty(num_keypoints)
    if passed.size < cand.size:
        cand, scores = cand.take(passed), scores.take(passed)
    # All of a detection's values at once, each as the C++ computes it: x-like values
    # (centre x, width, keypoint x) are v / size * anchor_w (+ anchor_x for positions),
    # y-like ones the same with the anchor's h and y. Widths and heights get no offset
    # (they add 0.0, which changes no bit but a -0.0's sign).
    scale, offset = _decode_tables(anchors, num_keypoints)
    vals = raw.take(cand, axis=0)[:, :width]
    vals /= _F32(input_size)
    vals *= scale.take(cand, axis=0)
    vals += offset.take(cand, axis=0)
    centre, half = vals[:, 0:2], vals[:, 2:4] / _F32(2.0)
    boxes = np.empty((len(vals), 4), _F32)
    lo = np.subtract(centre, half, out=boxes[:, 0:2])  # xmin, ymin
    size = np.subtract(centre + half, lo, out=boxes[:, 2:4])
    kps = vals[:, 4:].reshape(len(vals), num_keypoints, 2)
    if np.minimum.reduce(size, axis=None) >= 0:  # NaN compares False: checked below
        return DetectionArrays(boxes, kps, scores)
    valid = ((size[:, 0] >= 0) & (size[:, 1] >= 0)).nonzero()[0]  # NaN sizes are dropped
    return DetectionArrays(boxes.take(valid, axis=0), kps.take(valid, axis=0), scores.take(valid))


def sigmoid(x: Any, *, may_overflow: bool = True) -> Any:
    """MediaPipe's float32 sigmoid ``1 / (1 + exp(-x))`` of a float32 array or scalar.

    Below x ≈ -88.7, ``exp(-x)`` overflows float32 to inf and the result is 0, as in C++;
    numpy warns there unless silenced. ``may_overflow=False`` says no such x is given and
    skips the silencing: ``np.errstate`` is no free context manager on a frame that starts
    with cold caches.
    """
    with np.errstate(over="ignore") if may_overflow else contextlib.nullcontext():
        return _F32(1.0) / (_F32(1.0) + np.exp(-x))


def _logit_floor(min_score: float) -> float | None:
    """A logit below which no float32 sigmoid reaches ``min_score`` (None: no such bound
    worth using). One whole unit under the exact logit: far more than float32 rounding of
    the sigmoid moves it (~0.06 units at scores of 1 − 1e-6)."""
    p = min(float(min_score), 1.0 - 1e-7)  # scores round to 1.0 from logit ~16.6 on
    if not p > 1e-30:
        return None
    return math.log(p / (1.0 - p)) - 1.0


_DECODE_TABLES: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _decode_tables(anchors: np.ndarray, num_keypoints: int) -> tuple[np.ndarray, np.ndarray]:
    """Per anchor, the factor and offset of each decoded value (see decode_detections):
    (N, 4 + 2K) float32 each, built once per anchor array."""
    key = (id(anchors), num_keypoints)
    hit = _DECODE_TABLES.get(key)
    if hit is not None and hit[0] is anchors:
        return hit[1], hit[2]
    reps = num_keypoints + 2
    scale = np.ascontiguousarray(np.tile(anchors[:, 2:4], reps), _F32)
    offset = np.tile(anchors[:, 0:2], reps).astype(_F32)
    offset[:, 2:4] = 0.0
    if len(_DECODE_TABLES) >= 8:  # a few configs in practice; never grow unbounded
        _DECODE_TABLES.clear()
    _DECODE_TABLES[key] = (anchors, scale, offset)
    return scale, offset


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box ``a`` (4,) against boxes ``b`` (D, 4), all xmin, ymin, width, height.

    MediaPipe's ``Rectangle_f`` semantics in float32: boxes that merely touch intersect
    with area 0; empty (negative-size) boxes never intersect; a non-positive union gives 0.
    The same operations as weighted NMS (:func:`_iou_row`), so the same bits.
    """
    boxes = np.concatenate([np.asarray(a, _F32).reshape(1, 4), np.asarray(b, _F32).reshape(-1, 4)])
    lo = boxes[:, 0:2]
    hi = lo + boxes[:, 2:4]
    return _iou_row(lo, hi, _box_areas(lo, hi), 0, np.arange(1, len(boxes)))


def _box_areas(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Areas of boxes given by their corners (xmin, ymin) and (xmax, ymax), float32."""
    extent = hi - lo
    result: np.ndarray = extent[:, 0] * extent[:, 1]
    return result


def weighted_nms(
    dets: DetectionArrays, iou_threshold: float = 0.3, max_out: int | None = None
) -> DetectionArrays:
    """MediaPipe's WEIGHTED non-max suppression (docs/face_pipeline.md §3.4).

    Detections are visited by descending score (ties keep input order). Each pass takes the
    best remaining detection D; every remaining detection with ``IoU(., D) > threshold``
    (D included) is a candidate; the output is D with its box corners and keypoints replaced
    by score-weighted means over the candidates (sequential float32 sums, as in C++) and D's
    own score. Output order: descending score. ``max_out`` stops after that many outputs:
    a pass never changes the ones before it, so they are the first ``max_out`` of the full
    result.
    """
    n = len(dets)
    k = dets.keypoints.shape[1]
    cap = n if max_out is None else min(n, max(max_out, 0))
    if cap == 0:
        return DetectionArrays.empty(k)
    # Like decoding, this runs with cold caches right after the detector's invoke: few
    # numpy calls, in their cheap forms (``take``/``nonzero``, ufuncs called directly).
    order = (-dets.scores).argsort(kind="stable")
    scores = dets.scores.take(order)
    boxes = dets.boxes.take(order, axis=0)
    # Per detection, everything a pass averages: box corners, then the keypoints.
    vals = np.empty((n, 4 + 2 * k), _F32)
    lo = vals[:, 0:2]
    lo[...] = boxes[:, 0:2]
    hi = np.add(lo, boxes[:, 2:4], out=vals[:, 2:4])
    vals[:, 4:] = dets.keypoints.reshape(n, 2 * k).take(order, axis=0)
    area = _box_areas(lo, hi)
    thr = _F32(iou_threshold)
    means = np.empty((cap, 4 + 2 * k), _F32)
    tops: list[int] = []
    remaining = np.arange(n)
    kept_as_is = False
    while len(tops) < cap:
        top = int(remaining[0])
        near = _iou_row(lo, hi, area, top, remaining) > thr
        cand = remaining.take(near.nonzero()[0])
        tops.append(top)
        mean = means[len(tops) - 1]
        if cand.size == 0:
            # Not even D itself (a zero-area box): MediaPipe outputs D unchanged, and
            # since nothing was suppressed, stops.
            mean[...] = vals[top]
            kept_as_is = True
            break
        w = scores.take(cand)
        # Sequential float32 accumulation in candidate order (accumulate is sequential).
        weighted = vals.take(cand, axis=0)
        weighted *= w[:, None]
        sums, total = np.add.accumulate(weighted)[-1], np.add.accumulate(w)[-1]
        if total != 0:
            np.divide(sums, total, out=mean)
        else:  # all weights 0 (scores that underflowed): NaN as in C++, without a warning
            with np.errstate(invalid="ignore", divide="ignore"):
                np.divide(sums, total, out=mean)
        remaining = remaining.take((~near).nonzero()[0])
        if remaining.size == 0:
            break
    m = means[: len(tops)]
    out_boxes = np.empty((len(m), 4), _F32)
    out_boxes[:, 0:2] = m[:, 0:2]
    np.subtract(m[:, 2:4], m[:, 0:2], out=out_boxes[:, 2:4])
    if kept_as_is:
        out_boxes[-1] = boxes[tops[-1]]
    return DetectionArrays(out_boxes, m[:, 4:].reshape(len(m), k, 2), scores.take(tops))


def _iou_row(
    lo: np.ndarray, hi: np.ndarray, area: np.ndarray, top: int, rows: np.ndarray
) -> np.ndarray:
    """IoU of box ``top`` against boxes ``rows`` (see :func:`iou`), the boxes given by
    their corners ``lo`` (xmin, ymin) and ``hi`` (xmax, ymax) and their ``area``;
    elementwise float32 operations only, so each entry has the bits of a one-pair
    computation."""
    overlap = np.minimum(hi[top], hi.take(rows, axis=0))
    overlap -= np.maximum(lo[top], lo.take(rows, axis=0))  # ix, iy
    inter = overlap[:, 0] * overlap[:, 1]
    union = area.take(rows) + area[top]
    union -= inter
    # Rectangle_f::Intersects (touching counts; an empty box meets nothing) is exactly
    # "the overlap is not negative on both axes": a float difference is < 0 iff its
    # operands are ordered so, and an empty box (max < min) makes the overlap negative.
    # IoU 0 unless intersecting with a positive union; NaN compares False (a NaN box
    # meets nothing).
    ok = (overlap[:, 0] >= 0) & (overlap[:, 1] >= 0) & (union > 0)
    result: np.ndarray = np.divide(inter, union, out=np.zeros_like(inter), where=ok)
    return result


def project_detections(dets: DetectionArrays, matrix: np.ndarray) -> DetectionArrays:
    """MediaPipe's ``DetectionProjectionCalculator``: tensor → image normalised coordinates.

    ``matrix`` is the float32 4×4 from ``image_to_tensor`` (``CropResult.matrix``). Keypoints
    are mapped; the box's 4 corners are mapped and their axis-aligned bounds taken.
    """
    if len(dets) == 0:
        return dets
    m = np.asarray(matrix, _F32).reshape(4, 4)
    b = dets.boxes
    x0, y0 = b[:, 0:1], b[:, 1:2]
    x1, y1 = x0 + b[:, 2:3], y0 + b[:, 3:4]
    # Keypoints then the box's corners (x0y0, x1y0, x1y1, x0y1), mapped in one pass.
    n, k = b.shape[0], dets.keypoints.shape[1]
    pts = np.empty((n, k + 4, 2), _F32)
    pts[:, :k] = dets.keypoints
    pts[:, k : k + 4 : 3, 0] = x0
    pts[:, k + 1 : k + 3, 0] = x1
    pts[:, k : k + 2, 1] = y0
    pts[:, k + 2 : k + 4, 1] = y1
    x, y = pts[..., 0], pts[..., 1]
    mapped = np.empty_like(pts)
    np.add(x * m[0, 0] + y * m[0, 1], m[0, 3], out=mapped[..., 0])
    np.add(x * m[1, 0] + y * m[1, 1], m[1, 3], out=mapped[..., 1])
    corners = mapped[:, k:]
    boxes = np.empty((n, 4), _F32)
    lo = np.minimum.reduce(corners, axis=1, out=boxes[:, 0:2])  # xmin, ymin
    np.subtract(np.maximum.reduce(corners, axis=1), lo, out=boxes[:, 2:4])
    return DetectionArrays(boxes, mapped[:, :k], dets.scores)


def postprocess_detections(
    regressors: np.ndarray,
    classificators: np.ndarray,
    config: DetectorConfig,
    matrix: np.ndarray,
    min_score: float | None = None,
    max_faces: int | None = None,
) -> list[Detection]:
    """Decode → weighted NMS → letterbox removal → keep the ``max_faces`` best (§3.3–3.6).

    ``matrix`` is ``CropResult.matrix`` of the detector's input crop. ``min_score``
    defaults to the config's graph default; ``max_faces=None`` keeps all.
    """
    thr = config.default_min_score if min_score is None else min_score
    dets = decode_detections(
        regressors,
        classificators,
        config.anchor_array(),
        config.input_size,
        thr,
        config.num_keypoints,
        config.score_clipping_thresh,
    )
    keep = None if max_faces is None else max(max_faces, 0)
    # NMS stops after the detections kept; only those are projected.
    dets = weighted_nms(dets, config.nms_iou_threshold, keep)
    return project_detections(dets, matrix).to_detections()
