"""Regions of interest: detection → ROI, landmarks → ROI, ROI association (docs/face_pipeline.md
§4).

float32 maths where MediaPipe uses ``float``; ``normalize_radians`` in double like the C++.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from facegraph.vision.face.detection import iou
from facegraph.vision.face.indices import ROI_ROTATION_END, ROI_ROTATION_START
from facegraph.vision.face.types import Detection, NormalizedRect

__all__ = [
    "associate_rects",
    "detection_to_roi",
    "landmarks_to_detection",
    "landmarks_to_roi",
    "normalize_radians",
    "rect_from_box",
    "rect_iou",
    "rotation_from_points",
    "transform_rect",
]

_F32 = np.float32
# As Python floats (compared with Python floats per frame). C++ numeric_limits<float>:
_FLT_MIN = float(np.finfo(np.float32).tiny)  # min(): the tiny positive one
_FLT_MAX = float(np.finfo(np.float32).max)


def normalize_radians(angle: float) -> float:
    """Wrap to [-π, π): ``a - 2π·floor((a + π) / 2π)`` in double, stored as float32."""
    a = float(_F32(angle))
    return float(_F32(a - 2 * math.pi * math.floor((a - (-math.pi)) / (2 * math.pi))))


def rotation_from_points(
    x0: float, y0: float, x1: float, y1: float, image_width: int, image_height: int,
    target_angle_deg: float = 0.0,
) -> float:  # fmt: skip
    """ROI rotation from a start → end keypoint pair (normalised coordinates).

    ``θ = NormalizeRadians(target − atan2(−(y1 − y0), x1 − x0))`` with the points in pixels:
    positive when the end point is lower on screen than the start (clockwise).
    """
    w, h = _F32(image_width), _F32(image_height)
    px0, py0 = _F32(x0) * w, _F32(y0) * h
    px1, py1 = _F32(x1) * w, _F32(y1) * h
    target = _F32(math.pi * target_angle_deg / 180.0)
    return normalize_radians(float(target - np.arctan2(-(py1 - py0), px1 - px0)))


def rect_from_box(xmin: float, ymin: float, width: float, height: float) -> tuple[float, ...]:
    """Centre and size of an axis-aligned normalised box (float32, like the C++)."""
    w, h = _F32(width), _F32(height)
    two = _F32(2.0)
    return (float(_F32(xmin) + w / two), float(_F32(ymin) + h / two), float(w), float(h))


def transform_rect(
    rect: NormalizedRect,
    image_width: int,
    image_height: int,
    scale_x: float = 1.5,
    scale_y: float = 1.5,
    square_long: bool = True,
) -> NormalizedRect:
    """MediaPipe's ``RectTransformationCalculator`` without shift or extra rotation.

    With ``square_long`` the rect becomes a square in pixels whose side is the longer side,
    then both sides are scaled.
    """
    w, h = _F32(rect.width), _F32(rect.height)
    iw, ih = _F32(image_width), _F32(image_height)
    if square_long:
        long_side = max(w * iw, h * ih)
        w, h = long_side / iw, long_side / ih
    return NormalizedRect(
        rect.x_center,
        rect.y_center,
        float(w * _F32(scale_x)),
        float(h * _F32(scale_y)),
        rect.rotation,
        rect.rect_id,
    )


def detection_to_roi(
    det: Detection,
    image_width: int,
    image_height: int,
    start_keypoint: int = 0,
    end_keypoint: int = 1,
    scale: float = 1.5,
    square_long: bool = True,
) -> NormalizedRect:
    """Face-landmark ROI from a detection (docs/face_pipeline.md §4.1): box centre, eye-line
    rotation, square on the long side (unless ``square_long`` is false: the Tasks face
    detector only scales), ×1.5."""
    kp = det.keypoints
    return _box_to_roi(
        (det.xmin, det.ymin, det.width, det.height),
        kp[start_keypoint],
        kp[end_keypoint],
        image_width,
        image_height,
        scale,
        square_long,
    )


def _box_to_roi(
    box: tuple[float, float, float, float],
    start: np.ndarray,
    end: np.ndarray,
    image_width: int,
    image_height: int,
    scale: float,
    square_long: bool,
) -> NormalizedRect:
    """:func:`detection_to_roi` of a box (xmin, ymin, width, height) and the two points
    (x, y, ...) whose line sets the rotation."""
    xc, yc, w, h = rect_from_box(*box)
    rot = rotation_from_points(start[0], start[1], end[0], end[1], image_width, image_height)
    return transform_rect(
        NormalizedRect(xc, yc, w, h, rot), image_width, image_height, scale, scale, square_long
    )


def _landmark_box(p: np.ndarray) -> tuple[float, float, float, float]:
    """(xmin, ymin, width, height) of float32 points, as ``LandmarksToDetectionCalculator``
    computes them (see :func:`landmarks_to_detection`)."""
    # Column by column: numpy reduces a strided column faster than it reduces (N, 2) over
    # axis 0.
    x, y = p[:, 0], p[:, 1]
    xmin = min(float(x.min()), _FLT_MAX)
    ymin = min(float(y.min()), _FLT_MAX)
    xmax = max(float(x.max()), _FLT_MIN)
    ymax = max(float(y.max()), _FLT_MIN)
    return xmin, ymin, float(_F32(xmax) - _F32(xmin)), float(_F32(ymax) - _F32(ymin))


def landmarks_to_detection(points: np.ndarray) -> Detection:
    """MediaPipe's ``LandmarksToDetectionCalculator``: bbox of all points; keypoints = points.

    Keeps the C++ quirk that the max accumulators start at ``FLT_MIN`` (a tiny *positive*
    number), so a face entirely left of / above the image gets xmax / ymax = FLT_MIN.
    """
    p = np.asarray(points, _F32)
    return Detection(*_landmark_box(p), 0.0, p[:, :2])


def landmarks_to_roi(
    points: np.ndarray,
    image_width: int,
    image_height: int,
    start: int = ROI_ROTATION_START,
    end: int = ROI_ROTATION_END,
    scale: float = 1.5,
) -> NormalizedRect:
    """Tracking ROI from projected landmarks (docs/face_pipeline.md §4.2): axis-aligned bbox of all
    points, rotation from point 33 → 263, square on the long side, ×1.5.

    = ``detection_to_roi(landmarks_to_detection(points), ...)``, without building the
    detection (a copy of every point) for the two points the rotation reads."""
    p = np.asarray(points, _F32)
    return _box_to_roi(_landmark_box(p), p[start], p[end], image_width, image_height, scale, True)


def rect_iou(a: NormalizedRect, b: NormalizedRect) -> float:
    """IoU of two normalised rects taken as axis-aligned (rotation ignored), as MediaPipe's
    association does."""
    two = _F32(2.0)

    def box(r: NormalizedRect) -> np.ndarray:
        w, h = _F32(r.width), _F32(r.height)
        return np.array([_F32(r.x_center) - w / two, _F32(r.y_center) - h / two, w, h], _F32)

    # CalculateIou(cur, prev): area(cur) + area(prev) − inter; iou() adds area(b) first.
    return float(iou(box(b), box(a)[None])[0])


def associate_rects(
    streams: Sequence[Iterable[NormalizedRect] | None], min_similarity: float = 0.5
) -> list[NormalizedRect]:
    """MediaPipe's ``AssociationNormRectCalculator`` (docs/face_pipeline.md §4.3 step 6).

    ``streams`` in priority order (lowest first): e.g. ``[detection_rects, previous_rects]``.
    Elements are added one by one in stream order; each new element removes every element
    already in the list whose IoU with it is above ``min_similarity`` (strict) and is then
    appended. A new element inherits the ``rect_id`` of a removed element that had one (the
    last such), so later streams win and track ids survive.
    """
    result: list[NormalizedRect] = []
    thr = float(_F32(min_similarity))
    for stream in streams:
        if stream is None:
            continue
        for element in stream:
            elem = element
            kept: list[NormalizedRect] = []
            new_id: int | None = None
            for prev in result:
                if rect_iou(elem, prev) > thr:
                    if prev.rect_id is not None:
                        new_id = prev.rect_id
                else:
                    kept.append(prev)
            if new_id is not None:
                elem = NormalizedRect(
                    elem.x_center, elem.y_center, elem.width, elem.height, elem.rotation, new_id
                )
            kept.append(elem)
            result = kept
    return result
