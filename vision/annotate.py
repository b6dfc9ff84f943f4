"""Composable annotators: draw face meshes, contours, irises, boxes and labels on images.

Each annotator is a small object with ``annotate(image, faces) -> image``; a list of
them (or :class:`Compose`) draws them in order::

    from facegraph.vision.annotate import Compose, MeshAnnotator, ContourAnnotator

    overlay = Compose([MeshAnnotator(), ContourAnnotator(), IrisAnnotator(), BoxAnnotator()])
    drawn = overlay.annotate(rgb_image, faces)     # faces: FaceLandmarks and/or Detection

Images are HxWx3 uint8 RGB; colours are RGB tuples. An annotator draws on ``image`` in
place when it is writable, otherwise on a copy (frames from the sources are read-only),
and returns what it drew on. ``faces`` may be one face or a list, in any form
:func:`face_points` understands — the graphs'
:class:`~facegraph.vision.face.types.FaceLandmarks`, ``facegraph.FaceMesh``'s ``Face``,
(N, 3) normalised point arrays, MediaPipe-style results — and
:class:`~facegraph.vision.face.types.Detection`. Mesh, contours and irises draw
landmarks; boxes and keypoints draw both.

Lines are anti-aliased and drawn in one ``cv2.polylines`` call per annotator with
sub-pixel (4 fractional bits) coordinates, so a full 478-point mesh costs about a
millisecond on a 640x480 frame. The edge lists are MediaPipe's (see
:mod:`facegraph.vision.face.connections`).

The graph node :class:`Annotate` (IMAGE + FACES / DETECTIONS → IMAGE) draws the default
set: tessellation, contours, irises and boxes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from facegraph.vision.face import connections
from facegraph.vision.face.types import Detection, FaceLandmarks

__all__ = [
    "Annotator",
    "BlendshapeBarsAnnotator",
    "BoxAnnotator",
    "Compose",
    "ContourAnnotator",
    "FpsAnnotator",
    "HeadPoseAnnotator",
    "IrisAnnotator",
    "KeypointAnnotator",
    "MeshAnnotator",
    "OutputsAnnotator",
    "TextAnnotator",
    "default_annotators",
    "face_items",
    "face_points",
    "track_id",
]

Color = tuple[int, int, int]
Faces = Sequence[Any] | None

_SHIFT = 4  # fractional bits of the sub-pixel coordinates given to OpenCV
_SCALE = float(1 << _SHIFT)


def _edges(pairs: Iterable[tuple[int, int]]) -> np.ndarray:
    """Undirected, de-duplicated (E, 2) int array (MediaPipe lists some edges both ways)."""
    arr = np.asarray(sorted({(min(a, b), max(a, b)) for a, b in pairs}), dtype=np.int64)
    return arr.reshape(-1, 2)


TESSELATION_EDGES = _edges(connections.TESSELATION)
CONTOUR_EDGES = _edges(connections.CONTOURS)
LEFT_IRIS_EDGES = _edges(connections.LEFT_IRIS)
RIGHT_IRIS_EDGES = _edges(connections.RIGHT_IRIS)


def _writable(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"annotators draw on HxWx3 uint8 RGB images, got {image.shape} {image.dtype}"
        )
    if image.flags.writeable and image.flags.c_contiguous:
        return image
    return np.array(image, copy=True, order="C")


def _landmark_array(points: Any) -> np.ndarray | None:
    """(N, 2|3) numbers → float32 (N, 3); a list of objects with ``x``, ``y`` (``z``) too."""
    if isinstance(points, np.ndarray):
        arr = points
    elif isinstance(points, (list, tuple)) and points and hasattr(points[0], "x"):
        arr = np.array([(p.x, p.y, getattr(p, "z", 0.0) or 0.0) for p in points], np.float32)
    else:
        return None
    if arr.ndim != 2 or arr.shape[1] not in (2, 3) or arr.dtype.kind not in "fiu":
        return None
    if arr.shape[1] == 2:
        arr = np.concatenate([arr, np.zeros((len(arr), 1), arr.dtype)], axis=1)
    return np.asarray(arr, np.float32)


def face_points(face: Any) -> np.ndarray | None:
    """A face's landmarks as float32 (N, 3) normalised points, or None if it has none.

    Accepts :class:`FaceLandmarks` (the graphs' faces), ``facegraph.FaceMesh``'s ``Face``
    (``.landmarks``), an (N, 2|3) array of normalised points, a list of landmark objects
    with ``x``, ``y``, ``z`` (MediaPipe Tasks' ``face_landmarks[i]``) and MediaPipe's
    ``NormalizedLandmarkList`` (``.landmark``).
    """
    if isinstance(face, FaceLandmarks):
        return face.points
    for attr in ("landmarks", "points", "landmark"):
        value = getattr(face, attr, None)
        if value is not None and not callable(value):
            arr = _landmark_array(value if attr != "landmark" else list(value))
            if arr is not None:
                return arr
    return _landmark_array(face)


def face_items(value: Any, *, landmarks_only: bool = False) -> list[Any]:
    """The faces in a graph output or API result, one item per face.

    Lists are flattened; a result object holding several faces (``face_landmarks`` as
    in MediaPipe Tasks' ``FaceLandmarkerResult``, ``multi_face_landmarks`` as in the
    legacy solution) gives one item per face. Items are :class:`Detection` or anything
    :func:`face_points` understands; ``landmarks_only`` leaves detections out.
    """
    if value is None:
        return []
    if isinstance(value, Detection):
        return [] if landmarks_only else [value]
    if isinstance(value, FaceLandmarks):
        return [value]
    if isinstance(value, np.ndarray):
        return [value] if _landmark_array(value) is not None else []
    if isinstance(value, (list, tuple)):
        if value and hasattr(value[0], "x") and _landmark_array(value) is not None:
            return [value]  # one face given as its landmark objects
        return [item for v in value for item in face_items(v, landmarks_only=landmarks_only)]
    for attr in ("face_landmarks", "multi_face_landmarks"):
        many = getattr(value, attr, None)
        if isinstance(many, (list, tuple)):
            return [m for m in many if face_points(m) is not None]
    return [value] if face_points(value) is not None else []


def track_id(face: Any) -> int | None:
    """The face's track id (``track_id`` attribute) when it has one."""
    value = getattr(face, "track_id", None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _landmarks(faces: Faces) -> list[np.ndarray]:
    """The (N, 3) normalised landmarks of every face in ``faces`` (any accepted form)."""
    out = []
    for face in face_items(faces, landmarks_only=True):
        points = face_points(face)
        if points is not None:
            out.append(points)
    return out


def _fixed(points_xy: np.ndarray) -> np.ndarray:
    """Pixel coordinates as OpenCV fixed-point int32 (``shift=_SHIFT``)."""
    return np.round(points_xy * _SCALE).astype(np.int32)


class Annotator:
    """Base class: ``annotate(image, faces)`` draws and returns the image.

    ``annotate_outputs(image, faces, outputs)`` also sees the frame's other graph outputs
    (``blendshapes``, ``geometry``, ...); by default it ignores them.
    """

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        raise NotImplementedError

    def annotate_outputs(
        self, image: np.ndarray, faces: Faces, outputs: Mapping[str, Any]
    ) -> np.ndarray:
        return self.annotate(image, faces)

    def __call__(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        return self.annotate(image, faces)


class Compose(Annotator):
    """Several annotators applied in order (copying a read-only image once)."""

    def __init__(self, annotators: Iterable[Annotator]) -> None:
        self.annotators: list[Annotator] = list(annotators)

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        return self.annotate_outputs(image, faces, {})

    def annotate_outputs(
        self, image: np.ndarray, faces: Faces, outputs: Mapping[str, Any]
    ) -> np.ndarray:
        out = _writable(image)
        for annotator in self.annotators:
            out = annotator.annotate_outputs(out, faces, outputs)
        return out


class _EdgeAnnotator(Annotator):
    """Draws an edge list of every face's landmarks as anti-aliased line segments."""

    edges: np.ndarray = np.zeros((0, 2), np.int64)

    def __init__(self, color: Color, thickness: int) -> None:
        self.color = tuple(int(c) for c in color)
        self.thickness = int(thickness)

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        import cv2

        out = _writable(image)
        h, w = out.shape[:2]
        for pts in _landmarks(faces):
            edges = self.edges[(self.edges < len(pts)).all(axis=1)]
            if not len(edges):
                continue
            xy = pts[:, :2] * np.array([w, h], np.float32)
            segments = _fixed(xy)[edges]  # (E, 2, 2): one polyline per edge
            cv2.polylines(out, segments, False, self.color, self.thickness, cv2.LINE_AA, _SHIFT)
        return out


class MeshAnnotator(_EdgeAnnotator):
    """The full face-mesh tessellation (MediaPipe's ``FACEMESH_TESSELATION``)."""

    edges = TESSELATION_EDGES

    def __init__(self, color: Color = (192, 192, 192), thickness: int = 1) -> None:
        super().__init__(color, thickness)


class ContourAnnotator(_EdgeAnnotator):
    """Lips, eyes, eyebrows and face oval (MediaPipe's ``FACEMESH_CONTOURS``)."""

    edges = CONTOUR_EDGES

    def __init__(self, color: Color = (255, 255, 255), thickness: int = 1) -> None:
        super().__init__(color, thickness)


class IrisAnnotator(Annotator):
    """Each iris as a circle through its 4 contour points (478-point faces only).

    The centre is the iris-centre landmark (468 / 473); the radius is the mean distance
    from it to the iris contour points.
    """

    # (centre, contour points) per iris: the subject's right (468) and left (473).
    IRISES: tuple[tuple[int, tuple[int, ...]], ...] = (
        (468, tuple(int(i) for i in np.unique(RIGHT_IRIS_EDGES))),
        (473, tuple(int(i) for i in np.unique(LEFT_IRIS_EDGES))),
    )

    def __init__(
        self, color: Color = (48, 255, 48), thickness: int = 1, center: bool = True
    ) -> None:
        self.color = tuple(int(c) for c in color)
        self.thickness = int(thickness)
        self.center = center

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        import cv2

        out = _writable(image)
        h, w = out.shape[:2]
        scale = np.array([w, h], np.float32)
        for points in _landmarks(faces):
            if len(points) < 478:
                continue
            xy = points[:, :2] * scale
            for centre_index, ring in self.IRISES:
                centre = xy[centre_index]
                radius = float(np.linalg.norm(xy[list(ring)] - centre, axis=1).mean())
                c = (round(float(centre[0]) * _SCALE), round(float(centre[1]) * _SCALE))
                r = max(1, round(radius * _SCALE))
                cv2.circle(out, c, r, self.color, self.thickness, cv2.LINE_AA, _SHIFT)
                if self.center:
                    cv2.circle(out, c, round(1.5 * _SCALE), self.color, -1, cv2.LINE_AA, _SHIFT)
        return out


def _box_pixels(face: Any, w: int, h: int) -> tuple[float, float, float, float] | None:
    if isinstance(face, Detection):
        x, y, bw, bh = face.box_pixels(w, h)
        return x, y, x + bw, y + bh
    points = face_points(face)
    if points is None or not len(points):
        return None
    xy = points[:, :2] * np.array([w, h], np.float32)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def _box_label(face: Any) -> str:
    """``#3`` for a tracked face; a detection's score; nothing otherwise (a landmark
    face's presence score saturates at 1.00 and says nothing)."""
    tid = track_id(face)
    if tid is not None:
        return f"#{tid}"
    if isinstance(face, Detection):
        return f"{float(face.score):.2f}"
    return ""


class BoxAnnotator(Annotator):
    """Axis-aligned boxes of detections and landmark faces, labelled with the track id
    (``#3``) of a tracked face or the score of a detection."""

    def __init__(
        self, color: Color = (255, 64, 64), thickness: int = 2, show_label: bool = True
    ) -> None:
        self.color = tuple(int(c) for c in color)
        self.thickness = int(thickness)
        self.show_label = show_label

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        import cv2

        out = _writable(image)
        h, w = out.shape[:2]
        for face in face_items(faces):
            box = _box_pixels(face, w, h)
            if box is None:
                continue
            x0, y0, x1, y1 = (round(v) for v in box)
            cv2.rectangle(out, (x0, y0), (x1, y1), self.color, self.thickness, cv2.LINE_AA)
            text = _box_label(face) if self.show_label else ""
            if text:
                cv2.putText(
                    out,
                    text,
                    (x0, max(12, y0 - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.45,
                    self.color,
                    1,
                    cv2.LINE_AA,
                )
        return out


class KeypointAnnotator(Annotator):
    """Dots at the detections' keypoints (and, optionally, at every landmark)."""

    def __init__(
        self, color: Color = (255, 255, 0), radius: int = 3, landmarks: bool = False
    ) -> None:
        self.color = tuple(int(c) for c in color)
        self.radius = int(radius)
        self.landmarks = landmarks

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        import cv2

        out = _writable(image)
        h, w = out.shape[:2]
        scale = np.array([w, h], np.float32)
        for face in face_items(faces):
            if isinstance(face, Detection):
                xy = face.keypoints * scale
            elif self.landmarks and (points := face_points(face)) is not None:
                xy = points[:, :2] * scale
            else:
                continue
            for x, y in _fixed(xy).tolist():
                cv2.circle(out, (x, y), self.radius << _SHIFT, self.color, -1, cv2.LINE_AA, _SHIFT)
        return out


class TextAnnotator(Annotator):
    """A line of text (fixed, or computed from the faces) in a corner, on a dark band."""

    def __init__(
        self,
        text: str | Callable[[Faces], str],
        *,
        color: Color = (255, 255, 255),
        scale: float = 0.6,
        corner: str = "top-left",
    ) -> None:
        if corner not in ("top-left", "top-right", "bottom-left", "bottom-right"):
            raise ValueError("corner must be top-left, top-right, bottom-left or bottom-right")
        self.text = text
        self.color = tuple(int(c) for c in color)
        self.scale = scale
        self.corner = corner

    def label(self, faces: Faces) -> str:
        return self.text(faces) if callable(self.text) else self.text

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        import cv2

        out = _writable(image)
        text = self.label(faces)
        if not text:
            return out
        font = cv2.FONT_HERSHEY_SIMPLEX
        (tw, th), base = cv2.getTextSize(text, font, self.scale, 1)
        h, w = out.shape[:2]
        pad = 4
        x = pad if self.corner.endswith("left") else max(pad, w - tw - pad)
        y = th + pad if self.corner.startswith("top") else h - base - pad
        # Darken the band under the text so it stays readable on any image.
        y0, y1 = max(0, y - th - pad // 2), min(h, y + base + pad // 2)
        x0, x1 = max(0, x - pad // 2), min(w, x + tw + pad // 2)
        out[y0:y1, x0:x1] //= 3
        cv2.putText(out, text, (x, y), font, self.scale, self.color, 1, cv2.LINE_AA)
        return out


class FpsAnnotator(TextAnnotator):
    """Frames per second of the calls to ``annotate`` (over the last ``window`` calls).

    ``clock`` is injectable for tests and for timestamps other than wall time.
    """

    def __init__(
        self, window: int = 30, clock: Callable[[], float] = time.perf_counter, **kwargs: Any
    ) -> None:
        super().__init__(self._fps_text, **kwargs)
        self._times: deque[float] = deque(maxlen=max(2, window))
        self._clock = clock

    @property
    def fps(self) -> float:
        """Current rate (0 until two frames were seen)."""
        if len(self._times) < 2 or self._times[-1] <= self._times[0]:
            return 0.0
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])

    def _fps_text(self, faces: Faces) -> str:
        return f"{self.fps:.1f} FPS"

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        self._times.append(self._clock())
        return super().annotate(image, faces)


class OutputsAnnotator(Annotator):
    """Base of annotators that draw another graph output than the faces: without that
    output (plain ``annotate``) they draw nothing."""

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        return image


class HeadPoseAnnotator(OutputsAnnotator):
    """Head-pose axes from the ``geometry`` output (facial transformation matrices): the
    canonical face's x (red), y (green) and z (blue) axes, ``length`` cm long, projected
    with MediaPipe's default camera from the face's origin."""

    def __init__(self, length: float = 8.0, thickness: int = 2) -> None:
        self.length = length
        self.thickness = thickness

    def annotate_outputs(
        self, image: np.ndarray, faces: Faces, outputs: Mapping[str, Any]
    ) -> np.ndarray:
        import cv2
        from facegraph.vision.face.geometry import PerspectiveCamera

        geometry = [g for g in outputs.get("geometry") or [] if g is not None]
        if not geometry:
            return image
        out = _writable(image)
        h, w = out.shape[:2]
        camera = PerspectiveCamera()
        axes = np.array(
            [[0, 0, 0, 1], [self.length, 0, 0, 1], [0, self.length, 0, 1], [0, 0, self.length, 1]],
            np.float64,
        )
        for g in geometry:
            cam = (np.asarray(g.matrix, np.float64) @ axes.T).T[:, :3]
            if np.any(cam[:, 2] >= 0):  # behind the camera: nothing sensible to draw
                continue
            px = camera.project(cam, w, h) * (w, h)
            origin = _fixed(px[:1])[0]
            for end, color in zip(
                px[1:], ((255, 64, 64), (64, 255, 64), (64, 128, 255)), strict=True
            ):
                cv2.line(
                    out, tuple(origin), tuple(_fixed(end[None])[0]), color, self.thickness,
                    cv2.LINE_AA, _SHIFT,
                )  # fmt: skip
        return out


class BlendshapeBarsAnnotator(OutputsAnnotator):
    """The ``top`` strongest blendshapes of each face (from the ``blendshapes`` output) as
    small labelled bars beside the face's box (``_neutral`` left out)."""

    def __init__(self, top: int = 5, width: int = 60, color: Color = (255, 200, 0)) -> None:
        self.top = top
        self.width = width
        self.color = color

    def annotate_outputs(
        self, image: np.ndarray, faces: Faces, outputs: Mapping[str, Any]
    ) -> np.ndarray:
        import cv2

        shapes = outputs.get("blendshapes") or []
        if not shapes or not faces:
            return image
        out = _writable(image)
        h, w = out.shape[:2]
        for face, b in zip(faces, shapes, strict=False):
            box = _box_pixels(face, w, h)
            if box is None:
                continue
            x0 = int(min(max(box[2] + 6, 0), max(w - self.width - 90, 0)))
            y = int(max(box[1], 0)) + 10
            ranked = sorted(
                ((float(s), n) for s, n in zip(b.scores, b.names, strict=True) if n != "_neutral"),
                reverse=True,
            )[: self.top]
            for score, name in ranked:
                cv2.rectangle(out, (x0, y - 7), (x0 + self.width, y), (64, 64, 64), -1)
                cv2.rectangle(out, (x0, y - 7), (x0 + int(self.width * score), y), self.color, -1)
                cv2.putText(
                    out, name, (x0 + self.width + 4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.33,
                    (255, 255, 255), 1, cv2.LINE_AA,
                )  # fmt: skip
                y += 12
        return out


def default_annotators(
    *, mesh: bool = True, contours: bool = True, irises: bool = True, boxes: bool = True
) -> Compose:
    """The overlay of ``facegraph run --render/--show/--serve``: mesh, contours, irises,
    boxes; head-pose axes and the five strongest blendshapes when the graph outputs them.

    Detections (from a detector-only graph) get boxes and keypoints.
    """
    parts: list[Annotator] = []
    if mesh:
        parts.append(MeshAnnotator())
    if contours:
        parts.append(ContourAnnotator())
    if irises:
        parts.append(IrisAnnotator())
    if boxes:
        parts.append(BoxAnnotator())
        parts.append(KeypointAnnotator())
    parts.append(HeadPoseAnnotator())
    parts.append(BlendshapeBarsAnnotator())
    return Compose(parts)
