"""Values that flow through the face pipeline: detections, rectangles and landmarks.

Slotted, frozen dataclasses: cheap to create, safe to share between packets. Arrays inside
them are made read-only on construction so that a consumer cannot change a value another
node also holds.

Coordinate conventions follow MediaPipe:

- "normalised" x and y are fractions of the image width and height (0 = left/top edge,
  1 = right/bottom edge); they may fall outside [0, 1];
- rotations are radians, positive = clockwise on screen (y points down);
- landmark z is in the same units as x (fractions of the image width).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "KEYPOINT_NAMES",
    "Detection",
    "FaceLandmarks",
    "NormalizedRect",
]

#: Names of BlazeFace's 6 keypoints, in tensor order. "right" is the subject's right
#: (image left for an unmirrored, upright face), as in MediaPipe's ``FaceKeyPoint``.
KEYPOINT_NAMES: tuple[str, ...] = (
    "right_eye",
    "left_eye",
    "nose_tip",
    "mouth_center",
    "right_ear_tragion",
    "left_ear_tragion",
)


def _frozen_array(a: object, shape_tail: tuple[int, ...], what: str) -> np.ndarray:
    arr = np.array(a, dtype=np.float32, copy=True)
    if arr.ndim != len(shape_tail) or not all(
        [want in (-1, got) for got, want in zip(arr.shape, shape_tail, strict=True)]
    ):  # a list, not a generator: this runs for every face of every frame
        raise ValueError(f"{what} must have shape {shape_tail} (-1 = any), got {arr.shape}")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected face: normalised axis-aligned box, score and 6 keypoints.

    ``keypoints`` is float32 (K, 2) normalised (x, y), K = 6 for BlazeFace (see
    :data:`KEYPOINT_NAMES`). Box values are Python floats holding float32-rounded numbers
    when they come from the float32 numerics.
    """

    xmin: float
    ymin: float
    width: float
    height: float
    score: float
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    label: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "keypoints", _frozen_array(self.keypoints, (-1, 2), "keypoints"))

    @property
    def xmax(self) -> float:
        return self.xmin + self.width

    @property
    def ymax(self) -> float:
        return self.ymin + self.height

    def box_pixels(self, image_width: int, image_height: int) -> tuple[float, float, float, float]:
        """(xmin, ymin, width, height) in pixels of an image of the given size."""
        return (
            self.xmin * image_width,
            self.ymin * image_height,
            self.width * image_width,
            self.height * image_height,
        )


@dataclass(frozen=True, slots=True)
class NormalizedRect:
    """A rotated rectangle in normalised image coordinates (MediaPipe's ``NormalizedRect``).

    ``rotation`` is in radians, clockwise on screen. ``rect_id`` optionally identifies a
    tracked face across frames.
    """

    x_center: float
    y_center: float
    width: float
    height: float
    rotation: float = 0.0
    rect_id: int | None = None

    def as_array(self) -> np.ndarray:
        """float32 [x_center, y_center, width, height, rotation]."""
        return np.array(
            [self.x_center, self.y_center, self.width, self.height, self.rotation], np.float32
        )

    @classmethod
    def from_array(cls, a: np.ndarray | list[float], rect_id: int | None = None) -> NormalizedRect:
        """Inverse of :meth:`as_array` (values are rounded to float32)."""
        v = np.asarray(a, dtype=np.float32).reshape(5)
        return cls(float(v[0]), float(v[1]), float(v[2]), float(v[3]), float(v[4]), rect_id)


@dataclass(frozen=True, slots=True)
class FaceLandmarks:
    """Face landmarks in image coordinates, MediaPipe's convention.

    ``points`` is float32 (N, 3): x, y normalised by image width and height, z in
    image-width units (N = 478 with refinement, 468 without). ``score`` is the face-presence
    probability; ``roi`` the rectangle the landmark model saw.
    """

    points: np.ndarray
    score: float
    roi: NormalizedRect | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", _frozen_array(self.points, (-1, 3), "points"))

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def track_id(self) -> int | None:
        """The id of the tracked face (its ROI's ``rect_id``): the same while the face is
        tracked from frame to frame, a new one when it is detected again after a loss."""
        return None if self.roi is None else self.roi.rect_id

    def pixels(self, image_width: int, image_height: int) -> np.ndarray:
        """float32 (N, 3) with x, y, z in pixels (z scaled by the image width)."""
        scale = np.array([image_width, image_height, image_width], np.float32)
        return self.points * scale

    def box_pixels(self, image_width: int, image_height: int) -> tuple[float, float, float, float]:
        """Axis-aligned bounding box of the x, y points in pixels: (xmin, ymin, xmax, ymax)."""
        px = self.pixels(image_width, image_height)
        return (
            float(px[:, 0].min()),
            float(px[:, 1].min()),
            float(px[:, 0].max()),
            float(px[:, 1].max()),
        )

    def to_dict(self, image_width: int, image_height: int) -> dict[str, object]:
        """The JavaScript ``face-landmarks-detection`` result format, in pixels.

        ``{"box": {"xMin", "xMax", "yMin", "yMax", "width", "height"}, "keypoints":
        [{"x", "y", "z", "name"?}]}``; ``name`` is set for points of the named regions
        ("lips", "leftEye", "rightEye", "leftEyebrow", "rightEyebrow", "leftIris",
        "rightIris", "faceOval"; left/right = the subject's). z is in pixels (scaled like x).
        """
        from facegraph.vision.face.indices import region_names

        px = self.pixels(image_width, image_height).tolist()
        names = region_names(len(px))
        xmin, ymin, xmax, ymax = self.box_pixels(image_width, image_height)
        keypoints: list[dict[str, object]] = []
        for (x, y, z), name in zip(px, names, strict=True):
            kp: dict[str, object] = {"x": x, "y": y, "z": z}
            if name is not None:
                kp["name"] = name
            keypoints.append(kp)
        return {
            "box": {
                "xMin": xmin,
                "xMax": xmax,
                "yMin": ymin,
                "yMax": ymax,
                "width": xmax - xmin,
                "height": ymax - ymin,
            },
            "keypoints": keypoints,
        }
