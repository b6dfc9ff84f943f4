"""Python (numpy) kernels for TFLite custom ops, and the registry that finds them.

A kernel is registered as a *factory*: it is called once when a model is loaded, with
the op's decoded options and tensor shapes, validates them, and returns the function
that computes the op on numpy arrays at every inference::

    from facegraph.models.custom_ops import CustomOp, register_custom_op

    @register_custom_op("MyScale", version=1)
    def my_scale(op: CustomOp):
        factor = float(op.options["factor"])   # from the op's flexbuffer custom_options

        def run(x):                            # one numpy array per op input
            return x * factor                  # one array (or a tuple, one per output)

        return run

``version=None`` registers a kernel for every version of the op; an exact version
wins over it. The three MediaPipe ops used by the Attention Mesh model
(``Landmarks2TransformMatrix``, ``TransformTensorBilinear``, ``TransformLandmarks``,
all version 2) are registered when this module is imported. Their arithmetic follows
MediaPipe's CPU kernels (``mediapipe/util/tflite/operations/*.cc``) operation by
operation in float32 (and float64 where the C++ code mixes in double literals), so
results agree to the last bit or within an ulp of libm's sin/cos/atan2.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .tflite_graph import TensorInfo, TfLiteModelError

#: The per-inference function a factory returns: numpy inputs in, output(s) out.
Kernel = Callable[..., "np.ndarray | Sequence[np.ndarray]"]
#: What :func:`register_custom_op` registers.
KernelFactory = Callable[["CustomOp"], Kernel]

_REGISTRY: dict[tuple[str, int | None], KernelFactory] = {}


class CustomOpError(TfLiteModelError):
    """A custom op has no kernel, or its kernel rejected the op's options or shapes."""


@dataclass(frozen=True, slots=True)
class CustomOp:
    """What a kernel factory learns about one custom op of a loaded model."""

    name: str
    version: int
    #: Operator index in the model's main subgraph.
    index: int
    #: Decoded flexbuffer ``custom_options`` (an empty dict when the op has none).
    options: Mapping[str, Any]
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    #: The model file (for messages).
    model: str = "<model>"

    def error(self, message: str) -> CustomOpError:
        """An error naming the model, the op and its position; for kernels to raise."""
        return CustomOpError(
            f"{self.model}: custom op '{self.name}' v{self.version} (operator #{self.index}): "
            f"{message}"
        )

    def expect_io(self, n_inputs: int, n_outputs: int) -> None:
        if len(self.inputs) != n_inputs or len(self.outputs) != n_outputs:
            raise self.error(
                f"expected {n_inputs} input(s) and {n_outputs} output(s), "
                f"got {len(self.inputs)} and {len(self.outputs)}"
            )

    def expect_float32(self) -> None:
        for t in (*self.inputs, *self.outputs):
            if t.dtype != np.float32:
                raise self.error(f"tensor {t.describe()} must be float32")


def register_custom_op(
    name: str, version: int | None = None, *, replace: bool = False
) -> Callable[[KernelFactory], KernelFactory]:
    """Decorator registering a kernel factory for custom op ``name`` (see module doc)."""
    key = (name, version)

    def decorate(factory: KernelFactory) -> KernelFactory:
        if key in _REGISTRY and not replace and _REGISTRY[key] is not factory:
            which = "any version" if version is None else f"version {version}"
            raise ValueError(
                f"a kernel for custom op '{name}' ({which}) is already registered "
                f"({_REGISTRY[key].__module__}.{_REGISTRY[key].__qualname__}); "
                "pass replace=True to override it"
            )
        _REGISTRY[key] = factory
        return factory

    return decorate


def unregister_custom_op(name: str, version: int | None = None) -> None:
    """Remove a registration (no error if there is none)."""
    _REGISTRY.pop((name, version), None)


def find_kernel(name: str, version: int) -> KernelFactory | None:
    """The factory for ``name`` at ``version``: an exact registration, else a version-less one."""
    return _REGISTRY.get((name, version)) or _REGISTRY.get((name, None))


def registered_custom_ops() -> list[tuple[str, int | None]]:
    return sorted(_REGISTRY, key=lambda k: (k[0], -1 if k[1] is None else k[1]))


def decode_options(raw: bytes) -> dict[str, Any]:
    """Decode a flexbuffer map of custom options (``{}`` for none)."""
    if not raw:
        return {}
    from flatbuffers import flexbuffers

    value = flexbuffers.Loads(raw)
    if not isinstance(value, dict):
        # Not a map: keep it reachable rather than guessing a key.
        return {"": value}
    return value


# ----------------------------------------------------------------------------------------
# MediaPipe's ops. Parameters missing from the flexbuffer read as 0, as in the C++ parser
# (flexbuffers' null → AsInt32/AsFloat == 0); the same validity checks then reject them.


def _int_opt(op: CustomOp, key: str) -> int:
    return int(op.options.get(key, 0))


def _float_opt(op: CustomOp, key: str) -> np.float32:
    return np.float32(op.options.get(key, 0.0))


def _matmul_f32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float32 matrix product summed left to right (``sum += a[r,k]*b[k,c]``) like the C++."""
    out = np.zeros((a.shape[0], b.shape[1]), dtype=np.float32)
    for k in range(a.shape[1]):
        out = out + a[:, k : k + 1] * b[k : k + 1, :]
    return out


@register_custom_op("Landmarks2TransformMatrix", version=2)
def landmarks_to_transform_matrix_v2(op: CustomOp) -> Kernel:
    """Crop matrix from landmarks: maps crop-grid coordinates to landmark coordinates.

    Input [1, N, 3] landmarks, output [1, 4, 4] row-major (spec §1.2).
    """
    op.expect_io(1, 1)
    op.expect_float32()
    shape = op.inputs[0].shape
    if len(shape) != 3 or shape[-1] != 3:
        raise op.error(f"landmarks input must be [1, N, 3], got {op.inputs[0].describe()}")
    n_landmarks = shape[1]
    subset = np.asarray(op.options.get("subset_idxs", []), dtype=np.int64).reshape(-1)
    left, right = _int_opt(op, "left_rotation_idx"), _int_opt(op, "right_rotation_idx")
    target = _float_opt(op, "target_rotation_radians")
    out_h, out_w = _int_opt(op, "output_height"), _int_opt(op, "output_width")
    scale_x, scale_y = _float_opt(op, "scale_x"), _float_opt(op, "scale_y")
    if subset.size == 0:
        raise op.error("option 'subset_idxs' is missing or empty")
    for key, value in (("left_rotation_idx", left), ("right_rotation_idx", right)):
        if not 0 <= value < n_landmarks:
            raise op.error(f"option '{key}' = {value} is outside [0, {n_landmarks})")
    bad = subset[(subset < 0) | (subset >= n_landmarks)]
    if bad.size:
        raise op.error(f"'subset_idxs' has indices outside [0, {n_landmarks}): {bad.tolist()}")
    if out_h <= 0 or out_w <= 0:
        raise op.error(f"output_height/output_width must be > 0, got {out_h}x{out_w}")
    if scale_x <= 0 or scale_y <= 0:
        raise op.error(f"scale_x/scale_y must be > 0, got {scale_x}, {scale_y}")
    # MediaPipe pairs the indices up and duplicates an odd last one; the *set* of points
    # that enters the min/max is exactly the listed indices either way.
    f32 = np.float32
    half_w = f32(-1.0 * (out_w / 2.0))  # computed in double, stored as float (C++)
    half_h = f32(-1.0 * (out_h / 2.0))

    def run(landmarks: np.ndarray) -> np.ndarray:
        lm = landmarks.reshape(-1, 3)
        lx, ly = lm[left, 0], lm[left, 1]
        rx, ry = lm[right, 0], lm[right, 1]
        rotation = target - np.arctan2(ry - ly, rx - lx)  # target − φ, float32
        c, s = np.cos(rotation), np.sin(rotation)
        pts = lm[subset]
        # Mat3 × (x, y, 1): sum = m00·x + m01·y (+ 0·1), float32, left to right.
        rx_ = c * pts[:, 0] + (-s) * pts[:, 1]
        ry_ = s * pts[:, 0] + c * pts[:, 1]
        max_x, min_x = rx_.max(), rx_.min()
        max_y, min_y = ry_.max(), ry_.min()
        crop_w, crop_h = max_x - min_x, max_y - min_y
        mid_x, mid_y = (min_x + max_x) / f32(2), (min_y + max_y) / f32(2)
        ci, si = np.cos(-rotation), np.sin(-rotation)
        crop_x = ci * mid_x + (-si) * mid_y
        crop_y = si * mid_x + ci * mid_y
        # T = Shift(c) · Rot(−ρ) · Scale · Shift(−OW/2, −OH/2), multiplied as MediaPipe does.
        a = -rotation
        ca, sa = np.cos(a), np.sin(a)
        sx = scale_x * crop_w / f32(out_w)
        sy = scale_y * crop_h / f32(out_h)
        eye = np.eye(4, dtype=np.float32)
        shift = eye.copy()
        shift[0, 3], shift[1, 3] = crop_x, crop_y
        rot = eye.copy()
        rot[0, 0], rot[0, 1], rot[1, 0], rot[1, 1] = ca, -sa, sa, ca
        scale = eye.copy()
        scale[0, 0], scale[1, 1] = sx, sy
        shift2 = eye.copy()
        shift2[0, 3], shift2[1, 3] = half_w, half_h
        t = _matmul_f32(eye, shift)
        t = _matmul_f32(t, rot)
        t = _matmul_f32(t, scale)
        t = _matmul_f32(t, shift2)
        return t.reshape(1, 4, 4)

    return run


@register_custom_op("TransformTensorBilinear", version=2)
def transform_tensor_bilinear_v2(op: CustomOp) -> Kernel:
    """Bilinear resampling of a [1, H, W, C] tensor through a 4×4 matrix (spec §1.3).

    Output pixel (ox, oy) samples the input at ``T·(o + 0.5) − 0.5``; a sample outside
    [0, W−1]×[0, H−1] yields 0 in every channel.
    """
    op.expect_io(2, 1)
    op.expect_float32()
    in_shape, out_shape = op.inputs[0].shape, op.outputs[0].shape
    if len(in_shape) != 4 or len(out_shape) != 4:
        raise op.error(
            f"data input and output must be 4-D, got {op.inputs[0].describe()} and "
            f"{op.outputs[0].describe()}"
        )
    if int(np.prod(op.inputs[1].shape)) < 8:
        raise op.error(f"matrix input must hold a 4x4 matrix, got {op.inputs[1].describe()}")
    _, H, W, C = in_shape
    _, OH, OW, OC = out_shape
    if OC != C:
        raise op.error(f"output has {OC} channels but the input has {C}")
    # The output size comes from the output tensor's shape, as in MediaPipe's CPU kernel.
    grid_y, grid_x = np.meshgrid(
        np.arange(OH, dtype=np.float32), np.arange(OW, dtype=np.float32), indexing="ij"
    )
    ox, oy = grid_x.reshape(-1), grid_y.reshape(-1)

    def run(data: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        m = matrix.reshape(-1)[:8].astype(np.float32, copy=False)
        x0_, x1_, x3_ = m[0], m[1], m[3]
        y0_, y1_, y3_ = m[4], m[5], m[7]
        # Half-pixel correction, evaluated in double (0.5 is a double literal) then stored
        # back as float.
        x3 = np.float32(float(x3_) + (float(x0_) * 0.5 + float(x1_) * 0.5 - 0.5))
        y3 = np.float32(float(y3_) + (float(y0_) * 0.5 + float(y1_) * 0.5 - 0.5))
        tx = (x0_ * ox + x1_ * oy) + x3
        ty = (y0_ * ox + y1_ * oy) + y3
        inside = (tx >= 0) & (tx <= W - 1) & (ty >= 0) & (ty <= H - 1)
        fx0, fy0 = np.floor(tx), np.floor(ty)
        rc = (tx - fx0).astype(np.float32)
        lc = (ty - fy0).astype(np.float32)
        # Clip only to keep the gather in range; outside samples are zeroed below, and the
        # +1 neighbour past the last row/column reads 0 (its weight is 0 there anyway).
        xi = np.clip(fx0, 0, W - 1).astype(np.intp)
        yi = np.clip(fy0, 0, H - 1).astype(np.intp)
        x_next_ok = (xi + 1 < W)[:, None]
        y_next_ok = (yi + 1 < H)[:, None]
        xn = np.minimum(xi + 1, W - 1)
        yn = np.minimum(yi + 1, H - 1)
        flat = data.reshape(H * W, C)
        q11 = flat[yi * W + xi]
        q21 = np.where(x_next_ok, flat[yi * W + xn], np.float32(0))
        q12 = np.where(y_next_ok, flat[yn * W + xi], np.float32(0))
        q22 = np.where(x_next_ok & y_next_ok, flat[yn * W + xn], np.float32(0))
        rc_, lc_ = rc[:, None], lc[:, None]
        one_m_rc = 1.0 - rc_.astype(np.float64)
        # (1.0 − rc)·q is double, rc·q is float: mirror the C++ promotion exactly.
        upper = (one_m_rc * q11 + (rc_ * q21)).astype(np.float32)
        lower = (one_m_rc * q12 + (rc_ * q22)).astype(np.float32)
        result = ((lc_ * lower) + (1.0 - lc_.astype(np.float64)) * upper).astype(np.float32)
        result[~inside] = 0
        return result.reshape(1, OH, OW, C)

    return run


@register_custom_op("TransformLandmarks", version=2)
def transform_landmarks_v2(op: CustomOp) -> Kernel:
    """Applies rows 0–1 of a 4×4 matrix to [1, N, 2|3] landmarks; z is copied (spec §1.4)."""
    op.expect_io(2, 1)
    op.expect_float32()
    shape = op.inputs[0].shape
    if len(shape) != 3 or shape[-1] not in (2, 3):
        raise op.error(f"landmarks input must be [1, N, 2|3], got {op.inputs[0].describe()}")
    if int(np.prod(op.inputs[1].shape)) < 8:
        raise op.error(f"matrix input must hold a 4x4 matrix, got {op.inputs[1].describe()}")

    def run(landmarks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        m = matrix.reshape(-1)[:8].astype(np.float32, copy=False)
        x, y = landmarks[..., 0], landmarks[..., 1]
        out = landmarks.astype(np.float32, copy=True)  # keeps z as is when D == 3
        out[..., 0] = (m[0] * x + m[1] * y) + m[3]
        out[..., 1] = (m[4] * x + m[5] * y) + m[7]
        return out

    return run
