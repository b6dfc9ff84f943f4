"""Rotated-rectangle crop of an RGB image into a model input tensor (MediaPipe's CPU
``ImageToTensorCalculator``), with an exact emulation of OpenCV 3.4's fixed-point warp
and a fast ``cv2.warpAffine`` mode (see "Fast mode" below).

Pipeline (docs/face_pipeline.md §2.2, §3.1): ROI in pixels (float32) → optional aspect padding
(letterbox) → ``cv::RotatedRect`` corners (float32, ``boxPoints``) → ``getPerspectiveTransform`` to
the output corners → ``warpPerspective(INTER_LINEAR)`` on uint8 with REPLICATE or CONSTANT(0) border
→ ``v * scale + offset`` in float32.

Warp decision
-------------
MediaPipe 0.10.14's wheel links OpenCV 3.4.10, whose ``warpPerspective`` on uint8 samples in
1/32-pixel fixed point with integer bilinear weights (opencv-python 4.10 still does). OpenCV
5.x computes the warp differently: 34 % of output values differ by ±1 on our
random crops (56 % on the spec's images, §7) and landmarks move by 0.01–0.02 px on average.
Pinning ``opencv-python<=4.10`` would fix it but ties the project to an old OpenCV forever
and breaks silently whenever a user has a newer cv2. We therefore **emulate that 3.4
arithmetic in numpy** (an emulation of OpenCV's algorithm, written from its arithmetic and
attributed in NOTICE; it calls OpenCV wherever OpenCV gives the same bits):

1. For destination pixel (x, y), OpenCV evaluates, in double, ``X = M0·xb + M1·y + M2``
   (``xb`` = start of the 32×32-pixel-budget block that pixel falls in) then adds
   ``M0·(x − xb)``; likewise Y and W; ``W = 32 / W``; the source position in 1/32 px is
   ``round_half_even(X·W)`` (``cvRound``). We reproduce the block split so even the double
   rounding order matches.
2. Integer tap = ``X >> 5``, fraction ``X & 31``; weights from the 32×32 table
   ``(32 − fy)(32 − fx)·32`` etc. (sum 32768; the (0, 0) entry is stored as 32767 + 1 on the
   far tap, a quirk of OpenCV's table normalisation that we copy although it never changes a
   result).
3. ``(Σ w·v + 16384) >> 15``. REPLICATE clamps each tap index; CONSTANT reads the border
   value for each out-of-range tap.

The matrix matters to the last bit too, because scales such as 225/192 put half of all
source coordinates on exact 1/32-px rounding ties that those last bits decide. It comes from
OpenCV's own ``getPerspectiveTransform`` and ``invert`` (same bits as 3.4 in every OpenCV
from 4.8 to 5.1, measured on 100k random ROIs) and ``boxPoints`` (all but the far corners,
see :func:`box_points`).

Measured: bit-identical to ``opencv-python-headless==4.10.0.84`` (whose uint8 warp is still
3.4's fixed-point code) on 150 random rotated/letterboxed crops (13.9 M values, both
borders, INTER_LINEAR and INTER_NEAREST) and on every matrix of 300 random ROIs; against
MediaPipe 0.10.14 itself, landmarks given MediaPipe's ROI agree to ≤ 0.002 px and the
detector (incl. the tie-heavy 150×225 full-range case) to ≤ 3e-7. cv2 5.x's own
``warpPerspective`` differs from it in 34 % of values. Timing on this 2-core machine:
192×192 face crop ≈ 0.35 ms hot, ≈ 0.55 ms from a cold 640×480 frame (coordinates in numpy,
fixed-point maps by ``cv2.convertMaps``, integer interpolation in ``cv2.remap`` on a copied
source window, each after a one-time bit-exactness self-check, else numpy ≈ 3-6 ms); the
detectors' whole-image 128×128 letterbox ≈ 0.08 ms (plan and maps cached per size).

INTER_NEAREST (used by the iris path's ``ImageCroppingCalculator``) is emulated the same
way: ``round_half_even(X/W)`` per pixel, REPLICATE clamp.

Fast mode (``warp="fast"``)
---------------------------
A rotated rectangle onto an axis-aligned one is an affine map, so the fast mode writes
the exact mode's destination → source map (same ROI, padding and geometry as
:func:`crop_matrix`) in closed form (:func:`_affine_map`; on face-shaped ROIs it agrees
with OpenCV's perspective solve to ~1e-5 px) and calls this cv2's
``warpAffine(INTER_LINEAR | WARP_INVERSE_MAP)`` with the same border, on a view of the
source window around the ROI, read in address order first (for cold frames), then converts with
the same float32 ``v * scale + offset``. ROI, LETTERBOX_PADDING and MATRIX are identical
to the exact mode's; only the pixels' rounding differs (OpenCV 5 interpolates at float
positions instead of 1/32 px): on a photo, mean |fast − exact| ≤ 0.1 grey level, max 4,
8 % of values differ. Each call returns a fresh tensor. Sources still taller or wider
than 32767 after windowing go through the exact mode (OpenCV 4's ``warpAffine`` would
saturate their coordinates). The warp runs with OpenCV held at one thread
(:func:`facegraph.vision.opencv_threads.serial_opencv`): OpenCV 5 splits even a 192×192
warp across its pool, whose workers then spin ~0.5 ms per call on the cores the models
need.

Measured (benchmarks/bench_crop.py, 640×480 frame, median per crop, exact → fast in the
same run on 2 shared cores, load average 1.1): 192×192 316 → 131 µs from a frame in
cache, 328 → 145 µs from a cold one; 256×256 490 → 194 and 504 → 208 µs (fast/exact
0.40-0.44×; with OpenCV's pool, before the serial warp, 0.28-0.48× over six runs).
Landmarks against MediaPipe's references, worst face (tests/test_crop_warp.py): legacy
mesh static 0.030 px mean / 0.11 px max, one tracking step 0.035 / 0.10, Tasks IMAGE mode
0.026 / 0.085 (blendshapes 0.011, rotation 1.2e-3, translation 0.01 cm), all well inside
the budgets (0.05 / 0.5 px; 0.02; 2e-3; 0.1 cm). So the shipped landmark graphs
(graphs/face_landmark.yaml, graphs/face_landmarks_v2.yaml) use it; the detectors' whole-
image letterbox stays exact (cached, ≈ 0.08 ms), and ``warp: exact`` in a graph's
ImageToTensor options gives MediaPipe's pixels bit for bit.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

# At import (a face graph's load), not on the first frame: importing cv2 takes ~20 ms, and
# its wheel's own OpenBLAS starts threads that spin for ~0.1 s (40-70 ms of a core).
import cv2
import numpy as np
from facegraph.models.uint8_input import value_range_transform
from facegraph.vision.face.types import NormalizedRect
from facegraph.vision.opencv_threads import serial_opencv

__all__ = [
    "BorderMode",
    "CropResult",
    "RotatedRect",
    "WarpMode",
    "as_rgb",
    "box_points",
    "crop_matrix",
    "image_to_tensor",
    "pad_roi",
    "roi_in_pixels",
    "rotated_subrect_to_rect_matrix",
    "value_range_lut",
    "warp_perspective_u8",
]

BorderMode = Literal["replicate", "zero"]
WarpMode = Literal["exact", "fast"]
_F32 = np.float32

_INTER_BITS = 5
_INTER_TAB = 1 << _INTER_BITS  # 32 sub-pixel steps
_BLOCK = 32  # OpenCV's warp block: BLOCK_SZ x BLOCK_SZ pixels per block


@dataclass(frozen=True, slots=True)
class RotatedRect:
    """A rotated rectangle in pixels (float32 values), MediaPipe's ``RotatedRect``."""

    center_x: float
    center_y: float
    width: float
    height: float
    rotation: float  # radians, clockwise on screen


@dataclass(frozen=True, slots=True)
class CropResult:
    """A model input tensor and what is needed to map model outputs back to the image.

    - ``tensor``: float32 (1, H, W, 3), or the uint8 pixels (``value_range=None``).
    - ``roi``: the (padded) rectangle in pixels that the tensor covers.
    - ``padding``: letterbox padding (left, top, right, bottom) as fractions of the tensor
      (all 0 without ``keep_aspect``).
    - ``image_size``: (width, height) of the image cropped.
    - ``matrix`` (a property): float32 4×4 row-major, tensor-normalised (u, v) →
      image-normalised (x, y) (MediaPipe's ``GetRotatedSubRectToRectTransformMatrix``).
    """

    tensor: np.ndarray
    roi: RotatedRect
    padding: tuple[float, float, float, float]
    image_size: tuple[int, int]
    planned_matrix: np.ndarray | None = None  # the whole-image plan's, made once per size

    @property
    def matrix(self) -> np.ndarray:
        # Made on demand, a fresh array each time (the caller's to keep): the detectors
        # read it once per frame, the landmark crops (a face or more per frame) never.
        if self.planned_matrix is not None:
            return self.planned_matrix.copy()
        return rotated_subrect_to_rect_matrix(self.roi, *self.image_size)


def as_rgb(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Return ``image`` as a C-contiguous HxWx3 uint8 RGB array, or raise a clear error.

    Accepted: HxWx3 uint8 (returned as is when contiguous), HxW or HxWx1 grayscale
    (replicated to 3 channels), HxWx4 RGBA (alpha dropped, as MediaPipe's RGBA→RGB).
    Anything else (other dtypes, channel counts, empty images) raises ``ValueError``.
    """
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ValueError(
            f"{what} must be uint8 RGB (0-255), got dtype {a.dtype}; convert with "
            "np.clip(x * 255, 0, 255).astype(np.uint8) for float images in [0, 1]"
        )
    if a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 1):
        a = np.repeat(a.reshape(a.shape[0], a.shape[1], 1), 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    elif not (a.ndim == 3 and a.shape[2] == 3):
        raise ValueError(f"{what} must be HxWx3 RGB (or HxW gray, HxWx4 RGBA), got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{what} is empty: shape {a.shape}")
    return np.ascontiguousarray(a)


def roi_in_pixels(rect: NormalizedRect | None, image_width: int, image_height: int) -> RotatedRect:
    """MediaPipe's ``GetRoi``: a normalised rect (or the whole image) in pixels, in float32."""
    if rect is None:
        return RotatedRect(
            float(_F32(0.5) * _F32(image_width)),
            float(_F32(0.5) * _F32(image_height)),
            float(_F32(image_width)),
            float(_F32(image_height)),
            0.0,
        )
    return RotatedRect(
        float(_F32(rect.x_center) * _F32(image_width)),
        float(_F32(rect.y_center) * _F32(image_height)),
        float(_F32(rect.width) * _F32(image_width)),
        float(_F32(rect.height) * _F32(image_height)),
        float(_F32(rect.rotation)),
    )


def pad_roi(
    roi: RotatedRect, out_width: int, out_height: int, keep_aspect: bool
) -> tuple[RotatedRect, tuple[float, float, float, float]]:
    """MediaPipe's ``PadRoi``: grow the ROI to the tensor's aspect ratio (float32 maths).

    Returns the padded ROI and the letterbox padding (left, top, right, bottom) as fractions
    of the tensor.
    """
    if not keep_aspect:
        return roi, (0.0, 0.0, 0.0, 0.0)
    if out_width <= 0 or out_height <= 0:
        raise ValueError(f"tensor size must be > 0, got {out_width}x{out_height}")
    if not (roi.width > 0 and roi.height > 0):
        raise ValueError(f"ROI width and height must be > 0, got {roi.width}x{roi.height}")
    tensor_ar = _F32(out_height) / _F32(out_width)
    w, h = _F32(roi.width), _F32(roi.height)
    roi_ar = h / w
    v_pad = h_pad = _F32(0.0)
    if tensor_ar > roi_ar:
        new_w, new_h = w, w * tensor_ar
        v_pad = (_F32(1.0) - roi_ar / tensor_ar) / _F32(2.0)
    else:
        new_w, new_h = h / tensor_ar, h
        h_pad = (_F32(1.0) - tensor_ar / roi_ar) / _F32(2.0)
    padded = RotatedRect(roi.center_x, roi.center_y, float(new_w), float(new_h), roi.rotation)
    return padded, (float(h_pad), float(v_pad), float(h_pad), float(v_pad))


def box_points(roi: RotatedRect) -> np.ndarray:
    """Corners of ``roi`` as MediaPipe's ``cv::RotatedRect`` gives them, in float32.

    Corner order: bottom-left, top-left, top-right, bottom-right (for θ = 0). The angle
    goes through MediaPipe's ``rotation * 180.f / M_PI`` (float, then double, then float).

    Corners 0 and 1 come from ``cv2.boxPoints`` (the same bits in OpenCV 4.8-5.1). Corners
    2 and 3 are those two reflected through the centre, ``2·c − p`` in float32: that is how
    OpenCV 3.4 (linked into MediaPipe 0.10.14) and 4.x place them, while OpenCV 5 evaluates
    them directly from the half-extents, which moves a last bit in 73 % of random ROIs and
    so, through the crop matrix, some 1/32-px rounding ties of the warp.
    """
    angle_deg = float(_F32(float(_F32(roi.rotation) * _F32(180.0)) / math.pi))
    center = np.array([roi.center_x, roi.center_y], np.float32)
    size = (float(_F32(roi.width)), float(_F32(roi.height)))
    corners = np.empty((4, 2), np.float32)
    corners[:2] = cv2.boxPoints(((float(center[0]), float(center[1])), size, angle_deg))[:2]
    np.subtract(_F32(2.0) * center, corners[:2], out=corners[2:])
    return corners


def crop_matrix(roi: RotatedRect, out_width: int, out_height: int) -> np.ndarray:
    """Destination pixel → source pixel 3×3 (float64) map, exactly as MediaPipe's
    ``warpPerspective`` computes it: ``getPerspectiveTransform(boxPoints → output corners,
    DECOMP_LU)``, then the 3×3 inversion ``warpPerspective`` does (``invert(DECOMP_LU)``).

    Both are OpenCV's own functions: on 100k random ROIs (rotated, letterboxed, whole-image)
    they give the same bits in OpenCV 4.8, 4.10, 4.11 and 5.1 as OpenCV 3.4's. The last
    bits matter: a scale such as 225/192 puts half the source coordinates on exact 1/32-px
    rounding ties, which these bits decide.
    """
    ow, oh = _F32(out_width), _F32(out_height)
    z = _F32(0.0)
    src = box_points(roi)
    dst = np.array([[z, oh], [z, z], [ow, z], [ow, oh]], np.float32)
    forward = cv2.getPerspectiveTransform(src, dst, solveMethod=cv2.DECOMP_LU)
    # OpenCV returns a matrix even for a singular system (collinear corners, e.g. a rect
    # thinner than a float32 ulp at its centre): check that it maps the corners.
    mapped = np.hstack([src, np.ones((4, 1), np.float32)]) @ forward.T
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.abs(mapped[:, :2] / mapped[:, 2:] - dst).max()
    if not err <= 1e-3 * (1.0 + max(out_width, out_height)):
        raise ValueError(f"degenerate crop rectangle (corners {src.tolist()} are collinear)")
    ok, inverse = cv2.invert(forward, flags=cv2.DECOMP_LU)
    if not ok:
        raise ValueError("degenerate crop rectangle (singular perspective matrix)")
    return inverse


# --- fixed-point bilinear table (OpenCV's BilinearTab_i), built once -----------------------


def _bilinear_table() -> np.ndarray:
    f = np.arange(_INTER_TAB, dtype=np.int32)
    fy2, fx2 = np.meshgrid(f, f, indexing="ij")
    fy, fx = fy2.ravel(), fx2.ravel()
    tab = np.stack(
        [
            (_INTER_TAB - fy) * (_INTER_TAB - fx),
            (_INTER_TAB - fy) * fx,
            fy * (_INTER_TAB - fx),
            fy * fx,
        ],
        axis=1,
    ).astype(np.int32) * (32768 // (_INTER_TAB * _INTER_TAB))
    # OpenCV stores weights as int16: 32768 saturates to 32767 and its sum-fix-up loop adds
    # the missing 1 to the (1, 1) tap. Harmless ((32767·a + b + 16384) >> 15 == a), but kept.
    tab[0] = (32767, 0, 0, 1)
    return tab


_TAB = _bilinear_table()


#: Rounded coordinates (×32) whose magnitude stays below this are exact in float32 after
#: division by 32, which the float-map route into ``cv2.convertMaps`` relies on.
_F32_EXACT = float(2**22)


class _Scratch(threading.local):
    """Per-thread reusable float64 buffer pairs for :func:`_rounded_coords`.

    Why: two fresh 0.5 MB arrays per crop cost ~0.35 ms in page faults (glibc serves
    allocations that size with mmap, so the second one is a new, zeroed mapping each
    call), 10× the arithmetic itself. Callers consume the coordinates before the next
    crop on the same thread, so one pair per thread and shape is enough.
    """

    def __init__(self) -> None:
        self.buffers: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def get(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        pair = self.buffers.get(shape)
        if pair is None:
            if len(self.buffers) >= 8:  # a few crop sizes in practice; never grow unbounded
                self.buffers.clear()
            pair = self.buffers[shape] = (np.empty(shape), np.empty(shape))
        return pair


_SCRATCH = _Scratch()


def _rounded_coords(
    m: np.ndarray, out_width: int, out_height: int, scale: float, scratch: bool = False
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Per-pixel source coordinates ×``scale``, rounded half-even like ``cvRound``.

    Returns float64 (H, padded width) arrays (columns past ``out_width`` are padding; with
    ``scratch``, this thread's reused buffers, valid until its next such call) and
    whether every value is known to be finite with magnitude < ``_F32_EXACT`` (from a
    bound on small arrays; ``False`` only means "not proven").

    Same operations in the same order as OpenCV (so the same double roundings). OpenCV
    evaluates ``(M0·xb + M1·y) + M2`` per row and column *block* (``xb`` = the block's
    first column) and then adds ``M0·(x − xb)``; we do the same: the per-block part on a
    small (H, blocks) array, the sum in one broadcast pass over an (H, blocks, block width)
    view. Fewer full-size passes and temporaries than a per-pixel evaluation (this runs
    between two model invocations, with cold caches).
    """
    bh0 = min(_BLOCK // 2, out_height)
    bw0 = min(_BLOCK * _BLOCK // bh0, out_width)
    n_blocks = -(-out_width // bw0)
    padded = n_blocks * bw0
    xb = np.arange(n_blocks, dtype=np.float64) * bw0  # block starts
    x1 = np.arange(bw0, dtype=np.float64)  # column offset inside a block
    y = np.arange(out_height, dtype=np.float64)[:, None]
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = (float(v) for v in m.ravel())

    def block_base(a: float, b: float, c: float) -> np.ndarray:
        base = np.add(a * xb, b * y)  # (H, blocks): M0·xb + M1·y
        base += c  # ... + M2
        return base

    def coord(base: np.ndarray, a: float, out: np.ndarray | None = None) -> np.ndarray:
        step = (a * x1)[None, None, :]
        if out is None:
            return np.add(base[:, :, None], step).reshape(out_height, padded)
        np.add(base[:, :, None], step, out=out.reshape(out_height, n_blocks, bw0))
        return out  # ... + M0·(x − xb)

    bx, by, bw = block_base(m00, m01, m02), block_base(m10, m11, m12), block_base(m20, m21, m22)
    # A crop matrix's perspective row is (~1e-19, ~1e-27, ~1): adding M6·(x − xb) to a
    # block's W then rounds back to that W, so W is exactly constant along each block row.
    # Proof obligation: |M6·(x − xb)| < spacing(|W|)/4 rounds away whatever the binade; the
    # products are bounded by |M6|·(bw0 − 1) (rounding is monotone). NaN fails the test.
    w_step = abs(m20) * (bw0 - 1)
    w_block_min = float(np.abs(bw).min())
    w_per_block = w_step < float(np.spacing(w_block_min)) / 4
    w = bw if w_per_block else coord(bw, m20)
    if w.all():
        np.divide(scale, w, out=w)
    else:  # W == 0 → OpenCV uses 0 for that pixel's X and Y
        zero = w == 0
        with np.errstate(divide="ignore"):
            np.divide(scale, w, out=w)
        w[zero] = 0.0
    if scratch:
        fx, fy = _SCRATCH.get((out_height, padded))
        coord(bx, m00, fx)
        coord(by, m10, fy)
    else:
        fx, fy = coord(bx, m00), coord(by, m10)
    if w_per_block:
        for v in (fx, fy):
            blocks = v.reshape(out_height, n_blocks, bw0)  # a view
            blocks *= w[:, :, None]
    else:
        fx *= w
        fy *= w
    # Bound from the small arrays: every |W| ≥ min|W_block| − |M6|·(bw0 − 1) = w_lo, so
    # |X·scale/W| ≤ (max|X_block| + |M0|·(bw0 − 1))·scale/w_lo (1.001: rounding slack).
    # Finite and small proves the same of every pixel; NaN or inf fails the comparisons.
    w_lo = w_block_min - w_step
    bounded = w_lo > 0 and all(
        (float(np.abs(b).max()) + abs(a) * (bw0 - 1)) * (abs(scale) / w_lo) * 1.001 + 1.0
        < _F32_EXACT
        for b, a in ((bx, m00), (by, m10))
    )
    np.rint(fx, out=fx)
    np.rint(fy, out=fy)
    return fx, fy, bounded


def _source_coords(
    m: np.ndarray, out_width: int, out_height: int, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel source coordinates ×``scale``, rounded like ``cvRound`` (int32, HxW)."""
    return _as_int32(*_rounded_coords(m, out_width, out_height, scale), out_width)


def _as_int32(
    fx: np.ndarray, fy: np.ndarray, bounded: bool, out_width: int
) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for v in (fx, fy):
        if not bounded and not (v.min() >= -2147483648.0 and v.max() <= 2147483647.0):
            # Also catches NaN: cvRound saturates, NaN reads as 0 here.
            np.clip(np.nan_to_num(v, nan=0.0), -2147483648.0, 2147483647.0, out=v)
        out.append(v[:, :out_width].astype(np.int32))
    return out[0], out[1]


def _saturate_int16(v: np.ndarray) -> np.ndarray:
    if v.size and (v.min() < -32768 or v.max() > 32767):
        v = np.clip(v, -32768, 32767)
    return v


def _remap_numpy(
    image: np.ndarray, fx: np.ndarray, fy: np.ndarray, border: BorderMode
) -> np.ndarray:
    """Fixed-point bilinear remap (OpenCV's ``remapBilinear`` for uint8), pure numpy."""
    h, w, c = image.shape
    flat = image.reshape(h * w, c)
    # saturate_cast<short>(X >> INTER_BITS); the fraction comes from the unsaturated X.
    x0 = _saturate_int16(fx >> _INTER_BITS).ravel().astype(np.int64)
    y0 = _saturate_int16(fy >> _INTER_BITS).ravel().astype(np.int64)
    wts = _TAB[((fy & (_INTER_TAB - 1)) * _INTER_TAB + (fx & (_INTER_TAB - 1))).ravel()]
    xs = np.stack([x0, x0 + 1])
    ys = np.stack([y0, y0 + 1])
    xc = np.clip(xs, 0, w - 1)
    yc = np.clip(ys, 0, h - 1)
    acc = np.full((x0.size, c), 16384, np.int32)
    for k, (j, i) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        v = flat[yc[j] * w + xc[i]].astype(np.int32)
        if border == "zero":
            outside = (xs[i] != xc[i]) | (ys[j] != yc[j])
            v[outside] = 0
        acc += v * wts[:, k : k + 1]
    return (acc >> 15).astype(np.uint8).reshape(*fx.shape, c)


def _remap_opencv(
    image: np.ndarray, fx: np.ndarray, fy: np.ndarray, border: BorderMode
) -> np.ndarray:
    """The same remap through ``cv2.remap`` with OpenCV's own fixed-point map format.

    Given integer (CV_16SC2) + table-index (CV_16UC1) maps, ``cv2.remap`` still runs the
    integer bilinear kernel in every OpenCV version we know of (unlike ``warpPerspective``,
    whose coordinate maths changed). :func:`_opencv_remap_is_exact` checks that once.
    """
    map1 = np.empty((*fx.shape, 2), np.int16)
    map1[..., 0] = _saturate_int16(fx >> _INTER_BITS)
    map1[..., 1] = _saturate_int16(fy >> _INTER_BITS)
    frac = fy & (_INTER_TAB - 1)
    frac <<= _INTER_BITS
    frac |= fx & (_INTER_TAB - 1)
    map2 = frac.astype(np.uint16)
    mode = cv2.BORDER_REPLICATE if border == "replicate" else cv2.BORDER_CONSTANT
    out = cv2.remap(image, map1, map2, cv2.INTER_LINEAR, borderMode=mode, borderValue=0)
    return out.reshape(*fx.shape, image.shape[2])


@dataclass(frozen=True, slots=True)
class _FixedMaps:
    """OpenCV fixed-point remap maps for one output, relative to a source window."""

    window: tuple[int, int, int, int] | None  # x0, y0, x1, y1 (inclusive); None = all
    map1: np.ndarray  # int16 (H, W, 2): integer source x, y
    map2: np.ndarray  # uint16 (H, W): 32·fy + fx table index


def _fixed_maps(
    image_hw: tuple[int, int], fx: np.ndarray, fy: np.ndarray, window: bool = True
) -> _FixedMaps:
    """The maps :func:`_remap_opencv` builds from the integers, from rounded float64
    coordinates in 1/32 px (HxW) whose magnitudes are below ``_F32_EXACT``.

    ``cv2.convertMaps`` turns float maps into the fixed-point pair with ``cvRound(v·32)``;
    fed with ``v = X/32`` (exact in float32 for these magnitudes) it returns exactly those
    maps, in one C pass instead of about ten numpy passes. :func:`_opencv_maps_are_exact`
    checks that once. ``window``: read through :func:`_source_window` (only valid for the
    samples of a projective map, which ``fx``, ``fy`` are in :func:`warp_perspective_u8`).
    """
    area = _source_window(image_hw, fx, fy) if window else None
    x0, y0 = (0, 0) if area is None else area[:2]
    maps = []
    for v, origin in ((fx, x0), (fy, y0)):
        m32 = np.empty(v.shape, np.float32)
        np.multiply(v, 1.0 / _INTER_TAB, out=m32, casting="same_kind")
        if origin:
            m32 -= origin  # exact: |v/32| < 2^17 with 5 fraction bits
        maps.append(m32)
    map1, map2 = cv2.convertMaps(maps[0], maps[1], cv2.CV_16SC2)
    return _FixedMaps(area, map1, map2)


def _remap_fixed(image: np.ndarray, maps: _FixedMaps, border: BorderMode) -> np.ndarray:
    """``cv2.remap`` through :class:`_FixedMaps` (copying the window first, see
    :func:`_source_window`)."""
    if maps.window is not None:
        x0, y0, x1, y1 = maps.window
        image = np.ascontiguousarray(image[y0 : y1 + 1, x0 : x1 + 1])
    mode = cv2.BORDER_REPLICATE if border == "replicate" else cv2.BORDER_CONSTANT
    out = cv2.remap(image, maps.map1, maps.map2, cv2.INTER_LINEAR, borderMode=mode, borderValue=0)
    return out.reshape(*maps.map2.shape, image.shape[2])


def _remap_opencv_rounded(
    image: np.ndarray, fx: np.ndarray, fy: np.ndarray, border: BorderMode
) -> np.ndarray:
    """:func:`_remap_opencv` from rounded float64 coordinates (see :func:`_fixed_maps`)."""
    return _remap_fixed(image, _fixed_maps(image.shape[:2], fx, fy), border)


def _source_window(
    image_hw: tuple[int, int], fx: np.ndarray, fy: np.ndarray
) -> tuple[int, int, int, int] | None:
    """The part (x0, y0, x1, y1, inclusive) of an image that the remap can read, to be
    copied before the remap; ``None`` when that part is more than 3/4 of the image.

    Why: a rotated crop walks the source diagonally, and on a frame that is not in cache
    (a new video frame, or after a model run) every source cache line is a separate
    memory round trip: 192×192 from a cold 640×480 frame takes ~0.4 ms in ``cv2.remap``
    against ~0.15 ms hot. Copying the window row by row first streams it in (~0.05 ms);
    still a gain for a face filling 2/3 of the frame (0.62 vs 0.69-1.0 ms per crop).

    Same result: the sampled points of a projective map without a pole (which the caller's
    bound guarantees) lie in the convex hull of the four corner samples, up to the 1/64-px
    rounding; with a 2-px margin the window holds every tap inside the image, so clamping
    (REPLICATE) or blanking (CONSTANT) at the window's edges is the same as at the image's:
    the window only ends before the image where no tap goes. Integer origins keep every
    1/32-px fraction. Images wider or taller than int16 (where map saturation would read
    a pixel) are not windowed.
    """
    if max(image_hw) > 32767:
        return None
    corners = [(0, 0), (0, -1), (-1, 0), (-1, -1)]
    xs = [float(fx[i, j]) / _INTER_TAB for i, j in corners]
    ys = [float(fy[i, j]) / _INTER_TAB for i, j in corners]
    return _window_around(image_hw, xs, ys)


def _window_around(
    image_hw: tuple[int, int], xs: Sequence[float], ys: Sequence[float]
) -> tuple[int, int, int, int] | None:
    """The part (x0, y0, x1, y1, inclusive) of an image holding every bilinear tap of
    samples inside the corner samples ``xs``, ``ys`` (pixels) with a 2-px margin, clamped
    to the image; ``None`` when that part is more than 3/4 of the image (copying it first
    would not pay)."""
    h, w = image_hw
    x0 = min(max(math.floor(min(xs)) - 2, 0), w - 1)
    x1 = min(max(math.floor(max(xs)) + 3, 0), w - 1)
    y0 = min(max(math.floor(min(ys)) - 2, 0), h - 1)
    y1 = min(max(math.floor(max(ys)) + 3, 0), h - 1)
    if 4 * (x1 - x0 + 1) * (y1 - y0 + 1) > 3 * h * w:
        return None
    return x0, y0, x1, y1


_OPENCV_REMAP_EXACT: bool | None = None
_OPENCV_MAPS_EXACT: bool | None = None


def _self_check_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(12345)
    img = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    # Coordinates in 1/32 px spanning well beyond the image on every side.
    fx = rng.integers(-20 * 32, 75 * 32, (41, 43), dtype=np.int64)
    fy = rng.integers(-20 * 32, 60 * 32, (41, 43), dtype=np.int64)
    return img, fx, fy


def _opencv_remap_is_exact() -> bool:
    """Whether this cv2's fixed-point ``remap`` equals :func:`_remap_numpy` (checked once)."""
    global _OPENCV_REMAP_EXACT
    if _OPENCV_REMAP_EXACT is None:
        try:
            img, fx, fy = _self_check_data()
            _OPENCV_REMAP_EXACT = all(
                np.array_equal(_remap_opencv(img, fx, fy, b), _remap_numpy(img, fx, fy, b))
                for b in ("replicate", "zero")
            )
        except Exception:  # a cv2 that rejects the maps: use numpy
            _OPENCV_REMAP_EXACT = False
    return _OPENCV_REMAP_EXACT


def _opencv_maps_are_exact() -> bool:
    """Whether :func:`_remap_opencv_rounded` equals :func:`_remap_numpy` (checked once; the
    maps themselves are compared too, including coordinates near ``_F32_EXACT``)."""
    global _OPENCV_MAPS_EXACT
    if _OPENCV_MAPS_EXACT is None:
        try:
            img, fx, fy = _self_check_data()
            # Random coordinates are no projective map: no source window here.
            maps = _fixed_maps(img.shape[:2], fx.astype(np.float64), fy.astype(np.float64), False)
            ok = _opencv_remap_is_exact() and all(
                np.array_equal(_remap_fixed(img, maps, b), _remap_numpy(img, fx, fy, b))
                for b in ("replicate", "zero")
            )
            big = np.array([[-_F32_EXACT + 1, -5.0, -1.0, 0.0, 31.0, 33.0, _F32_EXACT - 1]])
            m1, m2 = cv2.convertMaps(
                (big / _INTER_TAB).astype(np.float32),
                (big[:, ::-1] / _INTER_TAB).astype(np.float32),
                cv2.CV_16SC2,
            )
            ix, iy = big.astype(np.int64), big[:, ::-1].astype(np.int64)
            want1 = _saturate_int16(np.stack([ix >> _INTER_BITS, iy >> _INTER_BITS], axis=-1))
            want2 = (iy & (_INTER_TAB - 1)) * _INTER_TAB + (ix & (_INTER_TAB - 1))
            _OPENCV_MAPS_EXACT = bool(
                ok and np.array_equal(m1, want1) and np.array_equal(m2, want2)
            )
        except Exception:  # a cv2 without convertMaps: use the integer maps
            _OPENCV_MAPS_EXACT = False
    return _OPENCV_MAPS_EXACT


def warp_perspective_u8(
    image: np.ndarray,
    dst_to_src: np.ndarray,
    out_width: int,
    out_height: int,
    border: BorderMode = "replicate",
    interpolation: Literal["linear", "nearest"] = "linear",
    backend: Literal["auto", "numpy", "opencv"] = "auto",
) -> np.ndarray:
    """OpenCV 3.4 ``warpPerspective(..., WARP_INVERSE_MAP)`` on a uint8 HxWxC image.

    ``dst_to_src`` maps destination pixel centres to source pixel centres (OpenCV's
    convention: integer coordinates are pixel centres). ``border`` is ``"replicate"`` or
    ``"zero"`` (constant 0). Returns uint8 (out_height, out_width, C).

    The source coordinates are always computed here in numpy (the part that changed in
    OpenCV 4.11); the integer interpolation runs in ``cv2.remap`` when ``backend="auto"``
    and a one-time self-check shows it is bit-identical to the numpy kernel (it is ~3×
    faster), else in numpy.
    """
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"image must be HxWxC uint8, got {image.dtype} {image.shape}")
    if out_width <= 0 or out_height <= 0:
        raise ValueError(f"output size must be > 0, got {out_width}x{out_height}")
    if border not in ("replicate", "zero"):
        raise ValueError(f"border must be 'replicate' or 'zero', got {border!r}")
    h, w, c = image.shape
    if interpolation == "nearest":
        sx, sy = _source_coords(dst_to_src, out_width, out_height, 1.0)
        sx = _saturate_int16(sx).astype(np.int64)
        sy = _saturate_int16(sy).astype(np.int64)
        inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
        idx = np.clip(sy, 0, h - 1) * w + np.clip(sx, 0, w - 1)
        out: np.ndarray = image.reshape(h * w, c)[idx.ravel()].reshape(out_height, out_width, c)
        if border == "zero":
            out[~inside] = 0
        return out
    if interpolation != "linear":
        raise ValueError(f"interpolation must be 'linear' or 'nearest', got {interpolation!r}")
    use_cv = backend == "opencv" or (backend == "auto" and _opencv_remap_is_exact())
    use_cv = use_cv and image.flags.c_contiguous
    # Scratch buffers: every branch below consumes rx, ry before returning.
    rx, ry, bounded = _rounded_coords(
        dst_to_src, out_width, out_height, float(_INTER_TAB), scratch=True
    )
    if use_cv and bounded and (backend == "opencv" or _opencv_maps_are_exact()):
        return _remap_opencv_rounded(image, rx[:, :out_width], ry[:, :out_width], border)
    fx, fy = _as_int32(rx, ry, bounded, out_width)
    if use_cv:
        return _remap_opencv(image, fx, fy, border)
    return _remap_numpy(np.ascontiguousarray(image), fx, fy, border)


def value_range_lut(range_min: float, range_max: float) -> np.ndarray:
    """uint8 → float32 table of MediaPipe's ``convertTo(scale, offset)`` (float32 maths)."""
    scale, offset = value_range_transform((range_min, range_max))
    return np.arange(256, dtype=np.float32) * scale + offset


def rotated_subrect_to_rect_matrix(
    roi: RotatedRect, image_width: int, image_height: int, flip_horizontally: bool = False
) -> np.ndarray:
    """float32 4×4 mapping tensor-normalised (u, v, z) to image-normalised coordinates.

    MediaPipe's ``GetRotatedSubRectToRectTransformMatrix`` (docs/face_pipeline.md §3.5), float32
    throughout."""
    a, b = _F32(roi.width), _F32(roi.height)
    flip = _F32(-1.0 if flip_horizontally else 1.0)
    c = _F32(math.cos(float(_F32(roi.rotation))))
    d = _F32(math.sin(float(_F32(roi.rotation))))
    e, f = _F32(roi.center_x), _F32(roi.center_y)
    g = _F32(1.0) / _F32(image_width)
    h = _F32(1.0) / _F32(image_height)
    half = _F32(0.5)
    m = np.zeros((4, 4), np.float32)
    m[0, 0] = a * c * flip * g
    m[0, 1] = -b * d * g
    m[0, 3] = (-half * a * c * flip + half * b * d + e) * g
    m[1, 0] = a * d * flip * h
    m[1, 1] = b * c * h
    m[1, 3] = (-half * b * c - half * a * d * flip + f) * h
    m[2, 2] = a * g
    m[3, 3] = 1.0
    return m


def image_to_tensor(
    image: np.ndarray,
    rect: NormalizedRect | None,
    out_width: int,
    out_height: int,
    value_range: tuple[float, float] | None = (0.0, 1.0),
    border: BorderMode = "replicate",
    keep_aspect: bool = False,
    warp: WarpMode = "exact",
) -> CropResult:
    """Crop ``rect`` (or the whole image) of an RGB uint8 image into a model input tensor.

    ``value_range``: the float32 values of pixels 0 and 255; ``None`` keeps the uint8
    pixels (for a model loaded with ``uint8_input``, which maps them itself).

    Matches MediaPipe's CPU ``ImageToTensorCalculator``: the landmark model uses
    ``(192, 192, (0, 1), "replicate", keep_aspect=False)``, the short-range detector
    ``(128, 128, (-1, 1), "zero", keep_aspect=True)``.

    ``warp``: ``"exact"`` (default) is the bit-exact OpenCV 3.4 emulation; ``"fast"`` runs
    this cv2's own ``warpAffine`` on the same geometry (same ROI, padding and matrix; the
    pixels differ by rounding, see the module docstring), 2-3.5× faster for face crops.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be an HxWx3 uint8 RGB array, got {image.dtype} {image.shape}")
    if warp not in ("exact", "fast"):
        raise ValueError(f"warp must be 'exact' or 'fast', got {warp!r}")
    if border not in ("replicate", "zero"):
        raise ValueError(f"border must be 'replicate' or 'zero', got {border!r}")
    ih, iw = image.shape[:2]
    if warp == "fast":
        return _image_to_tensor_fast(
            image, rect, out_width, out_height, value_range, border, keep_aspect
        )
    if rect is None and ih and iw:
        # The whole image (the detectors' input): everything but the pixels depends only
        # on the sizes, so the plan, maps included, is made once per size.
        plan = _whole_image_plan(iw, ih, out_width, out_height, keep_aspect)
        roi, padding = plan.roi, plan.padding
        if plan.subsample is not None and border == "zero" and image.flags.c_contiguous:
            warped = _subsample(image, plan.subsample, out_width, out_height)
        elif plan.maps is not None and image.flags.c_contiguous:
            warped = _remap_fixed(image, plan.maps, border)
        else:
            warped = warp_perspective_u8(image, plan.dst_to_src, out_width, out_height, border)
        return CropResult(_as_tensor(warped, value_range), roi, padding, (iw, ih), plan.matrix)
    roi, padding = _padded_roi(rect, iw, ih, out_width, out_height, keep_aspect)
    warped = warp_perspective_u8(
        image, crop_matrix(roi, out_width, out_height), out_width, out_height, border
    )
    return CropResult(_as_tensor(warped, value_range), roi, padding, (iw, ih))


def _as_tensor(warped: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
    """The warped uint8 HxWxC crop (fresh from the warp) as a (1, H, W, C) tensor:
    uint8 as it is for ``value_range=None``; else float32, multiply then add, like
    OpenCV's convertTo(CV_32F, scale, offset)."""
    if value_range is None:
        return warped[None]
    scale, offset = value_range_transform(value_range)
    # One pass for the cast and the multiply (uint8 → float32 is exact, so the product
    # has the same bits); adding a zero offset would change no bit (products are >= +0).
    tensor: np.ndarray = np.multiply(warped[None], scale, dtype=np.float32)
    if offset:
        tensor += offset
    return tensor


@dataclass(frozen=True, slots=True)
class _WholeImagePlan:
    roi: RotatedRect
    padding: tuple[float, float, float, float]
    dst_to_src: np.ndarray
    matrix: np.ndarray  # rotated_subrect_to_rect_matrix
    maps: _FixedMaps | None  # None: not the float-map route (warp_perspective_u8 decides)
    subsample: _Subsample | None  # the maps as a strided copy (zero border), if they are one


@dataclass(frozen=True, slots=True)
class _Subsample:
    """A whole-image map that samples whole pixels at a fixed integer step, with every
    bilinear fraction zero (the detectors' letterbox of 640×480, 1280×720 or 1920×1080
    onto 128×128: steps 5, 10, 15).

    Bilinear interpolation with a zero fraction is the pixel itself (OpenCV's fixed-point
    ``(v·32768 + 16384) >> 15 = v``), and with a zero (CONSTANT) border a sample outside
    the image is 0 whatever its neighbour, so the remap is exactly a strided copy of the
    in-image samples into a zero tensor: one numpy copy instead of a gather through the
    maps (~25 against ~57 µs warm; it reads the same rows).
    """

    dst_rows: slice
    src_rows: slice
    dst_cols: slice
    src_cols: slice


def _subsample_of(maps: _FixedMaps, image_hw: tuple[int, int]) -> _Subsample | None:
    """:class:`_Subsample` equal to ``maps`` over the whole image, or None when they are
    not one (a fraction, a window, a row or column that varies, a step below 1)."""
    if maps.window is not None or maps.map2.any():
        return None
    xs = maps.map1[..., 0].astype(np.int64)
    ys = maps.map1[..., 1].astype(np.int64)
    if not ((xs == xs[:1]).all() and (ys == ys[:, :1]).all()):
        return None
    rows = _step_slices(ys[:, 0], image_hw[0])
    cols = _step_slices(xs[0], image_hw[1])
    if rows is None or cols is None:
        return None
    return _Subsample(rows[0], rows[1], cols[0], cols[1])


def _step_slices(src: np.ndarray, n: int) -> tuple[slice, slice] | None:
    """For source indices ``src`` (one per destination index) in an arithmetic
    progression with an integer step >= 1: the destination and source slices of the part
    inside ``[0, n)`` (contiguous, the progression being increasing); else None."""
    if src.size < 2:
        return None
    step = int(src[1] - src[0])
    if step < 1 or not np.array_equal(src, src[0] + step * np.arange(src.size)):
        return None
    inside = np.flatnonzero((src >= 0) & (src < n))
    if inside.size == 0:
        return None
    d0, d1 = int(inside[0]), int(inside[-1]) + 1
    return slice(d0, d1), slice(int(src[d0]), int(src[d1 - 1]) + 1, step)


def _subsample(image: np.ndarray, plan: _Subsample, out_width: int, out_height: int) -> np.ndarray:
    """:class:`_Subsample`'s strided copy of a C-contiguous HxWxC uint8 image."""
    c = image.shape[2]
    out = np.zeros((out_height, out_width, c), np.uint8)
    # Whole pixels as single C-byte items: numpy then copies one item per sample instead
    # of looping over the channels (about twice as fast).
    pixel = np.dtype((np.void, c))
    dst = out.view(pixel)[..., 0]
    src = image.view(pixel)[..., 0]
    dst[plan.dst_rows, plan.dst_cols] = src[plan.src_rows, plan.src_cols]
    return out


_WHOLE_IMAGE_PLANS: dict[tuple[int, int, int, int, bool], _WholeImagePlan] = {}


def _whole_image_plan(
    iw: int, ih: int, out_width: int, out_height: int, keep_aspect: bool
) -> _WholeImagePlan:
    key = (iw, ih, out_width, out_height, keep_aspect)
    plan = _WHOLE_IMAGE_PLANS.get(key)
    if plan is None:
        roi, padding = pad_roi(roi_in_pixels(None, iw, ih), out_width, out_height, keep_aspect)
        m = crop_matrix(roi, out_width, out_height)
        maps = None
        if _opencv_remap_is_exact() and _opencv_maps_are_exact():
            rx, ry, bounded = _rounded_coords(m, out_width, out_height, float(_INTER_TAB))
            if bounded:
                maps = _fixed_maps((ih, iw), rx[:, :out_width], ry[:, :out_width])
                maps.map1.flags.writeable = maps.map2.flags.writeable = False  # shared
        subsample = None if maps is None else _subsample_of(maps, (ih, iw))
        matrix = rotated_subrect_to_rect_matrix(roi, iw, ih)
        plan = _WholeImagePlan(roi, padding, m, matrix, maps, subsample)
        if len(_WHOLE_IMAGE_PLANS) >= 16:  # a few sizes in practice; never grow unbounded
            _WHOLE_IMAGE_PLANS.clear()
        _WHOLE_IMAGE_PLANS[key] = plan
    return plan


# --- fast mode: this cv2's warpAffine ----------------------------------------------------


def _image_to_tensor_fast(
    image: np.ndarray,
    rect: NormalizedRect | None,
    out_width: int,
    out_height: int,
    value_range: tuple[float, float] | None,
    border: BorderMode,
    keep_aspect: bool,
) -> CropResult:
    """``image_to_tensor(..., warp="fast")``: the same ROI, padding, matrix and value
    transform; the pixels from ``cv2.warpAffine`` (module docstring, "Fast mode")."""
    ih, iw = image.shape[:2]
    roi, padding = _padded_roi(rect, iw, ih, out_width, out_height, keep_aspect)
    affine = _affine_map(roi, out_width, out_height)
    # Warp the part of the frame the warp reads (a view; integer shift), read in address
    # order first (streams a cold frame in, see _touch).
    area = _affine_source_window((ih, iw), affine, out_width, out_height)
    if area is not None:
        x0, y0, x1, y1 = area
        src = image[y0 : y1 + 1, x0 : x1 + 1]
        affine[0, 2] -= x0
        affine[1, 2] -= y0
    else:
        src = np.ascontiguousarray(image)
    if max(src.shape[:2]) > _INT16_MAX:
        # OpenCV 4's warpAffine saturates source coordinates to int16 (wrong pixels, no
        # error): leave such sources to the exact mode (which says when it cannot).
        return image_to_tensor(
            image, rect, out_width, out_height, value_range, border, keep_aspect, "exact"
        )
    _touch(src)
    mode = cv2.BORDER_REPLICATE if border == "replicate" else cv2.BORDER_CONSTANT
    # One OpenCV thread: OpenCV 5 splits even this small warp across its pool, whose
    # workers then spin ~0.5 ms per call on the cores the models need (opencv_threads).
    with serial_opencv():
        warped = cv2.warpAffine(
            src,
            affine,
            (out_width, out_height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=mode,
            borderValue=(0, 0, 0, 0),
        )
    return CropResult(_as_tensor(warped, value_range), roi, padding, (iw, ih))


_INT16_MAX = 32767


def _touch(image: np.ndarray) -> None:
    """Read one byte of every 64 of each row of an image, or of a window of one (a view
    whose rows are contiguous), in address order, so that a warp reading most of it
    finds it in cache.

    Why: a rotated crop walks the frame diagonally and misses on nearly every source
    line (on a 640×480 frame after the detector's invoke, 192×192 ``warpAffine`` takes
    ~0.31 ms against ~0.10 ms on a cached frame); lines read in address order stream in
    at the memory's bandwidth instead (~0.05 ms). Reading beats copying the window
    first, which costs the writes too: the fast crop of the face window (460×440 of a
    640×480 frame) 160-169 → 156-157 µs per crop with the frame in the last-level
    cache, 566-583 → 465-496 µs from memory (touched view against copied window, two
    runs, same bits). Same pixels: it only reads.
    """
    if image.size:
        image.reshape(image.shape[0], -1)[:, ::64].max()


def _affine_map(roi: RotatedRect, out_width: int, out_height: int) -> np.ndarray:
    """Destination pixel → source pixel 2×3 (float64) map of the fast warp, in closed form.

    The same geometry as :func:`crop_matrix` (output (0, 0) at the rect's corner 1 of
    :func:`box_points`, x along its width, y along its height), which for a rotated rect
    onto an axis-aligned one is affine. Plain float maths instead of OpenCV's perspective
    solve: ~1 µs instead of ~20 (and ~150 µs on a frame that starts with cold caches,
    as at a camera's pace); the last bits differ, which the fast warp's own rounding
    (module docstring) already far exceeds.
    """
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    w, h = roi.width, roi.height
    sx, sy = w / out_width, h / out_height
    x0 = roi.center_x + 0.5 * (h * s - w * c)
    y0 = roi.center_y - 0.5 * (h * c + w * s)
    return np.array([[sx * c, -sy * s, x0], [sx * s, sy * c, y0]])


def _affine_source_window(
    image_hw: tuple[int, int], affine: np.ndarray, out_width: int, out_height: int
) -> tuple[int, int, int, int] | None:
    """:func:`_source_window` for an affine destination → source map (in pixels): the part
    of the image (x0, y0, x1, y1, inclusive) that the warp can read, ``None`` when that is
    more than 3/4 of the image (or the map is not finite).

    Every sample is an affine image of a destination pixel centre, so it lies in the
    parallelogram of the four corner samples; bilinear taps are ``floor(s)`` and
    ``floor(s) + 1``, and a 2-px margin on each side covers them and any float rounding of
    the sample positions. So the window holds every tap that is inside the image, and
    REPLICATE / CONSTANT at its edges is the same as at the image's.
    """
    (a, b, c), (d, e, f) = affine.tolist()
    u, v = out_width - 1.0, out_height - 1.0
    xs = (c, a * u + c, b * v + c, a * u + b * v + c)
    ys = (f, d * u + f, e * v + f, d * u + e * v + f)
    for t in xs + ys:  # a loop, not all(<generator>): this runs for every face crop
        if not abs(t) < 1e9:  # also NaN
            return None
    return _window_around(image_hw, xs, ys)


def _padded_roi(
    rect: NormalizedRect | None,
    iw: int,
    ih: int,
    out_width: int,
    out_height: int,
    keep_aspect: bool,
) -> tuple[RotatedRect, tuple[float, float, float, float]]:
    """The ROI in pixels, checked, then letterboxed (:func:`pad_roi`): a clear error for
    an empty, NaN or infinite ROI (not an OpenCV or math error from deep inside)."""
    roi = roi_in_pixels(rect, iw, ih)
    isnan = math.isnan
    if not (roi.width > 0 and roi.height > 0) or (
        isnan(roi.center_x) or isnan(roi.center_y) or isnan(roi.rotation)
    ):
        raise ValueError(f"cannot crop an empty or NaN ROI: {rect}")
    padded, padding = pad_roi(roi, out_width, out_height, keep_aspect)
    # Checked after the padding (float32: a huge ROI can overflow there), for both warps.
    isfinite = math.isfinite
    if not (
        isfinite(padded.center_x)
        and isfinite(padded.center_y)
        and isfinite(padded.width)
        and isfinite(padded.height)
        and isfinite(padded.rotation)
    ):
        raise ValueError(f"cannot crop a non-finite ROI: {rect}")
    return padded, padding
