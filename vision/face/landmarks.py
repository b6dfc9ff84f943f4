"""Face-landmark model outputs → 468/478 image landmarks (docs/face_pipeline.md §2.3–2.6) and the
iris-model path (docs/face_pipeline.md §6). Pure numpy, float32 where MediaPipe uses ``float``.

Attention model, per face::

    crop = image_to_tensor(image, roi, 192, 192)            # (0, 1), replicate
    outs = model(crop.tensor)                               # 7 tensors (§0)
    score = face_presence(outs[6])
    if face_passes(score, min_tracking_confidence):
        pts = refine_attention_outputs(outs[:6])            # (478, 3) crop-normalised
        pts = project_landmarks(pts, roi)                   # image-normalised
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from facegraph.vision.face import indices as ix
from facegraph.vision.face.detection import sigmoid
from facegraph.vision.face.image_to_tensor import RotatedRect, box_points, warp_perspective_u8
from facegraph.vision.face.rois import detection_to_roi, landmarks_to_detection
from facegraph.vision.face.types import NormalizedRect

__all__ = [
    "ATTENTION_REFINEMENTS",
    "EyeCrop",
    "LandmarkAssembler",
    "Refinement",
    "crop_eye",
    "decode_iris_outputs",
    "decode_landmarks",
    "eye_rois",
    "face_passes",
    "face_presence",
    "merge_iris_into_mesh",
    "project_landmarks",
    "projected_z_scale",
    "refine_attention_outputs",
    "refine_landmarks",
    "remove_letterbox",
]

_F32 = np.float32


def decode_landmarks(
    tensor: np.ndarray,
    num_landmarks: int,
    input_width: int = 192,
    input_height: int = 192,
    flip_horizontally: bool = False,
) -> np.ndarray:
    """MediaPipe's ``TensorsToLandmarksCalculator`` → normalised (N, 3) float32.

    Values per landmark are ``tensor.size / num_landmarks`` (2 or 3); 2-D outputs get z = 0.
    ``x / W``, ``y / H``, ``z / W`` (z is scaled like x).
    """
    raw = np.asarray(tensor, _F32).reshape(-1)
    if raw.size % num_landmarks:
        raise ValueError(
            f"landmark tensor has {raw.size} values, not a multiple of {num_landmarks} landmarks"
        )
    dims = raw.size // num_landmarks
    if dims < 2:
        raise ValueError(f"need at least x, y per landmark, got {dims} values")
    raw2 = raw.reshape(num_landmarks, dims)
    out = np.zeros((num_landmarks, 3), _F32)
    w, h = _F32(input_width), _F32(input_height)
    x = w - raw2[:, 0] if flip_horizontally else raw2[:, 0]
    out[:, 0] = x / w
    out[:, 1] = raw2[:, 1] / h
    if dims > 2:
        out[:, 2] = raw2[:, 2] / w
    return out


def face_presence(flag_tensor: np.ndarray) -> float:
    """Face-presence probability: sigmoid of the face-flag logit (float32)."""
    logit = _F32(np.asarray(flag_tensor, _F32).reshape(-1)[0])
    return float(sigmoid(logit, may_overflow=not logit > -88.0))  # NaN: as may overflow


def face_passes(score: float, min_tracking_confidence: float) -> bool:
    """MediaPipe's ``ThresholdingCalculator``: strictly above the threshold (double compare)."""
    return float(score) > float(min_tracking_confidence)


@dataclass(frozen=True, slots=True)
class Refinement:
    """One input of ``LandmarksRefinementCalculator``: where its points go and what to do
    with z (``"copy"``, ``"none"`` = keep, or ``"average"`` of ``z_average_indices``)."""

    indices: tuple[int, ...]
    z: Literal["copy", "none", "average"] = "none"
    z_average_indices: tuple[int, ...] = ()


#: The six refinements of the Attention Mesh model, in model output order (docs/face_pipeline.md
#: §2.5).
ATTENTION_REFINEMENTS: tuple[Refinement, ...] = (
    Refinement(tuple(range(ix.NUM_MESH)), "copy"),
    Refinement(ix.LIPS, "none"),
    Refinement(ix.LEFT_EYE, "none"),
    Refinement(ix.RIGHT_EYE, "none"),
    Refinement(ix.LEFT_IRIS, "average", ix.LEFT_IRIS_Z_AVERAGE),
    Refinement(ix.RIGHT_IRIS, "average", ix.RIGHT_IRIS_Z_AVERAGE),
)


@lru_cache(maxsize=64)
def _index_array(indices: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(indices, np.int64)
    a.flags.writeable = False
    return a


def _as_slice(indices: tuple[int, ...]) -> slice | np.ndarray:
    """A slice when ``indices`` is a run i, i+1, ... (cheaper to assign through)."""
    if indices and indices == tuple(range(indices[0], indices[0] + len(indices))):
        return slice(indices[0], indices[0] + len(indices))
    return _index_array(indices)


@lru_cache(maxsize=16)
def _output_size(refinements: tuple[Refinement, ...]) -> int:
    all_idx = sorted({i for r in refinements for i in r.indices})
    if not all_idx or all_idx[0] != 0 or all_idx[-1] != len(all_idx) - 1:
        raise ValueError("refinement indices must cover 0..N-1 without gaps")
    return len(all_idx)


def refine_landmarks(
    landmark_sets: Sequence[np.ndarray], refinements: Sequence[Refinement]
) -> np.ndarray:
    """MediaPipe's ``LandmarksRefinementCalculator``: overlay landmark sets in order.

    Every set writes x, y at its indices; z follows its refinement's rule. The union of
    all indices must be exactly 0..N-1. Returns float32 (N, 3).
    """
    if len(landmark_sets) != len(refinements):
        raise ValueError(f"{len(landmark_sets)} landmark sets for {len(refinements)} refinements")
    out = np.zeros((_output_size(tuple(refinements)), 3), _F32)
    for k, (pts, ref) in enumerate(zip(landmark_sets, refinements, strict=True)):
        p = np.asarray(pts, _F32).reshape(-1, 3)
        if p.shape[0] != len(ref.indices):
            raise ValueError(
                f"refinement {k}: {p.shape[0]} landmarks but {len(ref.indices)} indices"
            )
        idx = _index_array(ref.indices)
        out[idx, :2] = p[:, :2]
        if ref.z == "copy":
            out[idx, 2] = p[:, 2]
        elif ref.z == "average":
            # Sum in double, divide, store as float (C++).
            avg = float(np.sum(out[_index_array(ref.z_average_indices), 2].astype(np.float64)))
            out[idx, 2] = _F32(avg / len(ref.z_average_indices))
    return out


class LandmarkAssembler:
    """``refine_landmarks([decode_landmarks(t, len(r.indices), w, h) for t, r in ...])``
    fused for the per-frame path: the same float32 operations on the same values (so the
    same bits), but the index bookkeeping is done once, here, and a call costs a handful
    of numpy operations instead of ~60 (x, y of every set are stacked, each output point's
    last writer is picked with one ``take``, one division; z follows the rules in order).

    Tensors with unexpected sizes take the unfused path, which raises its usual errors.
    """

    def __init__(
        self, refinements: Sequence[Refinement], input_width: int = 192, input_height: int = 192
    ) -> None:
        self.refinements = tuple(refinements)
        self._width, self._height = input_width, input_height
        n_out = _output_size(self.refinements)
        self._counts = [len(r.indices) for r in self.refinements]
        starts = np.cumsum([0, *self._counts])
        writer = np.full(n_out, -1, np.intp)
        for k, r in enumerate(self.refinements):  # later sets overwrite earlier ones
            writer[_index_array(r.indices)] = starts[k] + np.arange(len(r.indices))
        self._writer = writer
        self._n_out = n_out
        self._wh = np.array([input_width, input_height], _F32)
        self._w = _F32(input_width)
        self._z_steps = [
            (k, r.z, _as_slice(r.indices), _index_array(r.z_average_indices))
            for k, r in enumerate(self.refinements)
            if r.z != "none"
        ]

    def __call__(self, tensors: Sequence[np.ndarray]) -> np.ndarray:
        if len(tensors) != len(self.refinements):
            raise ValueError(
                f"{len(tensors)} landmark sets for {len(self.refinements)} refinements"
            )
        raws = []
        for t, n in zip(tensors, self._counts, strict=True):
            raw = np.asarray(t, _F32).reshape(-1)
            if raw.size % n or raw.size < 2 * n:
                return self._unfused(tensors)
            raws.append(raw.reshape(n, raw.size // n))
        xy = np.concatenate([r[:, :2] for r in raws]) if len(raws) > 1 else raws[0][:, :2]
        out = np.zeros((self._n_out, 3), _F32)
        np.divide(xy.take(self._writer, axis=0), self._wh, out=out[:, :2])
        z = out[:, 2]
        for k, rule, idx, avg_idx in self._z_steps:
            if rule == "copy":
                values = raws[k]
                z[idx] = values[:, 2] / self._w if values.shape[1] > 2 else _F32(0.0)
            else:  # average: sum in double (np.sum's own order), divide, store as float
                avg = float(np.add.reduce(z.take(avg_idx).astype(np.float64)))
                z[idx] = _F32(avg / len(avg_idx))
        return out

    def _unfused(self, tensors: Sequence[np.ndarray]) -> np.ndarray:
        sets = [
            decode_landmarks(t, n, self._width, self._height)
            for t, n in zip(tensors, self._counts, strict=True)
        ]
        return refine_landmarks(sets, self.refinements)


def refine_attention_outputs(outputs: Sequence[np.ndarray], input_size: int = 192) -> np.ndarray:
    """Decode the Attention Mesh model's first six outputs and assemble the 478 points
    (crop-normalised, before projection)."""
    if len(outputs) != 6:
        raise ValueError(
            f"expected 6 landmark tensors (mesh, lips, eyes, irises), got {len(outputs)}"
        )
    counts = [len(r.indices) for r in ATTENTION_REFINEMENTS]
    sets = [
        decode_landmarks(t, n, input_size, input_size) for t, n in zip(outputs, counts, strict=True)
    ]
    return refine_landmarks(sets, ATTENTION_REFINEMENTS)


def project_landmarks(points: np.ndarray, roi: NormalizedRect) -> np.ndarray:
    """MediaPipe's ``LandmarkProjectionCalculator`` (NORM_RECT form, docs/face_pipeline.md §2.6).

    Crop-normalised → image-normalised: rotate (x − .5, y − .5) by the ROI rotation, scale by
    its width/height, add its centre; z is scaled by the ROI width. float32.
    """
    p = np.asarray(points, _F32)
    ang = _F32(roi.rotation)
    c, s = np.cos(ang), np.sin(ang)
    x = p[:, 0] - _F32(0.5)
    y = p[:, 1] - _F32(0.5)
    out = np.empty_like(p)
    out[:, 0] = (c * x - s * y) * _F32(roi.width) + _F32(roi.x_center)
    out[:, 1] = (s * x + c * y) * _F32(roi.height) + _F32(roi.y_center)
    out[:, 2] = p[:, 2] * _F32(roi.width)
    return out


def projected_z_scale(roi: NormalizedRect, image_width: int, image_height: int) -> np.float32:
    """z scale of MediaPipe's ``LandmarkProjectionCalculator`` when it is given the image
    size (the Tasks graphs): the length, in image-normalised units, of the crop's unit x
    edge — ``|M·(1, 0) − M·(0, 0)|`` with ``M`` = ``GetRotatedSubRectToRectTransformMatrix``
    of the ROI in pixels — instead of the ROI's normalised width. The two differ for a
    rotated ROI on a non-square image (by √(cos²θ + sin²θ·(W/H)²)). float32 like the C++,
    except that ``std::pow`` squares in double.
    """
    from facegraph.vision.face.image_to_tensor import roi_in_pixels, rotated_subrect_to_rect_matrix

    m = rotated_subrect_to_rect_matrix(
        roi_in_pixels(roi, image_width, image_height), image_width, image_height
    )
    # ProjectXY of (0, 0) and (1, 0): float sums, as the C++ computes them.
    dx = float((m[0, 0] + m[0, 3]) - m[0, 3])
    dy = float((m[1, 0] + m[1, 3]) - m[1, 3])
    return _F32(math.sqrt(dx * dx + dy * dy))


def remove_letterbox(points: np.ndarray, padding: tuple[float, float, float, float]) -> np.ndarray:
    """MediaPipe's ``LandmarkLetterboxRemovalCalculator``; ``padding`` = (l, t, r, b)."""
    p = np.asarray(points, _F32)
    left, top, right, bottom = (_F32(v) for v in padding)
    one = _F32(1.0)
    out = np.empty_like(p)
    out[:, 0] = (p[:, 0] - left) / (one - left - right)
    out[:, 1] = (p[:, 1] - top) / (one - top - bottom)
    out[:, 2] = p[:, 2] / (one - left - right)
    return out


# --- iris-model path (docs/face_pipeline.md §6) -----------------------------------------------


def eye_rois(
    mesh_points: np.ndarray, image_width: int, image_height: int, scale: float = 2.3
) -> tuple[NormalizedRect, NormalizedRect]:
    """(left, right) eye ROIs from projected mesh points 33/133 and 362/263, ×2.3 square."""
    rois = []
    for a, b in (ix.LEFT_EYE_CORNERS, ix.RIGHT_EYE_CORNERS):
        det = landmarks_to_detection(np.asarray(mesh_points, _F32)[[a, b]])
        rois.append(detection_to_roi(det, image_width, image_height, 0, 1, scale))
    return rois[0], rois[1]


@dataclass(frozen=True, slots=True)
class EyeCrop:
    """An iris-model input: float32 (1, 64, 64, 3) in [0, 1], plus its letterbox padding."""

    tensor: np.ndarray
    padding: tuple[float, float, float, float]
    flipped: bool


def crop_eye(image: np.ndarray, roi: NormalizedRect, flip: bool, size: int = 64) -> EyeCrop:
    """``ImageCroppingCalculator`` (INTER_NEAREST, replicate) + ``ImageTransformation`` FIT
    to ``size``×``size`` + optional horizontal flip + ``v / 255`` (docs/face_pipeline.md §6 steps
    3–5).

    The resize uses ``cv2.resize`` (INTER_AREA when shrinking, else INTER_LINEAR).
    """
    import cv2

    ih, iw = image.shape[:2]
    w = max(1, round(float(_F32(roi.width) * _F32(iw))))
    h = max(1, round(float(_F32(roi.height) * _F32(ih))))
    cx = float(_F32(roi.x_center) * _F32(iw))
    cy = float(_F32(roi.y_center) * _F32(ih))
    if roi.rotation == 0.0:
        # Snap so the crop's edges fall on pixel boundaries.
        cx = round(cx - w / 2) + w / 2
        cy = round(cy - h / 2) + h / 2
    corners = box_points(RotatedRect(cx, cy, float(w), float(h), roi.rotation)).astype(np.float64)
    dst = np.array([[0.0, h], [0.0, 0.0], [w, 0.0], [w, h]])
    # Affine fit of continuous corners → continuous crop coords (exact for a rectangle),
    # then shifted to pixel-centre convention: M' = T(-.5) · M · T(+.5).
    a = np.hstack([corners[:3], np.ones((3, 1))])
    m = np.eye(3)
    m[:2] = np.linalg.solve(a, dst[:3]).T
    t_minus, t_plus = np.eye(3), np.eye(3)
    t_minus[:2, 2], t_plus[:2, 2] = -0.5, 0.5
    m = t_minus @ m @ t_plus
    crop = warp_perspective_u8(image, np.linalg.inv(m), w, h, "replicate", "nearest")
    s = min(size / w, size / h)
    tw, th = round(w * s), round(h * s)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(crop, (tw, th), interpolation=interp)
    top, left = (size - th) // 2, (size - tw) // 2
    canvas = np.zeros((size, size, image.shape[2]), np.uint8)
    canvas[top : top + th, left : left + tw] = resized
    aspect = w / h
    pad_lr = (1 - aspect) / 2 if aspect < 1 else 0.0
    pad_tb = (1 - 1 / aspect) / 2 if aspect > 1 else 0.0
    if flip:
        canvas = canvas[:, ::-1]
    tensor = canvas[None].astype(np.float32) / _F32(255.0)
    return EyeCrop(tensor, (pad_lr, pad_tb, pad_lr, pad_tb), flip)


def decode_iris_outputs(
    contours: np.ndarray, iris: np.ndarray, crop: EyeCrop, roi: NormalizedRect, size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Iris model outputs → image-normalised (71, 3) eye contour and (5, 3) iris."""
    result = []
    for t, n in ((contours, 71), (iris, 5)):
        p = decode_landmarks(t, n, size, size, flip_horizontally=crop.flipped)
        result.append(project_landmarks(remove_letterbox(p, crop.padding), roi))
    return result[0], result[1]


def merge_iris_into_mesh(
    mesh: np.ndarray,
    left_contour: np.ndarray,
    right_contour: np.ndarray,
    left_iris: np.ndarray,
    right_iris: np.ndarray,
) -> np.ndarray:
    """``UpdateFaceLandmarksCalculator`` + iris concatenation → (478, 3) (docs/face_pipeline.md §6
    step 9).

    The 71 + 71 eye points overwrite x, y, z of the mesh; the irises (with the iris model's
    own z) are appended, left then right.
    """
    out = np.array(mesh, _F32, copy=True).reshape(ix.NUM_MESH, 3)
    out[list(ix.LEFT_EYE)] = left_contour
    out[list(ix.RIGHT_EYE)] = right_contour
    return np.concatenate([out, np.asarray(left_iris, _F32), np.asarray(right_iris, _F32)])
