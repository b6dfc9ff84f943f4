"""``facegraph.FaceMesh``: a drop-in for the removed ``mp.solutions.face_mesh.FaceMesh``.

A thin wrapper over the shipped YAML graphs: ``face_mesh`` (tracking) or
``face_mesh_static`` (``static_image_mode=True``), run one frame at a time with
:meth:`facegraph.Graph.run_once`::

    import facegraph

    with facegraph.FaceMesh(max_num_faces=2) as mesh:
        for rgb in frames:                       # HxWx3 uint8 RGB
            for face in mesh.process(rgb):
                face.landmarks                   # float32 (478, 3), MediaPipe's convention
                face.score, face.box             # presence score, (xmin, ymin, xmax, ymax) px
                face.to_dict()                   # {"box": {...}, "keypoints": [...]} in px

Differences from MediaPipe's API: ``refine_landmarks`` defaults to True (the Attention
Mesh, 478 points) and ``process`` returns a list of :class:`Face` (empty when there is no
face) instead of a ``NamedTuple`` whose ``multi_face_landmarks`` is ``None``.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from facegraph import Closeable
from facegraph.vision.face.image_to_tensor import as_rgb
from facegraph.vision.face.types import FaceLandmarks
from facegraph.vision.media import MAX_IMAGE_SIDE

__all__ = ["Face", "FaceMesh"]


@dataclass(frozen=True, slots=True)
class Face:
    """One face found by :meth:`FaceMesh.process`.

    ``landmarks``: float32 (478, 3) with refinement, (468, 3) without; x and y normalised
    by the image width and height, z in image-width units (MediaPipe's convention).
    ``score``: face-presence probability of the landmark model. ``box``: axis-aligned
    bounding box of the landmarks in pixels, (xmin, ymin, xmax, ymax). ``track_id``: see
    below.
    """

    landmarks: np.ndarray
    score: float
    box: tuple[float, float, float, float]
    image_width: int
    image_height: int
    raw: FaceLandmarks

    @property
    def track_id(self) -> int | None:
        """Stays the same while the face is tracked from frame to frame; a new id when the
        face is detected again after a loss (each frame's faces are new in static mode)."""
        return self.raw.track_id

    def pixels(self) -> np.ndarray:
        """float32 (N, 3): x, y, z in pixels (z scaled by the image width)."""
        return self.raw.pixels(self.image_width, self.image_height)

    def to_dict(self) -> dict[str, object]:
        """The seed's keypoint format, in pixels: ``{"box": {"xMin", "xMax", "yMin",
        "yMax", "width", "height"}, "keypoints": [{"x", "y", "z", "name"?}]}``."""
        return self.raw.to_dict(self.image_width, self.image_height)


def check_image(image: Any, caller: str = "FaceMesh.process") -> np.ndarray:
    """The frame as contiguous HxWx3 uint8 RGB, or a TypeError/ValueError saying what was
    received (grayscale HxW / HxWx1 is replicated, RGBA's alpha dropped). ``caller``
    names the API method in the messages."""
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"{caller} expects a numpy array (HxWx3 uint8 RGB), got {type(image).__name__}"
        )
    if image.dtype != np.uint8:
        raise TypeError(
            f"{caller} expects uint8 pixels (0-255), got dtype {image.dtype} with "
            f"shape {image.shape}; for a float image in [0, 1] use "
            "(np.clip(x, 0, 1) * 255).round().astype(np.uint8)"
        )
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(
            f"{caller} expects an HxWx3 RGB image (HxW gray and HxWx4 RGBA are "
            f"converted), got an array of shape {image.shape} (ndim {image.ndim})"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{caller} got an empty image of shape {image.shape}")
    return as_rgb(image, f"{caller} image")


def _confidence(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


class FaceMesh(Closeable):
    """Face landmarks of RGB frames through the ``face_mesh`` graphs (see module doc).

    One call to :meth:`process` at a time per instance (a lock serialises callers);
    frames of one instance form one video in tracking mode. Use as a context manager or
    call :meth:`close` to release the graph.
    """

    def __init__(
        self,
        static_image_mode: bool = False,
        max_num_faces: int = 1,
        refine_landmarks: bool = True,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        *,
        detector: str = "short_range",
        mode: Literal["deterministic", "threads"] = "deterministic",
    ) -> None:
        from facegraph import Graph, load_graph

        if isinstance(max_num_faces, bool) or not isinstance(max_num_faces, int):
            raise TypeError(f"max_num_faces must be an int >= 1, got {max_num_faces!r}")
        if max_num_faces < 1:
            raise ValueError(f"max_num_faces must be >= 1, got {max_num_faces}")
        self.static_image_mode = bool(static_image_mode)
        self.max_num_faces = max_num_faces
        self.refine_landmarks = bool(refine_landmarks)
        self.min_detection_confidence = _confidence(
            "min_detection_confidence", min_detection_confidence
        )
        self.min_tracking_confidence = _confidence(
            "min_tracking_confidence", min_tracking_confidence
        )
        self.graph_name = "face_mesh_static" if self.static_image_mode else "face_mesh"
        self._spec = load_graph(self.graph_name)
        self._mode: Literal["deterministic", "threads"] = mode
        self._side_packets = {
            "num_faces": self.max_num_faces,
            "min_detection_confidence": self.min_detection_confidence,
            "min_tracking_confidence": self.min_tracking_confidence,
            "detector": detector,
            "with_attention": self.refine_landmarks,
        }
        self._graph = Graph(self._spec, mode=mode).start(self._side_packets)
        self._lock = threading.Lock()
        self._closed = False

    def _restart(self) -> None:
        """A fresh graph after a failed call: a graph that failed stays failed, the façade
        must not (tracking starts over, as after a scene cut)."""
        from facegraph import Graph

        failed, self._graph = self._graph, Graph(self._spec, mode=self._mode)
        with contextlib.suppress(Exception):
            failed.cancel()
        self._graph.start(self._side_packets)

    def process(self, image: np.ndarray) -> list[Face]:
        """Faces in one RGB uint8 frame (HxWx3; HxW gray and HxWx4 RGBA are converted).

        Returns an empty list when there is no face. In tracking mode successive calls
        are successive video frames.
        """
        rgb = check_image(image)
        h, w = rgb.shape[:2]
        if max(h, w) >= MAX_IMAGE_SIDE:
            raise ValueError(
                f"FaceMesh.process got a {w}x{h} image: a side of {MAX_IMAGE_SIDE} px or "
                "more is beyond OpenCV's geometric transforms; downscale it first"
            )
        with self._lock:
            if self._closed:
                raise RuntimeError("FaceMesh.process called after close()")
            try:
                out = self._graph.run_once({"image": rgb})
            except BaseException:
                self._restart()  # this call fails; the next one runs on a healthy graph
                raise
        faces: list[FaceLandmarks] = out.get("faces") or []
        result = []
        for f in faces:
            xmin, ymin, xmax, ymax = f.box_pixels(w, h)
            result.append(Face(f.points, float(f.score), (xmin, ymin, xmax, ymax), w, h, f))
        return result

    def close(self) -> None:
        """Finish the graph; further :meth:`process` calls raise. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._graph.close_all_inputs()
                self._graph.wait_until_done()
            except Exception:
                self._graph.cancel()  # an error that was already reported by process()

    def __repr__(self) -> str:
        return (
            f"FaceMesh(static_image_mode={self.static_image_mode}, "
            f"max_num_faces={self.max_num_faces}, refine_landmarks={self.refine_landmarks}, "
            f"min_detection_confidence={self.min_detection_confidence}, "
            f"min_tracking_confidence={self.min_tracking_confidence})"
        )
