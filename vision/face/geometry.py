"""Face geometry: the facial transformation matrix, metric 3-D landmarks and head pose.

The maths of MediaPipe Tasks' geometry pipeline (``face_geometry/libs/geometry_pipeline.cc``,
``procrustes_solver.cc``; camera from ``face_geometry_from_landmarks_graph.cc``), written
from its description, not its code:

- **Camera**: a perspective camera with a vertical field of view of 63°, near plane 1,
  far plane 10000, origin top-left (:class:`PerspectiveCamera`). Its frustum at the near
  plane is ``2·near·tan(fov/2)`` high and ``width/height`` times that wide.
- **Input**: the first 468 normalised landmarks (irises dropped); z is scaled like x.
  A face whose landmarks all lie within 1e-3 (normalised) of their mean is skipped: it
  is too small to fit.
- **Screen → near plane**: y is flipped (top-left origin), x and z are scaled by the
  frustum width, y by its height, then x, y shifted by the frustum's left and bottom.
- **Scale, twice**: a weighted orthogonal Procrustes fit of the canonical face to those
  points (z negated: screen space is left-handed, metric space right-handed) gives a
  first scale s1; z is moved so that the mean depth sits at the near plane and divided
  by s1, x and y unprojected (multiplied by z/near), z negated, and a second fit gives
  s2. The final metric landmarks are the same unprojection with s1·s2.
- **Pose**: a last Procrustes fit of the canonical mesh to the metric landmarks is the
  facial transformation matrix (canonical face → camera space, centimetres); the metric
  landmarks are returned in the canonical frame (multiplied by its inverse).
- **Procrustes** (Akca 2003, §2.4): weights are the metadata's per-landmark weights;
  with their square roots ``q``, ``A = canonical·q``, ``B = runtime·q``, centre ``A`` on
  its weighted mean, rotation ``U·Vᵀ`` from the SVD of ``B·A_cᵀ`` (the last column of U
  negated when the determinants' product is negative: no reflections), scale
  ``Σ(R·A_c ∘ B) / Σ(A_c ∘ A)``, translation the weighted mean of ``B − sR·A`` (per-point
  ``q``-weighted, over the total weight).

Head pose from the matrix's rotation ``R`` (camera space: x right, y up, z toward the
viewer), as ``R = Ry(yaw) · Rx(−pitch) · Rz(roll)``:

- ``yaw`` > 0: the face turns toward the image's right (the nose moves right);
- ``pitch`` > 0: the face tilts up (the nose moves up);
- ``roll`` > 0: the head tilts counter-clockwise as seen in the image.

All in degrees; (0, 0, 0) is a face looking straight into the camera, upright.
Computed in float64 (MediaPipe uses float32; the results agree to the tolerances in
``tests/test_geometry.py``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
from facegraph.models.geometry_metadata import FACE_LANDMARK_PIPELINE, GeometryMetadata
from facegraph.vision.face.types import FaceLandmarks

__all__ = [
    "FaceGeometry",
    "GeometryPipeline",
    "PerspectiveCamera",
    "WeightedProcrustes",
    "head_pose",
    "procrustes",
]

METADATA = "face_geometry_metadata"
"""Manifest name of the geometry metadata (canonical mesh and Procrustes weights)."""

_NUM_LANDMARKS = 468
_TOO_COMPACT = 1e-3
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class PerspectiveCamera:
    """MediaPipe's default face-geometry camera (``FaceGeometryEnvGeneratorCalculator``)."""

    vertical_fov_degrees: float = 63.0
    near: float = 1.0
    far: float = 10000.0

    def __post_init__(self) -> None:
        if not 0.0 < self.vertical_fov_degrees < 180.0:
            raise ValueError(
                f"vertical_fov_degrees must be in (0, 180), got {self.vertical_fov_degrees}"
            )
        if not 0.0 < self.near < self.far:
            raise ValueError(f"need 0 < near < far, got near={self.near}, far={self.far}")

    def frustum(self, width: int, height: int) -> tuple[float, float, float, float]:
        """(left, right, bottom, top) of the frustum at the near plane for a frame size."""
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        h = 2.0 * self.near * math.tan(0.5 * math.radians(self.vertical_fov_degrees))
        w = width * h / height
        return -0.5 * w, 0.5 * w, -0.5 * h, 0.5 * h

    def projection_matrix(self, width: int, height: int) -> np.ndarray:
        """The OpenGL-style 4×4 projection (camera space → clip space) of this camera,
        for rendering with the facial transformation matrix."""
        left, right, bottom, top = self.frustum(width, height)
        n, f = self.near, self.far
        return np.array(
            [
                [2 * n / (right - left), 0, (right + left) / (right - left), 0],
                [0, 2 * n / (top - bottom), (top + bottom) / (top - bottom), 0],
                [0, 0, -(f + n) / (f - n), -2 * f * n / (f - n)],
                [0, 0, -1, 0],
            ],
            np.float32,
        )

    def project(self, points: np.ndarray, width: int, height: int) -> np.ndarray:
        """Camera-space points (N, 3), in front of the camera (z < 0), to normalised image
        coordinates (N, 2) with a top-left origin."""
        p = np.asarray(points, np.float64)
        left, right, bottom, top = self.frustum(width, height)
        x_near = p[:, 0] * self.near / -p[:, 2]
        y_near = p[:, 1] * self.near / -p[:, 2]
        return np.stack(
            [(x_near - left) / (right - left), 1.0 - (y_near - bottom) / (top - bottom)], axis=1
        )


def _readonly(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.array(a, np.float32, copy=True)
    if arr.shape != shape:
        raise ValueError(f"expected shape {shape}, got {arr.shape}")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, slots=True)
class FaceGeometry:
    """The geometry of one face."""

    matrix: np.ndarray
    """float32 (4, 4): the facial transformation matrix (canonical face → camera space, cm);
    MediaPipe's ``facial_transformation_matrixes`` entry."""
    metric_landmarks: np.ndarray
    """float32 (468, 3): the face's landmarks in centimetres, in the canonical face's frame."""
    yaw: float
    """Degrees; > 0 when the face turns toward the image's right."""
    pitch: float
    """Degrees; > 0 when the face tilts up."""
    roll: float
    """Degrees; > 0 when the head tilts counter-clockwise in the image."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "matrix", _readonly(self.matrix, (4, 4)))
        n = np.asarray(self.metric_landmarks).shape[0]
        object.__setattr__(self, "metric_landmarks", _readonly(self.metric_landmarks, (n, 3)))

    @property
    def translation(self) -> np.ndarray:
        """float32 (3,): where the canonical face's origin is in camera space (cm)."""
        return self.matrix[:3, 3].copy()

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: ``transform`` (4×4 rows), ``head_pose`` {yaw, pitch, roll} in degrees."""
        return {
            "transform": self.matrix.tolist(),
            "head_pose": {"yaw": self.yaw, "pitch": self.pitch, "roll": self.roll},
        }


class WeightedProcrustes:
    """Weighted orthogonal Procrustes fits of one fixed ``source`` (N, 3) point set: what
    depends on the source alone is computed once."""

    def __init__(self, source: np.ndarray, weights: np.ndarray) -> None:
        self._q = np.sqrt(np.asarray(weights, np.float64))
        self._total = float((self._q * self._q).sum())
        if self._total <= _EPS:
            raise ValueError("the total point weight is too small")
        q = self._q
        self._a = np.asarray(source, np.float64).T * q  # (3, N)
        centre = (self._a * q).sum(axis=1) / self._total
        self._a_centred = self._a - centre[:, None] * q[None, :]
        self._denominator = float((self._a_centred * self._a).sum())
        if self._denominator <= _EPS:
            raise ValueError("the scale's denominator is too small")

    def fit(self, target: np.ndarray) -> np.ndarray:
        """The 4×4 similarity (scale · rotation, translation) that best maps the source
        onto ``target`` (N, 3) in the weighted least-squares sense, without reflection."""
        q = self._q
        b = np.asarray(target, np.float64).T * q
        u, _, vt = np.linalg.svd(self._design(b))
        if _det3(u) * _det3(vt) < 0:
            u[:, 2] *= -1.0
        rotation = u @ vt
        scale = float(((rotation @ self._a_centred) * b).sum()) / self._denominator
        if scale <= _EPS:
            raise ValueError("the scale is too small")
        scaled = scale * rotation
        translation = ((b - scaled @ self._a) * q).sum(axis=1) / self._total
        out = np.eye(4)
        out[:3, :3] = scaled
        out[:3, 3] = translation
        return out

    def fit_scale(self, target: np.ndarray) -> float:
        """The scale of :meth:`fit`'s similarity, without the rotation and translation.

        Why separate: the geometry pipeline's first two fits only need the scale, and it
        follows from the singular values alone. With ``design = U·S·Vᵀ`` and ``R = U·D·Vᵀ``
        (``D`` flips the last axis when needed against a reflection), ``Σ(R·A_c ∘ B) =
        trace(R·designᵀ) = trace(D·S)``: the sum of the singular values, the smallest one
        negated when ``det(U)·det(Vᵀ) < 0``, which is the sign of ``det(design)`` (the
        product of the singular values is ≥ 0; when it is 0, so is the smallest one and its
        sign does not matter). Same value as ``fit``'s to float64 rounding, at a fraction
        of its cost (this runs twice per face per frame).
        """
        design = self._design(np.asarray(target, np.float64).T * self._q)
        s = np.linalg.svd(design, compute_uv=False)
        trace = float(s[0] + s[1] + (-s[2] if _det3(design) < 0 else s[2]))
        scale = trace / self._denominator
        if scale <= _EPS:
            raise ValueError("the scale is too small")
        return scale

    def _design(self, b: np.ndarray) -> np.ndarray:
        design = b @ self._a_centred.T
        if float(np.sqrt((design * design).sum())) <= _EPS:
            raise ValueError("the design matrix's norm is too small")
        return design


def _det3(m: np.ndarray) -> float:
    """Determinant of a 3×3 matrix, in Python floats (np.linalg.det's LAPACK call costs
    ten times more on a matrix this small)."""
    (a, b, c), (d, e, f), (g, h, i) = m.tolist()
    return float(a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g))


def procrustes(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The 4×4 similarity (scale · rotation, translation) that best maps ``source`` (N, 3)
    onto ``target`` (N, 3) in the weighted least-squares sense, without reflection."""
    return WeightedProcrustes(source, weights).fit(target)


def head_pose(matrix: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a facial transformation matrix (see the module
    docstring for the convention); its scale is removed first."""
    m = np.asarray(matrix, np.float64)[:3, :3]
    r = m / np.cbrt(_det3(m))
    # R = Ry(a) Rx(b) Rz(c): row 1 is (cos b sin c, cos b cos c, -sin b).
    b = math.asin(max(-1.0, min(1.0, -r[1, 2])))
    a = math.atan2(r[0, 2], r[2, 2])
    c = math.atan2(r[1, 0], r[1, 1])
    return math.degrees(a), -math.degrees(b), math.degrees(c)


class GeometryPipeline:
    """Face geometry from normalised landmarks, with MediaPipe's default camera.

    ``metadata`` is a :class:`GeometryMetadata`, or a manifest name or path of a
    ``.binarypb`` (default: the Tasks bundle's ``face_geometry_metadata``).
    """

    def __init__(
        self,
        metadata: GeometryMetadata | str | os.PathLike[str] = METADATA,
        camera: PerspectiveCamera | None = None,
    ) -> None:
        if not isinstance(metadata, GeometryMetadata):
            from facegraph.models import model_path
            from facegraph.models.geometry_metadata import read_geometry_metadata

            metadata = read_geometry_metadata(model_path(metadata))
        if metadata.input_source != FACE_LANDMARK_PIPELINE:
            raise ValueError(
                "face geometry metadata for the face *detection* pipeline is not supported; "
                "use the face landmarker bundle's (input_source FACE_LANDMARK_PIPELINE)"
            )
        if metadata.num_vertices != _NUM_LANDMARKS:
            raise ValueError(
                f"the canonical mesh has {metadata.num_vertices} vertices; "
                f"face geometry needs {_NUM_LANDMARKS}"
            )
        self.metadata = metadata
        self.camera = camera or PerspectiveCamera()
        # Zero-weight points add nothing to a fit: fit on the weighted ones only.
        self._basis = np.flatnonzero(metadata.weights > 0)
        self._solver = WeightedProcrustes(
            metadata.canonical_vertices[self._basis], metadata.weights[self._basis]
        )

    def _fit(self, runtime: np.ndarray) -> np.ndarray:
        return self._solver.fit(runtime[self._basis])

    def estimate(
        self, face: FaceLandmarks | np.ndarray, width: int, height: int
    ) -> FaceGeometry | None:
        """The geometry of one face whose normalised landmarks (≥ 468; z scaled like x)
        were found on a ``width`` × ``height`` frame; None for a face too small to fit."""
        points = face.points if isinstance(face, FaceLandmarks) else np.asarray(face)
        if points.ndim != 2 or points.shape[0] < _NUM_LANDMARKS or points.shape[1] != 3:
            raise ValueError(
                f"face geometry needs ({_NUM_LANDMARKS}+, 3) landmarks, got shape {points.shape}"
            )
        screen = np.array(points[:_NUM_LANDMARKS], np.float64)
        xy = screen[:, :2]
        # Some point lies at least half the bounding box's extent from the mean, so a box
        # wider than twice the limit settles it without the per-point distances.
        extent = float((xy.max(axis=0) - xy.min(axis=0)).max())
        if extent <= 2.0 * _TOO_COMPACT and (
            np.sqrt(((xy - xy.mean(axis=0)) ** 2).sum(axis=1).max()) <= _TOO_COMPACT
        ):
            return None
        left, right, bottom, top = self.camera.frustum(width, height)
        screen[:, 1] = 1.0 - screen[:, 1]
        screen *= np.array([right - left, top - bottom, right - left])
        screen[:, 0] += left
        screen[:, 1] += bottom
        depth_offset = float(screen[:, 2].mean())
        # The two scale estimates only need the weighted points; the last step all 468.
        basis = screen[self._basis]
        try:
            first = basis * np.array([1.0, 1.0, -1.0])
            scale1 = self._solver.fit_scale(first)
            second = self._unproject(basis, depth_offset, scale1)
            scale2 = self._solver.fit_scale(second)
            metric = self._unproject(screen, depth_offset, scale1 * scale2)
            matrix = self._fit(metric)
        except ValueError:
            return None  # degenerate landmarks: no pose (MediaPipe fails the frame)
        # The inverse of a similarity s·R, t is Rᵀ/s, −Rᵀ·t/s: cheaper than a general
        # inversion, and as exact (s² is the squared norm of any column of s·R).
        linear = matrix[:3, :3]
        inverse_linear = linear.T / float((linear[:, 0] ** 2).sum())
        canonical_frame = (metric - matrix[:3, 3]) @ inverse_linear.T
        yaw, pitch, roll = head_pose(matrix)
        return FaceGeometry(matrix, canonical_frame, yaw, pitch, roll)

    def _unproject(self, screen: np.ndarray, depth_offset: float, scale: float) -> np.ndarray:
        near = self.camera.near
        out = screen.copy()
        out[:, 2] = (out[:, 2] - depth_offset + near) / scale
        out[:, 0] *= out[:, 2] / near
        out[:, 1] *= out[:, 2] / near
        out[:, 2] *= -1.0
        return out
