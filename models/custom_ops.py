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
MediaPipe's CPU kernels (``mediapipe/util/tflite/operations/*.cc``): the matrix and
landmark arithmetic reproduces the C++ float roundings (with the C library's own
atan2f/cosf/sinf); the bilinear blend is MediaPipe's formula in plain float32 (within 2
ulp of the input's magnitude of MediaPipe's mixed float/double blend, at a fraction of
the cost). All are vectorised numpy, and agree bit for bit with the built-in lowerings
of :mod:`facegraph.models.lowering`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from facegraph import Registry

from .tflite_graph import TensorInfo, TfLiteModelError

#: The per-inference function a factory returns: numpy inputs in, output(s) out.
Kernel = Callable[..., "np.ndarray | Sequence[np.ndarray]"]
#: What :func:`register_custom_op` registers.
KernelFactory = Callable[["CustomOp"], Kernel]

#: Kernel factories by "Name vN" (or "Name (any version)"); see :func:`register_custom_op`.
CUSTOM_OPS: Registry[KernelFactory] = Registry("custom op kernel")


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


def _key(name: str, version: int | None) -> str:
    # Registry keys are strings; one op name has a table entry per version (+ "any").
    return f"{name} (any version)" if version is None else f"{name} v{version}"


def register_custom_op(
    name: str, version: int | None = None, *, replace: bool = False
) -> Callable[[KernelFactory], KernelFactory]:
    """Decorator registering a kernel factory for custom op ``name`` (see module doc).

    A different factory for a taken (name, version) is a
    :class:`~facegraph.RegistryError`, as in every facegraph registry; ``replace=True``
    overrides on purpose.
    """

    def decorate(factory: KernelFactory) -> KernelFactory:
        return CUSTOM_OPS.add(_key(name, version), factory, replace=replace)

    return decorate


def unregister_custom_op(name: str, version: int | None = None) -> None:
    """Remove a registration (no error if there is none)."""
    CUSTOM_OPS.remove(_key(name, version))


def find_kernel(name: str, version: int) -> KernelFactory | None:
    """The factory for ``name`` at ``version``: an exact registration, else a version-less one."""
    return CUSTOM_OPS.get(_key(name, version)) or CUSTOM_OPS.get(_key(name, None))


def registered_custom_ops() -> list[tuple[str, int | None]]:
    """(name, version) of every registered kernel; version None = any version."""
    keys: list[tuple[str, int | None]] = []
    for key in CUSTOM_OPS.names():
        name, _, rest = key.partition(" ")
        keys.append((name, None if rest == "(any version)" else int(rest[1:])))
    return sorted(keys, key=lambda k: (k[0], -1 if k[1] is None else k[1]))


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
# MediaPipe's kernels call std::atan2/cos/sin on floats, i.e. the C library's atan2f,
# cosf and sinf; so do LiteRT's built-in ATAN2/COS/SIN (which the lowering in
# facegraph.models.lowering uses). numpy's float32 versions round differently in ~40 % of
# cases, so call the C library's own functions when there is one, numpy's otherwise.


_Unary = Callable[[float], float]


def _c_math() -> tuple[Callable[[float, float], float], _Unary, _Unary]:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("m")
    try:
        libm = ctypes.CDLL(name) if name else None
    except OSError:
        libm = None
    if libm is None:  # pragma: no cover - no C math library (then numpy's float32 ones)
        return (
            lambda y, x: float(np.arctan2(np.float32(y), np.float32(x))),
            lambda x: float(np.cos(np.float32(x))),
            lambda x: float(np.sin(np.float32(x))),
        )
    atan2f, cosf, sinf = libm.atan2f, libm.cosf, libm.sinf
    atan2f.restype, atan2f.argtypes = ctypes.c_float, [ctypes.c_float, ctypes.c_float]
    for f in (cosf, sinf):
        f.restype, f.argtypes = ctypes.c_float, [ctypes.c_float]
    return atan2f, cosf, sinf


_atan2f, _cosf, _sinf = _c_math()


# ----------------------------------------------------------------------------------------
# MediaPipe's ops. Parameters missing from the flexbuffer read as 0, as in the C++ parser
# (flexbuffers' null → AsInt32/AsFloat == 0); the same validity checks then reject them.


def _int_opt(op: CustomOp, key: str) -> int:
    return int(op.options.get(key, 0))


def _float_opt(op: CustomOp, key: str) -> np.float32:
    return np.float32(op.options.get(key, 0.0))


@register_custom_op("Landmarks2TransformMatrix", version=2)
def landmarks_to_transform_matrix_v2(op: CustomOp) -> Kernel:
    """Crop matrix from landmarks: maps crop-grid coordinates to landmark coordinates.

    Input [1, N, 3] landmarks, output [1, 4, 4] row-major (docs/face_pipeline.md §1.2).
    """
    op.expect_io(1, 1)
    op.expect_float32()
    shape = op.inputs[0].shape
    if len(shape) != 3 or shape[-1] != 3:
        raise op.error(f"landmarks input must be [1, N, 3], got {op.inputs[0].describe()}")
    n_landmarks = shape[1]
    subset = np.asarray(op.options.get("subset_idxs", []), dtype=np.intp).reshape(-1)
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
    shift_x = f32(-1.0 * (out_w / 2.0))  # computed in double, stored as float (C++)
    shift_y = f32(-1.0 * (out_h / 2.0))
    grid_w, grid_h = f32(out_w), f32(out_h)
    two = f32(2)
    # Flat positions of the subset's x and y in the [N·3] landmark buffer: one take.
    subset_xy = np.stack((subset * 3, subset * 3 + 1))
    rot_x, rot_y = np.empty((4, 1), dtype=f32), np.empty((4, 1), dtype=f32)
    out_template = np.eye(4, dtype=f32).reshape(1, 4, 4)

    def run(landmarks: np.ndarray) -> np.ndarray:
        flat = landmarks.reshape(-1)
        lx, ly = flat[3 * left], flat[3 * left + 1]
        rx, ry = flat[3 * right], flat[3 * right + 1]
        rho = target - f32(_atan2f(float(ry - ly), float(rx - lx)))  # float32 throughout
        c, s = f32(_cosf(float(rho))), f32(_sinf(float(rho)))
        ca, sa = f32(_cosf(float(-rho))), f32(_sinf(float(-rho)))  # α = −ρ
        pts = flat.take(subset_xy)  # (2, n): x row, y row
        # R(ρ)·(x, y): c·x + (−s)·y and s·x + c·y, each summed left to right as in Mat3;
        # rows 2–3 are the same with both factors negated, i.e. exactly −R(ρ)·(x, y)
        # (rounding is symmetric), so one max gives (max x', max y', −min x', −min y').
        rot_x[:, 0] = c, s, -c, -s
        rot_y[:, 0] = -s, c, s, -c
        rotated = rot_x * pts[0]  # contiguous (4, 1) factors broadcast fastest
        rotated += rot_y * pts[1]
        hi_x, hi_y, nlo_x, nlo_y = rotated.max(axis=1).tolist()
        hi_x, hi_y, lo_x, lo_y = f32(hi_x), f32(hi_y), f32(-nlo_x), f32(-nlo_y)
        crop_w, crop_h = hi_x - lo_x, hi_y - lo_y
        mid_x, mid_y = (lo_x + hi_x) / two, (lo_y + hi_y) / two
        crop_x = ca * mid_x + (-sa) * mid_y
        crop_y = sa * mid_x + ca * mid_y
        # T = Shift(c)·Rot(α)·Scale(a, b)·Shift(−OW/2, −OH/2) with α = −ρ. MediaPipe forms
        # it by 4×4 float products; every entry but the translation is a single product
        # there (the other terms are exact zeros), and the translation is
        # ((t00·sx' + t01·sy') + c), summed in that order. Written out, same roundings:
        a = scale_x * crop_w / grid_w
        b = scale_y * crop_h / grid_h
        t00, t01 = ca * a, (-sa) * b
        t10, t11 = sa * a, ca * b
        out = out_template.copy()
        m = out[0]
        m[0, 0], m[0, 1], m[0, 3] = t00, t01, (t00 * shift_x + t01 * shift_y) + crop_x
        m[1, 0], m[1, 1], m[1, 3] = t10, t11, (t10 * shift_x + t11 * shift_y) + crop_y
        return out

    return run


@register_custom_op("TransformTensorBilinear", version=2)
def transform_tensor_bilinear_v2(op: CustomOp) -> Kernel:
    """Bilinear resampling of a [1, H, W, C] tensor through a 4×4 matrix (docs/face_pipeline.md
    §1.3).

    Output pixel (ox, oy) samples the input at ``T·(o + 0.5) − 0.5``; a sample outside
    [0, W−1]×[0, H−1] yields 0 in every channel. The sample position and bounds test are
    computed with MediaPipe's float roundings, so the same samples fall outside; the blend
    follows MediaPipe's formula in plain float32 (MediaPipe mixes float and double; the
    results differ by at most 2 ulp of the largest input value).
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
    if H < 2 or W < 2:
        raise op.error(f"data input must be at least 2x2, got {op.inputs[0].describe()}")
    # The output size comes from the output tensor's shape, as in MediaPipe's CPU kernel.
    # Everything that depends only on the shapes is built once, here.
    grid_y, grid_x = np.meshgrid(
        np.arange(OH, dtype=np.float32), np.arange(OW, dtype=np.float32), indexing="ij"
    )
    ox, oy = grid_x.reshape(-1), grid_y.reshape(-1)
    n = OH * OW
    last = np.array([[W - 1], [H - 1]], dtype=np.float32)  # largest valid x, y
    lo_clip, hi_clip = np.float32(-1), last + np.float32(1)
    last_base = last - np.float32(1)
    # Flat offset of (x, y) is x + y·W; the 4 corners (x0,y0) (x0+1,y0) (x0,y0+1)
    # (x0+1,y0+1) add 0, 1, W, W+1. Small integers: exact in float32.
    row_step = np.array([1, W], dtype=np.float32)
    corners = np.array([0, 1, W, W + 1], dtype=np.float32)
    one = np.float32(1)
    # Scratch reused by every call (a loaded model runs one inference at a time, like
    # its LiteRT interpreters; results never alias it):
    # pairs[0] = (1−fx, 1−fy), pairs[1] = (fx, fy); the 4 flat tap indices per sample.
    pairs = np.empty((2, 2, n), dtype=np.float32)
    taps = np.empty((n, 4), dtype=np.intp)

    def run(data: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        x0, x1, _, x3, y0, y1, _, y3 = matrix.reshape(-1)[:8].tolist()
        # Half-pixel correction: C++ evaluates it in double (0.5 is a double literal), like
        # Python floats here, then stores it back as float.
        # (Contiguous (2, 1) columns: broadcasting from strided views is twice as slow.)
        col_x, col_y, shift = np.array(
            [
                [[x0], [y0]],
                [[x1], [y1]],
                [[x3 + (x0 * 0.5 + x1 * 0.5 - 0.5)], [y3 + (y0 * 0.5 + y1 * 0.5 - 0.5)]],
            ],
            dtype=np.float32,
        )
        # Sample positions: row 0 is x, row 1 is y; (t0·ox + t1·oy) + t3 like DotProduct.
        t = col_x * ox
        t += col_y * oy
        t += shift
        ok = t >= 0
        ok &= t <= last
        inside = ok[0] & ok[1]
        if not max(map(abs, (x0, x1, x3, y0, y1, y3))) <= 1e30:
            # Positions may overflow to ±inf (whose weights would be 0·inf = NaN): clip to
            # [−1, last + 1], which keeps every outside sample outside and finite (0, as in
            # MediaPipe) and leaves inside ones alone. With entries ≤ 1e30 a position is
            # at most 1e30·(OW + OH + 1), far below float32's 3.4e38: no clip needed.
            np.clip(t, lo_clip, hi_clip, out=t)
        base = np.floor(t)
        # A sample exactly on the last row/column would read its +1 neighbour outside the
        # tensor (as 0, with weight 0): step back one pixel with fraction 1 instead.
        np.minimum(base, last_base, out=base)
        frac = np.subtract(t, base, out=pairs[1])  # exact (Sterbenz)
        np.subtract(one, frac, out=pairs[0])
        wy = pairs[:, 1]
        wy *= inside  # (1−fy, fy), zero outside
        np.add(np.dot(row_step, base)[:, None], corners, out=taps, casting="unsafe")
        # Outside samples may point before the tensor: "clip" keeps them readable.
        q = np.take(data.reshape(H * W, C), taps, axis=0, mode="clip")  # (P, 4, C)
        # MediaPipe's order: upper = (1−fx)·q11 + fx·q21, lower = (1−fx)·q12 + fx·q22,
        # out = fy·lower + (1−fy)·upper, here all in float32 (the lowering in
        # facegraph.models.lowering does the same operations, so the two agree bit for bit).
        wx0, wx1 = pairs[0, 0][:, None], pairs[1, 0][:, None]
        upper = wx0 * q[:, 0]
        upper += wx1 * q[:, 1]
        lower = wx0 * q[:, 2]
        lower += wx1 * q[:, 3]
        lower *= wy[1][:, None]
        upper *= wy[0][:, None]
        lower += upper
        return lower.reshape(1, OH, OW, C)

    return run


@register_custom_op("TransformLandmarks", version=2)
def transform_landmarks_v2(op: CustomOp) -> Kernel:
    """Applies rows 0–1 of a 4×4 matrix to [1, N, 2|3] landmarks; z is copied (docs/face_pipeline.md
    §1.4)."""
    op.expect_io(2, 1)
    op.expect_float32()
    shape = op.inputs[0].shape
    if len(shape) != 3 or shape[-1] not in (2, 3):
        raise op.error(f"landmarks input must be [1, N, 2|3], got {op.inputs[0].describe()}")
    if int(np.prod(op.inputs[1].shape)) < 8:
        raise op.error(f"matrix input must hold a 4x4 matrix, got {op.inputs[1].describe()}")
    dims = shape[-1]

    def run(landmarks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        rows = matrix.reshape(4, 4)[:2].astype(np.float32, copy=False)  # (x' row, y' row)
        lm = landmarks.reshape(-1, dims)
        # (t00·x + t01·y) + t03 as in MediaPipe's DotProduct (t02·0 adds an exact zero).
        xy = lm[:, 0:1] * rows[:, 0]
        xy += lm[:, 1:2] * rows[:, 1]
        xy += rows[:, 3]
        if dims == 3:
            xy = np.concatenate([xy, lm[:, 2:3]], axis=1)  # z copied, not scaled
        return xy.reshape(landmarks.shape)

    return run
