"""IOD-MAE evaluation of face landmarks against annotations.

**The metric** (the model card's yardstick): for one face, the mean over landmarks of the
2-D Euclidean distance between predicted and annotated points, divided by the annotated
face's *3-D* interocular distance (eye centres = midpoints of the eye-corner segments
33–133 and 362–263 of the 468/478 mesh), in percent. Annotations without z (e.g. 2-D
tools) fall back to the 2-D distance.

**68-point annotations** (iBUG ``.pts``): the prediction is reduced to 68 points with the
documented correspondence of :mod:`.pts`, and the error is the NME over those 68 points only,
normalised by the 2-D distance between the *outer eye corners* (iBUG 37 and 46, 1-based;
the 300-W "inter-ocular" convention), in percent. On ``takeo`` MediaPipe 0.10.14 scores
4.0 % (mapping residuals: :data:`.pts.TAKEO_RESIDUALS_PX`).

**Matching**: predicted and annotated faces of an image are paired greedily by the IoU of
their landmark bounding boxes (IoU ≥ 0.1), then by nearest box centre (within half the
annotated box size). An annotated face with no partner is a *miss*: listed in the report and
counted in ``n_missed``, never silently dropped; it has no error value (the mean covers
matched faces only, so read it together with ``n_missed``). A predicted face with no partner
is counted in ``n_extra``.

**Annotation files** (:func:`load_annotations`): our own run output (``facegraph run
--output``: ``.jsonl``, one frame object per line, or ``.json``, an array of them or one
object), each ``{"source": path?, "faces": [{"keypoints": [{"x", "y", "z"}, ...]}]}`` in
pixels, 468 or 478 keypoints; and ``.pts`` files. Annotations are keyed by the image file
*stem* (``takeo.pts`` ↔ ``takeo.ppm``; a run-output frame by the stem of its ``source``, or
of the JSON file itself for a single object without one).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from facegraph.app.pts import IBUG68_OUTER_EYE_CORNERS, IBUG68_REGIONS, mesh_to_ibug68, read_pts
from facegraph.vision.face import indices as ix

__all__ = [
    "MESH_REGIONS",
    "REPORT_FILES",
    "AnnotatedFace",
    "AnnotationError",
    "Evaluation",
    "FaceError",
    "ImageResult",
    "annotation_files",
    "evaluate_image",
    "face_error",
    "interocular_distance",
    "iod_mae",
    "landmark_errors",
    "load_annotations",
    "match_faces",
    "nme68",
    "write_report",
]

Kind = Literal["mesh", "ibug68"]


class AnnotationError(ValueError):
    """An annotation file that cannot be used; the message names the file (and line)."""


#: Mesh regions reported separately (indices into the 478-point list; irises need 478).
MESH_REGIONS: dict[str, tuple[int, ...]] = {
    "lips": ix.REGION_POINTS["lips"],
    "eyes": ix.REGION_POINTS["leftEye"] + ix.REGION_POINTS["rightEye"],
    "irises": ix.LEFT_IRIS + ix.RIGHT_IRIS,
    "face_oval": ix.REGION_POINTS["faceOval"],
}


# --- the metric --------------------------------------------------------------------------


def interocular_distance(points: np.ndarray) -> float:
    """Distance between the eye centres of mesh ``points`` (N ≥ 468, 2 or 3 columns).

    Eye centre = midpoint of the eye-corner segment (33–133, 362–263). 3-D when a finite z
    column is present, else 2-D.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] < ix.NUM_MESH or pts.shape[1] < 2:
        raise ValueError(f"expected (>=468, 2|3) mesh landmarks, got shape {pts.shape}")
    cols = 3 if pts.shape[1] >= 3 and np.isfinite(pts[:, 2]).all() else 2
    a = pts[list(ix.LEFT_EYE_CORNERS), :cols].mean(axis=0)
    b = pts[list(ix.RIGHT_EYE_CORNERS), :cols].mean(axis=0)
    return float(np.linalg.norm(a - b))


def landmark_errors(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-landmark 2-D Euclidean distance (same units as the inputs), shape (N,)."""
    p = np.asarray(predicted, dtype=np.float64)[:, :2]
    t = np.asarray(truth, dtype=np.float64)[:, :2]
    if p.shape != t.shape:
        raise ValueError(f"landmark counts differ: predicted {p.shape[0]}, truth {t.shape[0]}")
    return np.asarray(np.hypot(p[:, 0] - t[:, 0], p[:, 1] - t[:, 1]))


def iod_mae(predicted: np.ndarray, truth: np.ndarray) -> float:
    """IOD MAE in percent of mesh landmarks (compares the common first 468/478 points)."""
    n = min(len(predicted), len(truth))
    return float(
        100.0 * landmark_errors(predicted[:n], truth[:n]).mean() / interocular_distance(truth)
    )


def nme68(predicted68: np.ndarray, truth68: np.ndarray) -> float:
    """68-point NME in percent, normalised by the outer-eye-corner distance (iBUG 37–46)."""
    t = np.asarray(truth68, dtype=np.float64)
    a, b = IBUG68_OUTER_EYE_CORNERS
    norm = float(np.hypot(*(t[a, :2] - t[b, :2])))
    return float(100.0 * landmark_errors(predicted68, t).mean() / norm)


# --- annotations -------------------------------------------------------------------------


@dataclass(frozen=True)
class AnnotatedFace:
    """One annotated face: (N, 3) float64 pixels (z NaN when the annotation is 2-D)."""

    points: np.ndarray
    kind: Kind
    origin: str  # "file" or "file:line", for messages and the report


@dataclass(frozen=True)
class FaceError:
    """Error of one matched face."""

    kind: Kind
    errors_px: np.ndarray  # (N,) per compared landmark
    norm_px: float  # the normalising interocular distance
    value: float  # IOD MAE (mesh) or NME (ibug68), percent
    truth_2d: np.ndarray  # (N, 2) annotated points, for the mean-face plot
    regions: dict[str, float]  # per-region mean error, percent

    @property
    def errors_percent(self) -> np.ndarray:
        return np.asarray(100.0 * self.errors_px / self.norm_px)


def _faces_from_record(record: Any, origin: str) -> list[AnnotatedFace]:
    if not isinstance(record, Mapping) or not isinstance(record.get("faces"), list):
        raise AnnotationError(f"{origin}: expected an object with a 'faces' list")
    faces: list[AnnotatedFace] = []
    for j, face in enumerate(record["faces"]):
        kps = face.get("keypoints") if isinstance(face, Mapping) else None
        if not isinstance(kps, list):
            raise AnnotationError(f"{origin}: face {j} has no 'keypoints' list")
        try:
            pts = np.array(
                [[float(k["x"]), float(k["y"]), float(k.get("z", math.nan))] for k in kps],
                dtype=np.float64,
            ).reshape(-1, 3)
        except (KeyError, TypeError, ValueError):
            raise AnnotationError(
                f"{origin}: face {j}: every keypoint needs numeric 'x' and 'y'"
            ) from None
        if len(pts) not in (ix.NUM_MESH, ix.NUM_REFINED, 68):
            raise AnnotationError(
                f"{origin}: face {j} has {len(pts)} keypoints; expected 468, 478 or 68"
            )
        faces.append(AnnotatedFace(pts, "ibug68" if len(pts) == 68 else "mesh", origin))
    return faces


def _key_for(record: Mapping[str, Any], fallback: str) -> str:
    source = record.get("source")
    return Path(str(source)).stem if source else fallback


def _add(
    out: dict[str, list[AnnotatedFace]],
    seen: dict[str, str],
    key: str,
    faces: list[AnnotatedFace],
    origin: str,
) -> None:
    # One frame per image: frames of a video all name the same source, which cannot be
    # matched to image files.
    if key in seen:
        raise AnnotationError(
            f"{origin}: image '{key}' was already annotated at {seen[key]}; annotations "
            "must hold one frame per image (a video's frames all name the same source)"
        )
    seen[key] = origin
    out.setdefault(key, []).extend(faces)


def _load_file(path: Path, out: dict[str, list[AnnotatedFace]]) -> None:
    suffix = path.suffix.lower()
    if suffix == ".pts":
        from facegraph.app.pts import PtsError

        try:
            pts = read_pts(path).points
        except PtsError as exc:
            raise AnnotationError(str(exc)) from None
        if len(pts) != 68:
            raise AnnotationError(f"{path}: {len(pts)} points; only 68-point files are supported")
        full = np.concatenate([pts, np.full((68, 1), math.nan)], axis=1)
        out.setdefault(path.stem, []).append(AnnotatedFace(full, "ibug68", str(path)))
        return
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AnnotationError(f"{path}: cannot read: {exc}") from None
    seen: dict[str, str] = {}
    if suffix == ".jsonl":
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            origin = f"{path}:{lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AnnotationError(f"{origin}: invalid JSON: {exc.msg}") from None
            if not isinstance(record, Mapping) or not record.get("source"):
                raise AnnotationError(f"{origin}: a JSONL frame needs a 'source' image path")
            _add(out, seen, _key_for(record, path.stem), _faces_from_record(record, origin), origin)
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    records = data if isinstance(data, list) else [data]
    for i, record in enumerate(records):
        origin = f"{path}[{i}]" if isinstance(data, list) else str(path)
        if isinstance(data, list) and not (isinstance(record, Mapping) and record.get("source")):
            raise AnnotationError(f"{origin}: an array entry needs a 'source' image path")
        key = _key_for(record, path.stem) if isinstance(record, Mapping) else path.stem
        _add(out, seen, key, _faces_from_record(record, origin), origin)


ANNOTATION_SUFFIXES = (".pts", ".json", ".jsonl")


def annotation_files(path: str | os.PathLike[str]) -> list[Path]:
    """The annotation files :func:`load_annotations` reads: the file given, or the
    ``*.pts``, ``*.json`` and ``*.jsonl`` files of a directory (sorted)."""
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.iterdir() if f.suffix.lower() in ANNOTATION_SUFFIXES)
    return [p] if p.is_file() else []


def load_annotations(path: str | os.PathLike[str]) -> dict[str, list[AnnotatedFace]]:
    """Annotations of a file or a directory (``*.pts``, ``*.json``, ``*.jsonl``), by image stem."""
    p = Path(path)
    out: dict[str, list[AnnotatedFace]] = {}
    if p.is_dir():
        files = annotation_files(p)
        if not files:
            raise AnnotationError(f"{p}: no annotation files (*.pts, *.json, *.jsonl)")
        for f in files:
            _load_file(f, out)
    elif p.is_file():
        if p.suffix.lower() not in ANNOTATION_SUFFIXES:
            raise AnnotationError(f"{p}: unknown annotation format (use .pts, .json or .jsonl)")
        _load_file(p, out)
    else:
        raise AnnotationError(f"{p}: no such file or directory")
    return out


# --- matching and per-image evaluation ---------------------------------------------------


def _box(points: np.ndarray) -> np.ndarray:
    xy = np.asarray(points, dtype=np.float64)[:, :2]
    return np.concatenate([xy.min(axis=0), xy.max(axis=0)])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def match_faces(
    predicted: Sequence[np.ndarray], annotated: Sequence[np.ndarray], min_iou: float = 0.1
) -> list[tuple[int, int]]:
    """Pairs (predicted index, annotated index), greedily by box IoU then nearest centre.

    Boxes are the landmarks' axis-aligned bounds; give both sides comparable point sets
    (e.g. both reduced to 68 points) for meaningful IoUs.
    """
    pb = [_box(p) for p in predicted]
    ab = [_box(a) for a in annotated]
    cands = sorted(
        ((_iou(p, a), i, j) for i, p in enumerate(pb) for j, a in enumerate(ab)), reverse=True
    )
    used_p: set[int] = set()
    used_a: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for iou, i, j in cands:
        if iou < min_iou:
            break
        if i not in used_p and j not in used_a:
            pairs.append((i, j))
            used_p.add(i)
            used_a.add(j)
    dists = []
    for i, p in enumerate(pb):
        for j, a in enumerate(ab):
            if i in used_p or j in used_a:
                continue
            d = float(np.hypot(*((p[:2] + p[2:]) / 2 - (a[:2] + a[2:]) / 2)))
            if d <= 0.5 * max(a[2] - a[0], a[3] - a[1]):
                dists.append((d, i, j))
    for _, i, j in sorted(dists):
        if i not in used_p and j not in used_a:
            pairs.append((i, j))
            used_p.add(i)
            used_a.add(j)
    return sorted(pairs, key=lambda ij: ij[1])


def _region_means(
    errors_pct: np.ndarray, regions: Mapping[str, tuple[int, ...]]
) -> dict[str, float]:
    out: dict[str, float] = {}
    n = len(errors_pct)
    for name, pts in regions.items():
        sel = [p for p in pts if p < n]
        if sel:
            out[name] = float(errors_pct[sel].mean())
    return out


def face_error(predicted_px: np.ndarray, annotation: AnnotatedFace) -> FaceError:
    """Error of mesh landmarks (pixels, N ≥ 468) against one annotated face."""
    pred = np.asarray(predicted_px, dtype=np.float64)
    truth = annotation.points
    if annotation.kind == "ibug68":
        p68 = mesh_to_ibug68(pred)[:, :2]
        t68 = truth[:, :2]
        a, b = IBUG68_OUTER_EYE_CORNERS
        norm = float(np.hypot(*(t68[a] - t68[b])))
        errs = landmark_errors(p68, t68)
        pct = 100.0 * errs / norm
        return FaceError(
            "ibug68", errs, norm, float(pct.mean()), t68, _region_means(pct, IBUG68_REGIONS)
        )
    n = min(len(pred), len(truth))
    norm = interocular_distance(truth)
    errs = landmark_errors(pred[:n], truth[:n])
    pct = 100.0 * errs / norm
    regions = _region_means(pct, MESH_REGIONS)
    return FaceError("mesh", errs, norm, float(pct.mean()), truth[:n, :2].copy(), regions)


@dataclass
class ImageResult:
    """Evaluation of one image."""

    file: str
    n_predicted: int
    n_annotated: int
    faces: list[FaceError] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)  # origins of unmatched annotations
    n_extra: int = 0

    @property
    def value(self) -> float | None:
        """Mean error of the matched faces (percent), ``None`` when none matched."""
        return float(np.mean([f.value for f in self.faces])) if self.faces else None


def evaluate_image(
    file: str, predicted_px: Sequence[np.ndarray], annotated: Sequence[AnnotatedFace]
) -> ImageResult:
    """Match predicted faces (pixel landmarks) to annotated faces and score the pairs."""
    result = ImageResult(file, len(predicted_px), len(annotated))
    # Compare boxes of like point sets: a 68-point annotation omits the forehead.
    pred_sets = [
        [mesh_to_ibug68(p) if a.kind == "ibug68" else p for p in predicted_px] for a in annotated
    ]
    kinds = {a.kind for a in annotated}
    if len(kinds) <= 1:
        preds = pred_sets[0] if annotated else list(predicted_px)
        pairs = match_faces(preds, [a.points for a in annotated])
    else:  # mixed kinds in one image: match each annotation against its own view
        pairs = []
        for j, a in enumerate(annotated):
            used = {i for i, _ in pairs}
            free = [i for i in range(len(predicted_px)) if i not in used]
            got = match_faces([pred_sets[j][i] for i in free], [a.points])
            if got:
                pairs.append((free[got[0][0]], j))
    matched_a = {j for _, j in pairs}
    for i, j in pairs:
        result.faces.append(face_error(predicted_px[i], annotated[j]))
    result.missed = [
        f"{a.origin} (face {j})" for j, a in enumerate(annotated) if j not in matched_a
    ]
    result.n_extra = len(predicted_px) - len(pairs)
    return result


# --- aggregate and report ----------------------------------------------------------------


@dataclass
class Evaluation:
    """All images of one evaluation run."""

    images: list[ImageResult] = field(default_factory=list)

    def faces(self) -> list[FaceError]:
        return [f for r in self.images for f in r.faces]

    def summary(self) -> dict[str, Any]:
        """The ``report.json`` content (numbers in percent; ``None`` when undefined)."""
        faces = self.faces()
        values = np.array([f.value for f in faces], dtype=np.float64)
        kinds = sorted({f.kind for f in faces})
        per_region: dict[str, float] = {}
        names = sorted({k for f in faces for k in f.regions})
        for name in names:
            per_region[name] = float(np.mean([f.regions[name] for f in faces if name in f.regions]))
        metric = {
            "mesh": "IOD MAE: mean 2-D landmark error / 3-D eye-centre distance (33-133, 362-263)",
            "ibug68": "NME over the 68 iBUG points / outer-eye-corner distance (37-46, 1-based)",
        }
        return {
            "metric": {k: metric[k] for k in kinds},
            "n_images": len(self.images),
            "n_faces_annotated": sum(r.n_annotated for r in self.images),
            "n_faces_predicted": sum(r.n_predicted for r in self.images),
            "n_faces_matched": len(faces),
            "n_missed": sum(len(r.missed) for r in self.images),
            "n_extra": sum(r.n_extra for r in self.images),
            "iod_mae_mean": float(values.mean()) if len(values) else None,
            "iod_mae_std": float(values.std()) if len(values) else None,
            "iod_mae_median": float(np.median(values)) if len(values) else None,
            "per_region": per_region,
            "per_image": [
                {
                    "file": r.file,
                    "faces": len(r.faces),
                    "annotated": r.n_annotated,
                    "predicted": r.n_predicted,
                    "iod_mae": r.value,
                    "per_face": [f.value for f in r.faces],
                    "missed": r.missed,
                    "extra": r.n_extra,
                }
                for r in self.images
            ],
            "missed": [m for r in self.images for m in r.missed],
        }


def _normalised_shape(truth_2d: np.ndarray, kind: Kind) -> np.ndarray:
    """Points with the eye midpoint at 0, eyes horizontal, interocular distance 1."""
    if kind == "ibug68":
        a = truth_2d[36:42].mean(axis=0)
        b = truth_2d[42:48].mean(axis=0)
    else:
        a = truth_2d[list(ix.LEFT_EYE_CORNERS)].mean(axis=0)
        b = truth_2d[list(ix.RIGHT_EYE_CORNERS)].mean(axis=0)
    d = b - a
    scale = float(np.hypot(*d)) or 1.0
    c, s = d / scale
    rot = np.array([[c, s], [-s, c]])
    return np.asarray(((truth_2d - (a + b) / 2) @ rot.T) / scale)


def _plots(evaluation: Evaluation) -> dict[str, bytes]:
    """The report's PNG plots, by file name (drawn in memory: written by the caller)."""
    from facegraph.app.figures import png_bytes, pyplot

    plt = pyplot()
    plots: dict[str, bytes] = {}
    faces = evaluation.faces()
    values = [f.value for f in faces]

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    if values:
        ax.hist(values, bins=min(30, max(5, len(values))), color="#3b7dd8", edgecolor="white")
        ax.axvline(float(np.mean(values)), color="#d83b3b", label=f"mean {np.mean(values):.2f} %")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no matched faces", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("per-face error (% of interocular distance)")
    ax.set_ylabel("faces")
    ax.set_title(f"Landmark error, {len(values)} faces")
    fig.tight_layout()
    plots["error_histogram.png"] = png_bytes(fig)

    # Heat map on the mean face, for the more common annotation kind (mesh preferred).
    kind: Kind = "mesh" if any(f.kind == "mesh" for f in faces) else "ibug68"
    same = [f for f in faces if f.kind == kind]
    fig, ax = plt.subplots(figsize=(6, 6.5), dpi=100)
    if same:
        n = min(len(f.errors_px) for f in same)
        shape = np.mean([_normalised_shape(f.truth_2d[:n], kind) for f in same], axis=0)
        err = np.mean([f.errors_percent[:n] for f in same], axis=0)
        sc = ax.scatter(shape[:, 0], shape[:, 1], c=err, cmap="inferno", s=14 if n > 68 else 40)
        fig.colorbar(sc, ax=ax, label="mean error (% IOD)")
        ax.invert_yaxis()
        ax.set_aspect("equal")
    else:
        ax.text(0.5, 0.5, "no matched faces", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(f"Per-landmark error on the mean face ({kind}, {len(same)} faces)")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    plots["landmark_heatmap.png"] = png_bytes(fig)
    return plots


#: The files :func:`write_report` writes into its folder (the JSON last).
REPORT_FILES = ("error_histogram.png", "landmark_heatmap.png", "report.json")


def write_report(
    evaluation: Evaluation, out_dir: str | os.PathLike[str], meta: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Write ``report.json`` plus ``error_histogram.png`` and ``landmark_heatmap.png``
    (:data:`REPORT_FILES`) into ``out_dir``, created if needed.

    The three are written whole and together (:func:`facegraph.atomic_files.write_all_whole`:
    each to a temporary beside it, all moved into place once all are written): when a
    write fails, an earlier report there keeps its bytes, no temporary is left, and the
    OSError raised names the file. Returns the report dict (``meta``, e.g. graph and mode,
    is merged in). Needs matplotlib for the plots; without it the JSON is still written
    and the error says how to install it.
    """
    from facegraph.atomic_files import write_all_whole, write_whole

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = {**dict(meta or {}), **evaluation.summary()}
    try:
        plots = _plots(evaluation)
    except ImportError:
        report["plots"] = []
        write_whole(out / "report.json", json.dumps(report, indent=2) + "\n")
        raise ImportError(
            "matplotlib is needed for the report plots: pip install 'matplotlib>=3.7' "
            f"(report.json was written to {out})"
        ) from None
    report["plots"] = list(plots)
    files: dict[Path, str | bytes] = {out / name: data for name, data in plots.items()}
    files[out / "report.json"] = json.dumps(report, indent=2) + "\n"
    write_all_whole(files)
    return report


def face_points_px(face: Any, width: int, height: int) -> np.ndarray:
    """Pixel (N, 3) landmarks from a graph output face (FaceLandmarks or façade face)."""
    if hasattr(face, "pixels"):
        return np.asarray(face.pixels(width, height), dtype=np.float64)
    pts = getattr(face, "landmarks", None)
    if pts is None:
        pts = getattr(face, "points", None)
    if pts is None:
        raise TypeError(f"cannot read landmarks from a {type(face).__name__}")
    return np.asarray(pts, dtype=np.float64) * np.array([width, height, width], np.float64)


def iter_images(directory: str | os.PathLike[str]) -> Iterable[Path]:
    """Image files of a directory (sorted), or the one file given."""
    p = Path(directory)
    exts = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
    if p.is_file():
        return [p]
    return sorted(f for f in p.iterdir() if f.suffix.lower() in exts)


# --- running a graph on still images -----------------------------------------------------

#: Frames fed in tracking mode before measuring (the model card's "several frames").
TRACKING_FRAMES = 5


def predict_faces(
    spec: Any,
    image: np.ndarray,
    *,
    mode: Literal["tracking", "reacquisition"] = "reacquisition",
    frames: int = TRACKING_FRAMES,
    side_packets: Mapping[str, Any] | None = None,
) -> list[Any]:
    """Run a face graph (a ``GraphSpec``) on one RGB image; return its ``faces`` output.

    Convention of the face graphs: input stream ``image`` (HxWx3 uint8 RGB), output stream
    ``faces`` (list of :class:`~.types.FaceLandmarks`; no packet = no face). Each image gets
    a fresh graph, so nothing is tracked from one image to the next: *reacquisition* runs
    it once (the detector finds the face), *tracking* feeds the same image ``frames``
    times and measures the last result (landmarks from the previous frame's landmarks).
    """
    from facegraph import FacegraphError, Graph

    if "image" not in spec.input_streams or "faces" not in spec.output_streams:
        raise FacegraphError(
            f"graph '{spec.name}' must have input stream 'image' and output stream 'faces' "
            f"(it has inputs {list(spec.input_streams)}, outputs {list(spec.output_streams)})"
        )
    n = max(1, frames) if mode == "tracking" else 1
    graph = Graph(spec, mode="deterministic")
    graph.start(dict(side_packets or {}))
    out: dict[str, Any] = {}
    try:
        for k in range(n):
            out = graph.run_once({"image": image}, timestamp=k * 33_333)
    except BaseException:
        graph.cancel()
        raise
    graph.close_all_inputs()
    graph.wait_until_done()
    return list(out.get("faces") or [])
