"""Deterministic synthetic "moving face" videos made from still photos (numpy only).

Used to produce MediaPipe reference fixtures (``scripts/reference_face_mesh.py``, run in a
separate venv) and to regenerate the *same* frames in tests and benchmarks without storing
video files. Every frame must be bit-identical on every machine, so the warp is pure integer
arithmetic:

- the per-frame affine matrix is computed in float64 and then quantised to multiples of
  2**-16 (so a last-ulp difference in ``sin``/``cos`` between platforms cannot change it,
  short of a rounding tie);
- source coordinates are then exact integers in 1/65536 px, taps are chosen with shifts and
  bilinear weights are 8-bit, summing to 65536, rounded with ``(s + 32768) >> 16``;
- a destination pixel whose 2x2 source neighbourhood is not fully inside the photo shows
  the background.

This module never imports OpenCV or the rest of facegraph so that the reference venv can load
it by file path.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FacePlacement",
    "background",
    "moving_face_video",
    "placements_for_video",
    "render_frame",
]

_FIX = 16  # fractional bits of the quantised matrix / source coordinates


@dataclass(frozen=True, slots=True)
class FacePlacement:
    """Where a photo lands in a frame: its centre pixel, scale and rotation (degrees, CCW)."""

    center_x: float
    center_y: float
    scale: float
    angle_deg: float


def background(width: int, height: int) -> np.ndarray:
    """A smooth, textureless RGB background (uint8, HxWx3) with no face-like structure."""
    y = np.arange(height, dtype=np.int32)[:, None]
    x = np.arange(width, dtype=np.int32)[None, :]
    r = 70 + (x * 60) // max(width, 1) + 0 * y
    g = 90 + (y * 50) // max(height, 1) + 0 * x
    b = 110 + ((x + y) * 40) // max(width + height, 1)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def _inverse_matrix_fixed(
    placement: FacePlacement, photo_w: int, photo_h: int
) -> tuple[np.ndarray, np.ndarray]:
    """Destination pixel -> photo pixel affine map, as int64 coefficients in 1/65536 units."""
    a = math.radians(placement.angle_deg)
    s = placement.scale
    # Forward: dst = c + s * R(-a) (src - photo_centre)  (CCW on screen as y points down).
    # Inverse: src = photo_centre + (1/s) R(a) (dst - c).
    cos_a, sin_a = math.cos(a) / s, math.sin(a) / s
    lin = np.array([[cos_a, sin_a], [-sin_a, cos_a]], dtype=np.float64)
    pc = np.array([(photo_w - 1) / 2.0, (photo_h - 1) / 2.0])
    c = np.array([placement.center_x, placement.center_y])
    off = pc - lin @ c
    scale = float(1 << _FIX)
    return (
        np.round(lin * scale).astype(np.int64),
        np.round(off * scale).astype(np.int64),
    )


def _tap(src: np.ndarray, idx: np.ndarray, offset: int) -> np.ndarray:
    out: np.ndarray = src[idx + offset].astype(np.int32)
    return out


def render_frame(
    photos: Sequence[np.ndarray],
    placements: Sequence[FacePlacement | None],
    width: int = 640,
    height: int = 480,
) -> np.ndarray:
    """Composite ``photos`` (uint8 RGB) at ``placements`` over :func:`background`.

    Later photos are drawn over earlier ones; a ``None`` placement leaves that photo out
    (e.g. a face that has left the scene).
    """
    frame = background(width, height)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.int64)
    for photo, placement in zip(photos, placements, strict=True):
        if placement is None:
            continue
        if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
            raise ValueError(f"photo must be HxWx3 uint8, got {photo.dtype} {photo.shape}")
        ph, pw = photo.shape[:2]
        lin, off = _inverse_matrix_fixed(placement, pw, ph)
        sx = lin[0, 0] * xs + lin[0, 1] * ys + off[0]
        sy = lin[1, 0] * xs + lin[1, 1] * ys + off[1]
        x0 = sx >> _FIX
        y0 = sy >> _FIX
        fx = (sx >> (_FIX - 8)) & 255
        fy = (sy >> (_FIX - 8)) & 255
        inside = (x0 >= 0) & (y0 >= 0) & (x0 < pw - 1) & (y0 < ph - 1)
        if not inside.any():
            continue
        idx = (y0[inside] * pw + x0[inside]).astype(np.intp)
        fx = fx[inside, None].astype(np.int32)
        fy = fy[inside, None].astype(np.int32)
        src = photo.reshape(-1, 3)
        acc = (
            _tap(src, idx, 0) * ((256 - fx) * (256 - fy))
            + _tap(src, idx, 1) * (fx * (256 - fy))
            + _tap(src, idx, pw) * ((256 - fx) * fy)
            + _tap(src, idx, pw + 1) * (fx * fy)
        )
        frame[inside] = ((acc + 32768) >> 16).astype(np.uint8)
    return frame


def placements_for_video(
    kind: str, n_frames: int, width: int = 640, height: int = 480
) -> list[list[FacePlacement | None]]:
    """Per-frame placements (one list entry per photo) for the named motion.

    - ``"moving"``: one face drifting, turning up to +-25 degrees and zooming 0.75-1.05.
    - ``"lost"``: like ``"moving"`` but the face is absent for a third of the clip (the
      middle), so a tracker must lose it and the detector must find it again.
    - ``"two"``: two faces moving independently, side by side; meant for photos cropped
      to about 300x300 (first) and 400x400 (second) around the face.
    """
    out: list[list[FacePlacement | None]] = []
    for i in range(n_frames):
        t = i / max(n_frames - 1, 1)
        if kind in ("moving", "lost"):
            p: FacePlacement | None = FacePlacement(
                center_x=width / 2 + 60 * math.sin(2 * math.pi * t),
                center_y=height / 2 + 60 + 30 * math.sin(4 * math.pi * t),
                scale=0.9 + 0.15 * math.sin(2 * math.pi * t + 1.0),
                angle_deg=25 * math.sin(2 * math.pi * t * 1.5),
            )
            if kind == "lost" and n_frames // 3 <= i < 2 * n_frames // 3:
                p = None
            out.append([p])
        elif kind == "two":
            out.append(
                [
                    FacePlacement(
                        center_x=width * 0.27 + 25 * math.sin(2 * math.pi * t),
                        center_y=height / 2 + 20 * math.cos(2 * math.pi * t),
                        scale=1.0 + 0.05 * math.sin(2 * math.pi * t),
                        angle_deg=15 * math.sin(2 * math.pi * t),
                    ),
                    FacePlacement(
                        center_x=width * 0.73 - 25 * math.sin(2 * math.pi * t),
                        center_y=height / 2 - 20 * math.cos(2 * math.pi * t),
                        scale=0.75 + 0.05 * math.cos(2 * math.pi * t),
                        angle_deg=-12 * math.sin(2 * math.pi * t),
                    ),
                ]
            )
        else:
            raise ValueError(f"unknown synthetic video kind {kind!r}; use moving, lost or two")
    return out


def moving_face_video(
    photos: Sequence[np.ndarray],
    kind: str = "moving",
    n_frames: int = 60,
    width: int = 640,
    height: int = 480,
) -> Iterator[np.ndarray]:
    """Yield the frames (uint8 RGB, ``height x width x 3``) of a synthetic face video."""
    for placements in placements_for_video(kind, n_frames, width, height):
        yield render_frame(photos, placements, width, height)
