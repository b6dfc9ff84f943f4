"""iBUG / 300-W ``.pts`` landmark files and the 68-point ↔ face-mesh correspondence.

File format (as written by the 300-W / iBUG annotation tools)::

    version: 1
    n_points:  68
    {
    32.310345 99.612347
    ...
    }

one ``x y`` line per point, in pixels. **Pixel origin**: 300-W counts pixels from 1 (the
centre of the top-left pixel is (1, 1), Matlab style). :func:`read_pts` subtracts 1 by
default so that the returned coordinates put the centre of the top-left pixel at (0, 0) —
the convention OpenCV uses and the one our landmarks effectively have (MediaPipe's crop and
projection go through OpenCV's warp, where pixel centres are integers; a landmark at
``x * width`` px compares directly). Pass ``origin=0`` for files that already count from 0.

The 68 → mesh correspondence (:data:`IBUG68_TO_MESH`) is the widely used one published by
Peizhi Yan (github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks, also used by flame-head-tracker):
each iBUG point maps to one mesh point or to the midpoint of two. It is a *semantic*
correspondence: iBUG's jaw points are spaced evenly along the jaw line by the annotator, so
no fixed mesh vertex sits exactly on them, and those points carry a few pixels of
definitional error. Verified on ``takeo.ppm`` + ``takeo.pts`` (150×225, human annotation)
against MediaPipe 0.10.14's 478 landmarks (static mode, refine on): see
:data:`TAKEO_RESIDUALS_PX` (NME 4.01 % over the 68 points).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "IBUG68_OUTER_EYE_CORNERS",
    "IBUG68_REGIONS",
    "IBUG68_TO_MESH",
    "TAKEO_RESIDUALS_PX",
    "PtsError",
    "PtsFile",
    "mesh_to_ibug68",
    "read_pts",
    "write_pts",
]


class PtsError(ValueError):
    """A malformed ``.pts`` file; the message names the file and line."""


# iBUG point k (0-based here; 1-based in the comments) → mesh indices averaged.
IBUG68_TO_MESH: tuple[tuple[int, ...], ...] = (
    # jaw 1-17
    (127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,),
    (400,), (379,), (365,), (397, 288), (361,), (323,), (454,), (356,),
    # right brow 18-22 (subject's right = image left)
    (70,), (63,), (105,), (66,), (107,),
    # left brow 23-27
    (336,), (296,), (334,), (293,), (300,),
    # nose bridge 28-31, nostrils 32-36
    (168, 6), (197, 195), (5,), (4,), (75,), (97,), (2,), (326,), (305,),
    # right eye 37-42 (37 = outer corner)
    (33,), (160,), (158,), (133,), (153,), (144,),
    # left eye 43-48 (46 = outer corner)
    (362,), (385,), (387,), (263,), (373,), (380,),
    # outer lips 49-60
    (61,), (39,), (37,), (0,), (267,), (269,), (291,), (321,), (314,), (17,), (84,), (91,),
    # inner lips 61-68
    (78,), (82,), (13,), (312,), (308,), (317,), (14,), (87,),
)  # fmt: skip

#: 0-based indices of the outer eye corners (iBUG 37 and 46, 1-based): the 300-W
#: "inter-ocular" normalisation used for the 68-point NME.
IBUG68_OUTER_EYE_CORNERS: tuple[int, int] = (36, 45)

#: 0-based iBUG point ranges per region (named like the mesh regions in the report).
IBUG68_REGIONS: dict[str, tuple[int, ...]] = {
    "face_oval": tuple(range(0, 17)),
    "eyebrows": tuple(range(17, 27)),
    "nose": tuple(range(27, 36)),
    "eyes": tuple(range(36, 48)),
    "lips": tuple(range(48, 68)),
}

#: Per-point distance (px) between ``takeo.pts`` (origin-corrected) and the mapped
#: MediaPipe 0.10.14 landmarks on ``takeo.ppm`` (outer-corner IOD 54.5 px; mean 2.19 px =
#: NME 4.01 %). Largest: jaw 3 (7.8), jaw 5 (6.8), jaw 7 (5.7), brow 22 (5.6),
#: nostril 32 (5.0); eyes and lips ≤ 2.8 px. Regenerate with
#: ``tests/test_face_evaluation.py::test_takeo_mapping_residuals``.
TAKEO_RESIDUALS_PX: tuple[float, ...] = (
    2.23, 2.52, 7.80, 4.91, 6.84, 3.68, 5.73, 2.83, 1.21, 0.78, 1.23, 4.72, 4.19, 3.08,
    2.94, 2.27, 2.38, 2.88, 3.32, 3.74, 2.72, 5.60, 4.96, 2.43, 2.63, 2.64, 2.01, 0.87,
    2.30, 1.63, 2.94, 5.02, 2.43, 1.67, 0.77, 1.49, 1.69, 1.21, 1.47, 0.90, 0.92, 0.40,
    2.43, 1.00, 1.09, 1.23, 0.33, 0.22, 1.28, 0.76, 1.02, 0.31, 0.35, 1.19, 0.82, 1.25,
    2.74, 2.56, 2.24, 0.79, 1.16, 1.00, 0.82, 1.22, 1.18, 1.89, 0.91, 0.85,
)  # fmt: skip


def mesh_to_ibug68(points: np.ndarray) -> np.ndarray:
    """(N ≥ 468, D) mesh landmarks → (68, D) iBUG-68 points (pairs averaged)."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] < 468:
        raise ValueError(f"expected (>=468, D) mesh landmarks, got shape {pts.shape}")
    return np.stack([pts[list(ix)].mean(axis=0) for ix in IBUG68_TO_MESH])


@dataclass(frozen=True)
class PtsFile:
    """Points of one ``.pts`` file: (n, 2) float64 pixels, top-left pixel centre at 0."""

    path: Path
    points: np.ndarray
    version: int


def read_pts(path: str | os.PathLike[str], *, origin: float = 1.0) -> PtsFile:
    """Read an iBUG ``.pts`` file; coordinates are shifted by ``-origin`` (see module doc).

    Raises :class:`PtsError` naming the file and line for any malformed content: missing or
    bad header, a point line that is not two finite numbers, a point count different from
    ``n_points``, a missing closing brace or text after it.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PtsError(f"{p}: cannot read .pts file: {exc}") from None
    lines = text.splitlines()

    def fail(lineno: int, msg: str) -> PtsError:
        return PtsError(f"{p}:{lineno}: {msg}")

    header: dict[str, str] = {}
    i = 0
    while i < len(lines) and lines[i].strip() != "{":
        line = lines[i].strip()
        if line:
            key, sep, value = line.partition(":")
            if not sep:
                raise fail(i + 1, f"expected 'key: value' header or '{{', got {line!r}")
            header[key.strip().lower()] = value.strip()
        i += 1
    if i == len(lines):
        raise fail(len(lines), "no '{' line opening the point list")
    try:
        version = int(header.get("version", "1"))
    except ValueError:
        raise fail(1, f"version is not an integer: {header['version']!r}") from None
    if "n_points" not in header:
        raise fail(i + 1, "header has no 'n_points:' line")
    try:
        n_points = int(header["n_points"])
    except ValueError:
        raise fail(i, f"n_points is not an integer: {header['n_points']!r}") from None
    coords: list[tuple[float, float]] = []
    j = i + 1
    closed = False
    while j < len(lines):
        line = lines[j].strip()
        if line == "}":
            closed = True
            break
        if line:
            fields = line.split()
            if len(fields) != 2:
                raise fail(j + 1, f"expected 'x y', got {line!r}")
            try:
                x, y = float(fields[0]), float(fields[1])
            except ValueError:
                raise fail(j + 1, f"not a number in {line!r}") from None
            if not (np.isfinite(x) and np.isfinite(y)):
                raise fail(j + 1, f"non-finite coordinate in {line!r}")
            coords.append((x, y))
        j += 1
    if not closed:
        raise fail(len(lines), "no closing '}'")
    for k in range(j + 1, len(lines)):
        if lines[k].strip():
            raise fail(k + 1, f"unexpected text after '}}': {lines[k].strip()!r}")
    if len(coords) != n_points:
        raise fail(j + 1, f"n_points is {n_points} but {len(coords)} points were listed")
    pts = np.asarray(coords, dtype=np.float64).reshape(-1, 2) - origin
    return PtsFile(p, pts, version)


def write_pts(path: str | os.PathLike[str], points: np.ndarray, *, origin: float = 1.0) -> None:
    """Write (n, 2) points (top-left pixel centre at 0) as a 300-W ``.pts`` file, whole (a
    temporary beside it, moved into place): a failed write raises OSError naming ``path``
    and leaves an earlier file there as it was."""
    from facegraph.atomic_files import write_whole

    pts = np.asarray(points, dtype=np.float64)[:, :2] + origin
    body = "\n".join(f"{x:.6f} {y:.6f}" for x, y in pts)
    write_whole(path, f"version: 1\nn_points: {len(pts)}\n{{\n{body}\n}}\n")
