"""Compare two runs' landmark outputs (``facegraph run --output`` JSONL/JSON files).

Frames are paired by their ``frame`` number (by position when absent); faces within a frame
by landmark-box IoU (:func:`.evaluation.match_faces`). Differences are 2-D distances per
landmark in pixels and in percent of the first run's 3-D interocular distance (eye-centre
convention of :mod:`.evaluation`). Frames whose face counts differ are listed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from facegraph.app.evaluation import (
    AnnotationError,
    interocular_distance,
    landmark_errors,
    match_faces,
)

__all__ = ["FrameDiff", "RunComparison", "compare_runs", "read_run_output"]


def read_run_output(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Frames of a run output: ``.jsonl`` (one object a line) or ``.json`` (array or object)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise AnnotationError(f"{p}: cannot read: {exc}") from None
    frames: list[dict[str, Any]] = []
    stripped = text.lstrip()
    if p.suffix.lower() == ".json" or stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AnnotationError(f"{p}:{exc.lineno}: invalid JSON: {exc.msg}") from None
        frames = data if isinstance(data, list) else [data]
    else:
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    frames.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise AnnotationError(f"{p}:{lineno}: invalid JSON: {exc.msg}") from None
    for i, f in enumerate(frames):
        if not isinstance(f, dict) or not isinstance(f.get("faces"), list):
            raise AnnotationError(f"{p}: frame {i} has no 'faces' list")
    return frames


def _points(face: dict[str, Any]) -> np.ndarray:
    kps = face.get("keypoints") or []
    return np.array(
        [[float(k["x"]), float(k["y"]), float(k.get("z", np.nan))] for k in kps], np.float64
    ).reshape(-1, 3)


@dataclass
class FrameDiff:
    """Differences of one frame."""

    frame: int
    faces_a: int
    faces_b: int
    mean_px: list[float] = field(default_factory=list)  # per matched face
    max_px: list[float] = field(default_factory=list)
    mean_iod_pct: list[float] = field(default_factory=list)


@dataclass
class RunComparison:
    """All frame differences plus pooled per-landmark distances."""

    frames: list[FrameDiff]
    all_px: np.ndarray
    all_iod_pct: np.ndarray
    only_in_a: list[int]
    only_in_b: list[int]

    @property
    def count_mismatches(self) -> list[FrameDiff]:
        return [f for f in self.frames if f.faces_a != f.faces_b]

    def summary(self) -> dict[str, Any]:
        def stats(a: np.ndarray) -> dict[str, float | None]:
            if not len(a):
                return {"mean": None, "p50": None, "max": None}
            return {
                "mean": float(a.mean()),
                "p50": float(np.median(a)),
                "max": float(a.max()),
            }

        return {
            "frames_compared": len(self.frames),
            "faces_compared": sum(len(f.mean_px) for f in self.frames),
            "px": stats(self.all_px),
            "iod_pct": stats(self.all_iod_pct),
            "face_count_differs": [
                {"frame": f.frame, "a": f.faces_a, "b": f.faces_b} for f in self.count_mismatches
            ],
            "frames_only_in_a": self.only_in_a,
            "frames_only_in_b": self.only_in_b,
        }


def compare_runs(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> RunComparison:
    """Per-frame landmark differences between two runs' frames (see module doc)."""

    def keyed(frames: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
        return {int(f.get("frame", i)): f for i, f in enumerate(frames)}

    ka, kb = keyed(a), keyed(b)
    diffs: list[FrameDiff] = []
    px: list[np.ndarray] = []
    pct: list[np.ndarray] = []
    for n in sorted(set(ka) & set(kb)):
        fa = [_points(f) for f in ka[n]["faces"]]
        fb = [_points(f) for f in kb[n]["faces"]]
        d = FrameDiff(n, len(fa), len(fb))
        for i, j in match_faces(fb, fa):
            pa, pb = fa[j], fb[i]
            m = min(len(pa), len(pb))
            e = landmark_errors(pb[:m], pa[:m])
            iod = interocular_distance(pa) if len(pa) >= 468 else float("nan")
            d.mean_px.append(float(e.mean()))
            d.max_px.append(float(e.max()))
            d.mean_iod_pct.append(float(100 * e.mean() / iod))
            px.append(e)
            pct.append(100 * e / iod)
        diffs.append(d)
    return RunComparison(
        diffs,
        np.concatenate(px) if px else np.zeros(0),
        np.concatenate(pct) if pct else np.zeros(0),
        sorted(set(ka) - set(kb)),
        sorted(set(kb) - set(ka)),
    )
