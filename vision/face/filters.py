"""Landmark smoothing: a One Euro filter scaled by face size, per tracked face.

MediaPipe's face mesh does not smooth; its landmarks jitter by a fraction of a pixel to a
few pixels from frame to frame on a still face (sensor noise changes the crop's pixels).
The One Euro filter (Casiez, Roussel, Vogel, CHI 2012) is a low-pass filter whose cutoff
rises with speed: ``cutoff = min_cutoff + beta * speed``. At rest it averages noise away;
in motion it opens up so the landmarks do not lag.

**Scaled by face size.** ``speed`` is measured in *interocular distances per second* (the
2-D eye-centre distance of the incoming landmarks; the landmarks' box size for point sets
without the mesh's eyes), so the same head motion opens the filter by the same amount whether
the face is near (large in the image) or far. The filtering itself is linear and happens in
pixels.

**One speed per face.** The cutoff is driven by the face's *median* landmark speed rather than
each coordinate's own speed (as MediaPipe's landmark smoothing does): with 468+ points the
median is nearly free of the per-point noise, so noise alone does not open the filter, while
any real motion (translation, rotation, zoom all move most points) does.

**Per face, reset on loss.** :class:`MultiFaceSmoother` keeps one filter per tracked face,
associating incoming faces with tracks by landmark-box IoU (``rect_id`` when the ROI carries
one); a face that does not come back on the next frame loses its state, and a gap in time
longer than ``max_gap_s`` resets everything.

:class:`LandmarksSmoothing` is the graph node (opt-in in the face graphs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from facegraph.vision.face import indices as ix

__all__ = [
    "MultiFaceSmoother",
    "OneEuroFilter",
    "face_scale",
    "landmark_box",
    "match_tracks",
]

#: Defaults tuned with ``benchmarks/bench_smoothing.py`` (30 fps, IOD units): at rest the
#: cutoff is ``min_cutoff`` Hz; a face moving 1 IOD/s adds ``beta`` Hz. Measured after
#: ``face_mesh`` (astronaut photo, pixel noise sigma 4): still-face jitter 0.81 -> 0.18 % IOD
#: per frame (22 %); lag 0.35 / 0.15 / 0.05 frames sliding at 0.5 / 1.5 / 3 IOD/s. A lower
#: beta (10) smooths more (14 %) but lags 0.5 frame at 0.5 IOD/s and trails turns.
DEFAULT_MIN_CUTOFF = 1.0
DEFAULT_BETA = 20.0
DEFAULT_D_CUTOFF = 4.0


def face_scale(points_px: np.ndarray) -> float:
    """Face size in pixels: 2-D interocular distance of mesh points (N ≥ 468; eye centres =
    midpoints of 33–133 and 362–263), else the larger side of the points' box."""
    pts = np.asarray(points_px, dtype=np.float64)
    if len(pts) >= ix.NUM_MESH:
        a = pts[list(ix.LEFT_EYE_CORNERS), :2].mean(axis=0)
        b = pts[list(ix.RIGHT_EYE_CORNERS), :2].mean(axis=0)
        d = float(np.hypot(*(a - b)))
        if d > 0:
            return d
    span = pts[:, :2].max(axis=0) - pts[:, :2].min(axis=0)
    return float(max(span.max(), 1e-6))


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return np.asarray(1.0 / (1.0 + tau / dt))


class OneEuroFilter:
    """One Euro filter over a (N, D) point array, speed measured in face-size units.

    ``filter(points, t, scale)``: ``t`` in seconds (strictly increasing; an equal ``t``
    returns the previous output), ``scale`` the face size in the points' units (see
    :func:`face_scale`). Pure numpy, usable without a graph.
    """

    def __init__(
        self,
        min_cutoff: float = DEFAULT_MIN_CUTOFF,
        beta: float = DEFAULT_BETA,
        d_cutoff: float = DEFAULT_D_CUTOFF,
    ) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("min_cutoff and d_cutoff must be > 0 and beta >= 0")
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next input passes through unchanged."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t = 0.0
        self.last_cutoff = self.min_cutoff

    @property
    def initialized(self) -> bool:
        return self._x is not None

    def filter(self, points: np.ndarray, t: float, scale: float) -> np.ndarray:
        x = np.asarray(points, dtype=np.float64)
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        if dt <= 0:
            return self._x.copy()
        assert self._dx is not None
        # Velocity of the raw input against the last estimate, low-passed at d_cutoff.
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        speed = float(np.median(np.linalg.norm(self._dx[:, :2], axis=1))) / max(scale, 1e-9)
        cutoff = self.min_cutoff + self.beta * speed
        self.last_cutoff = cutoff
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x.copy()


def _box(points: np.ndarray) -> tuple[float, float, float, float]:
    xy = points[:, :2]
    return (
        float(xy[:, 0].min()),
        float(xy[:, 1].min()),
        float(xy[:, 0].max()),
        float(xy[:, 1].max()),
    )


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def landmark_box(points: np.ndarray) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of the x, y columns."""
    return _box(np.asarray(points, dtype=np.float64))


def match_tracks(
    boxes: Sequence[tuple[float, float, float, float]],
    ids: Sequence[int | None],
    track_boxes: Sequence[tuple[float, float, float, float]],
    track_ids: Sequence[int | None],
    min_iou: float,
) -> dict[int, int]:
    """Face index → track index: 1) same non-None ``rect_id``, 2) greedily by best box IoU
    (≥ ``min_iou``). Each track is used at most once; unmatched faces start new tracks."""
    assigned: dict[int, int] = {}
    free = list(range(len(track_boxes)))
    for i, rid in enumerate(ids):
        if rid is None:
            continue
        for k in free:
            if track_ids[k] == rid:
                assigned[i] = k
                free.remove(k)
                break
    cands = sorted(
        (
            (_iou(boxes[i], track_boxes[k]), i, k)
            for i in range(len(boxes))
            if i not in assigned
            for k in free
        ),
        reverse=True,
    )
    for iou, i, k in cands:
        if iou < min_iou:
            break
        if i not in assigned and k in free:
            assigned[i] = k
            free.remove(k)
    return assigned


@dataclass
class _Track:
    filt: OneEuroFilter
    box: tuple[float, float, float, float]
    rect_id: int | None


class MultiFaceSmoother:
    """One :class:`OneEuroFilter` per tracked face; see the module doc for association."""

    def __init__(
        self,
        min_cutoff: float = DEFAULT_MIN_CUTOFF,
        beta: float = DEFAULT_BETA,
        d_cutoff: float = DEFAULT_D_CUTOFF,
        min_iou: float = 0.3,
        max_gap_s: float = 0.5,
    ) -> None:
        self.params = (min_cutoff, beta, d_cutoff)
        OneEuroFilter(*self.params)  # validate now, not on the first face
        self.min_iou = min_iou
        self.max_gap_s = max_gap_s
        self._tracks: list[_Track] = []
        self._t: float | None = None

    @property
    def num_tracks(self) -> int:
        return len(self._tracks)

    def reset(self) -> None:
        self._tracks = []
        self._t = None

    def lost_all(self, t: float) -> None:
        """A frame without faces: every track is lost."""
        self._tracks = []
        self._t = t

    def apply(
        self,
        faces_px: Sequence[np.ndarray],
        t: float,
        rect_ids: Sequence[int | None] | None = None,
    ) -> list[np.ndarray]:
        """Smooth the faces of one frame (pixel (N, D) arrays); returns them in input order."""
        if self._t is not None and (t - self._t > self.max_gap_s or t < self._t):
            self._tracks = []
        self._t = t
        ids = list(rect_ids) if rect_ids is not None else [None] * len(faces_px)
        boxes = [_box(np.asarray(f, dtype=np.float64)) for f in faces_px]
        match = match_tracks(
            boxes, ids, [k.box for k in self._tracks], [k.rect_id for k in self._tracks],
            self.min_iou,
        )  # fmt: skip
        assigned = {i: self._tracks[k] for i, k in match.items()}
        out: list[np.ndarray] = []
        tracks: list[_Track] = []
        for i, f in enumerate(faces_px):
            track = assigned.get(i) or _Track(OneEuroFilter(*self.params), boxes[i], ids[i])
            pts = np.asarray(f, dtype=np.float64)
            sm = track.filt.filter(pts, t, face_scale(pts))
            track.box, track.rect_id = _box(sm), ids[i]
            tracks.append(track)
            out.append(sm)
        self._tracks = tracks  # unmatched old tracks are dropped: their faces were lost
        return out
