"""``from facegraph import drawing``: the road for users of ``mp.solutions.drawing_utils``.

The same names, arguments and pixels as MediaPipe's ``drawing_utils`` and
``drawing_styles`` for faces::

    import cv2
    import facegraph
    from facegraph import drawing

    bgr = cv2.imread("photo.jpg")
    with facegraph.FaceMesh() as mesh:
        for face in mesh.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)):
            drawing.draw_landmarks(
                bgr, face, drawing.FACEMESH_TESSELATION,
                landmark_drawing_spec=None,
                connection_drawing_spec=drawing.get_default_face_mesh_tesselation_style())
            drawing.draw_landmarks(
                bgr, face, drawing.FACEMESH_CONTOURS, None,
                drawing.get_default_face_mesh_contours_style())
            drawing.draw_landmarks(
                bgr, face, drawing.FACEMESH_IRISES, None,
                drawing.get_default_face_mesh_iris_connections_style())
    cv2.imwrite("out.jpg", bgr)

``face`` may be the façade's ``Face``, a graph's ``FaceLandmarks``, an (N, 3) array of
normalised points, MediaPipe's ``NormalizedLandmarkList`` or a Tasks
``face_landmarks[i]`` list (anything :func:`facegraph.vision.annotate.face_points`
accepts). As in MediaPipe, drawing happens in place, colours are (B, G, R) for OpenCV's
BGR images (on an RGB image the presets' colours come out with red and blue swapped),
points outside the image are skipped, and lines are OpenCV's plain 8-connected lines.
For anti-aliased overlays that compose, use :mod:`facegraph.vision.annotate`.

The ``FACEMESH_*`` connection sets are frozensets of index pairs under MediaPipe's names.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from facegraph.vision.annotate import face_points
from facegraph.vision.face import connections as _c
from facegraph.vision.face.types import Detection

__all__ = [
    "BLACK_COLOR",
    "BLUE_COLOR",
    "FACEMESH_CONTOURS",
    "FACEMESH_FACE_OVAL",
    "FACEMESH_IRISES",
    "FACEMESH_LEFT_EYE",
    "FACEMESH_LEFT_EYEBROW",
    "FACEMESH_LEFT_IRIS",
    "FACEMESH_LIPS",
    "FACEMESH_NOSE",
    "FACEMESH_NUM_LANDMARKS",
    "FACEMESH_NUM_LANDMARKS_WITH_IRISES",
    "FACEMESH_RIGHT_EYE",
    "FACEMESH_RIGHT_EYEBROW",
    "FACEMESH_RIGHT_IRIS",
    "FACEMESH_TESSELATION",
    "GREEN_COLOR",
    "RED_COLOR",
    "WHITE_COLOR",
    "DrawingSpec",
    "draw_detection",
    "draw_landmarks",
    "get_default_face_mesh_contours_style",
    "get_default_face_mesh_iris_connections_style",
    "get_default_face_mesh_tesselation_style",
]

Connection = tuple[int, int]

# Colours are (B, G, R), MediaPipe's values.
WHITE_COLOR = (224, 224, 224)
BLACK_COLOR = (0, 0, 0)
RED_COLOR = (0, 0, 255)
GREEN_COLOR = (0, 128, 0)
BLUE_COLOR = (255, 0, 0)

FACEMESH_LIPS: frozenset[Connection] = frozenset(_c.LIPS)
FACEMESH_LEFT_EYE: frozenset[Connection] = frozenset(_c.LEFT_EYE)
FACEMESH_LEFT_IRIS: frozenset[Connection] = frozenset(_c.LEFT_IRIS)
FACEMESH_LEFT_EYEBROW: frozenset[Connection] = frozenset(_c.LEFT_EYEBROW)
FACEMESH_RIGHT_EYE: frozenset[Connection] = frozenset(_c.RIGHT_EYE)
FACEMESH_RIGHT_EYEBROW: frozenset[Connection] = frozenset(_c.RIGHT_EYEBROW)
FACEMESH_RIGHT_IRIS: frozenset[Connection] = frozenset(_c.RIGHT_IRIS)
FACEMESH_FACE_OVAL: frozenset[Connection] = frozenset(_c.FACE_OVAL)
FACEMESH_NOSE: frozenset[Connection] = frozenset(_c.NOSE)
FACEMESH_CONTOURS: frozenset[Connection] = frozenset(_c.CONTOURS)
FACEMESH_IRISES: frozenset[Connection] = FACEMESH_LEFT_IRIS | FACEMESH_RIGHT_IRIS
FACEMESH_TESSELATION: frozenset[Connection] = frozenset(_c.TESSELATION)
FACEMESH_NUM_LANDMARKS = 468
FACEMESH_NUM_LANDMARKS_WITH_IRISES = 478


@dataclass
class DrawingSpec:
    """How to draw: colour (B, G, R), line thickness and circle radius (pixels)."""

    color: tuple[int, int, int] = WHITE_COLOR
    thickness: int = 2
    circle_radius: int = 2


# drawing_styles' palette, (B, G, R).
_RED = (48, 48, 255)
_GREEN = (48, 255, 48)
_BLUE = (192, 101, 21)
_YELLOW = (0, 204, 255)
_GRAY = (128, 128, 128)
_WHITE = (224, 224, 224)
_CYAN = (192, 255, 48)
_MAGENTA = (192, 48, 255)
_THICKNESS_TESSELATION = 1
_THICKNESS_CONTOURS = 2


def get_default_face_mesh_tesselation_style() -> DrawingSpec:
    """MediaPipe's tessellation style: thin grey lines."""
    return DrawingSpec(color=_GRAY, thickness=_THICKNESS_TESSELATION)


def get_default_face_mesh_contours_style(i: int = 0) -> dict[Connection, DrawingSpec]:
    """MediaPipe's contour colours per connection: style 0 (default) or 1 (with the nose)."""
    thick = _THICKNESS_CONTOURS
    parts: list[tuple[frozenset[Connection], tuple[int, int, int]]]
    if i == 1:
        parts = [
            (FACEMESH_LIPS, _BLUE),
            (FACEMESH_LEFT_EYE, _CYAN),
            (FACEMESH_LEFT_EYEBROW, _GREEN),
            (FACEMESH_RIGHT_EYE, _MAGENTA),
            (FACEMESH_RIGHT_EYEBROW, _RED),
            (FACEMESH_FACE_OVAL, _WHITE),
            (FACEMESH_NOSE, _YELLOW),
        ]
    else:
        parts = [
            (FACEMESH_LIPS, _WHITE),
            (FACEMESH_LEFT_EYE, _GREEN),
            (FACEMESH_LEFT_EYEBROW, _GREEN),
            (FACEMESH_RIGHT_EYE, _RED),
            (FACEMESH_RIGHT_EYEBROW, _RED),
            (FACEMESH_FACE_OVAL, _WHITE),
        ]
    style: dict[Connection, DrawingSpec] = {}
    for edges, color in parts:
        spec = DrawingSpec(color=color, thickness=thick)
        for edge in edges:
            style[edge] = spec
    return style


def get_default_face_mesh_iris_connections_style() -> dict[Connection, DrawingSpec]:
    """MediaPipe's iris style: the subject's left iris green, the right red."""
    style: dict[Connection, DrawingSpec] = {}
    left = DrawingSpec(color=_GREEN, thickness=_THICKNESS_CONTOURS)
    right = DrawingSpec(color=_RED, thickness=_THICKNESS_CONTOURS)
    for edge in FACEMESH_LEFT_IRIS:
        style[edge] = left
    for edge in FACEMESH_RIGHT_IRIS:
        style[edge] = right
    return style


# MediaPipe's defaults of draw_landmarks (None, given explicitly, draws nothing).
_DEFAULT_POINTS = DrawingSpec(color=RED_COLOR)
_DEFAULT_LINES = DrawingSpec()


def _to_pixel(x: float, y: float, width: int, height: int) -> tuple[int, int] | None:
    """MediaPipe's rule: points outside [0, 1] are not drawn; floor, clamped to the image."""

    def inside(v: float) -> bool:
        return (v > 0 or math.isclose(0, v)) and (v < 1 or math.isclose(1, v))

    if not (inside(x) and inside(y)):
        return None
    return min(math.floor(x * width), width - 1), min(math.floor(y * height), height - 1)


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"drawing needs an HxWx3 image (drawn in place), got shape {shape}")
    if not image.flags.writeable:
        raise ValueError("drawing draws in place, but the image is read-only: pass a copy")


def draw_landmarks(
    image: np.ndarray,
    landmark_list: Any,
    connections: Iterable[Connection] | None = None,
    landmark_drawing_spec: DrawingSpec | Mapping[int, DrawingSpec] | None = _DEFAULT_POINTS,
    connection_drawing_spec: DrawingSpec | Mapping[Connection, DrawingSpec] | None = _DEFAULT_LINES,
) -> None:
    """Draw one face's landmarks and ``connections`` on ``image``, in place.

    As MediaPipe's ``draw_landmarks``: connections first, then each point as a white ring
    and a filled-colour circle; a spec argument set to None draws nothing of that kind.
    Defaults: red points, white connections — pass ``landmark_drawing_spec=None`` for
    lines only. Raises ValueError for an
    image that is not HxWx3 or a connection index out of range.
    """
    if landmark_list is None:
        return
    points = face_points(landmark_list)
    if points is None:
        raise ValueError(
            f"draw_landmarks: cannot read landmarks from a {type(landmark_list).__name__} "
            "(expected a Face, FaceLandmarks, an (N, 3) array or a landmark list)"
        )
    _check_image(image)
    import cv2

    h, w = image.shape[:2]
    pixels: dict[int, tuple[int, int]] = {}
    for idx, (x, y) in enumerate(points[:, :2].tolist()):
        px = _to_pixel(x, y, w, h)
        if px is not None:
            pixels[idx] = px
    n = len(points)
    if connections:
        for connection in connections:
            start, end = connection[0], connection[1]
            if not (0 <= start < n and 0 <= end < n):
                raise ValueError(
                    "Landmark index is out of range. Invalid connection from landmark "
                    f"#{start} to landmark #{end} ({n} landmarks)."
                )
            if start in pixels and end in pixels and connection_drawing_spec is not None:
                spec = (
                    connection_drawing_spec[connection]
                    if isinstance(connection_drawing_spec, Mapping)
                    else connection_drawing_spec
                )
                cv2.line(image, pixels[start], pixels[end], spec.color, spec.thickness)
    if landmark_drawing_spec:
        for idx, px in pixels.items():
            spec = (
                landmark_drawing_spec[idx]
                if isinstance(landmark_drawing_spec, Mapping)
                else landmark_drawing_spec
            )
            ring = max(spec.circle_radius + 1, int(spec.circle_radius * 1.2))
            cv2.circle(image, px, ring, WHITE_COLOR, spec.thickness)
            cv2.circle(image, px, spec.circle_radius, spec.color, spec.thickness)


def draw_detection(
    image: np.ndarray,
    detection: Detection,
    keypoint_drawing_spec: DrawingSpec | None = None,
    bbox_drawing_spec: DrawingSpec | None = None,
) -> None:
    """Draw a detection's keypoints (red circles) and box (white), in place, as MediaPipe."""
    _check_image(image)
    import cv2

    keypoints = keypoint_drawing_spec or DrawingSpec(color=RED_COLOR)
    box = bbox_drawing_spec or DrawingSpec()
    h, w = image.shape[:2]
    for x, y in detection.keypoints.tolist():
        px = _to_pixel(x, y, w, h)
        if px is not None:
            cv2.circle(image, px, keypoints.circle_radius, keypoints.color, keypoints.thickness)
    start = _to_pixel(detection.xmin, detection.ymin, w, h)
    end = _to_pixel(detection.xmax, detection.ymax, w, h)
    if start is not None and end is not None:
        cv2.rectangle(image, start, end, box.color, box.thickness)
