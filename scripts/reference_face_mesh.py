"""Generate MediaPipe 0.10.14 reference fixtures for the face pipeline parity tests.

Run with the *reference* venv (never a runtime or CI dependency)::

    "$FACEGRAPH_MEDIAPIPE_PYTHON" scripts/reference_face_mesh.py [--faces-dir DIR] [--out DIR]

It runs MediaPipe's legacy ``face_mesh`` graph (``face_landmark_front_cpu``, exactly what
``mp.solutions.face_mesh.FaceMesh`` runs, with the same side packets and calculator
overrides, but also asking for the intermediate streams ``face_detections``,
``face_rects_from_detections`` and ``face_rects_from_landmarks``) and
``mp.solutions.face_detection`` on:

- the photos in ``tests/fixtures/faces/`` (static mode, refine on/off);
- synthetic videos regenerated bit-exactly from those photos by
  ``app/synthetic.py`` (tracking mode).

Output: ``tests/fixtures/reference/*.npz`` (float32) plus ``manifest.json`` that names the
inputs (with sha256 of the decoded RGB pixels so tests can tell when a decoder changed them),
the settings, the MediaPipe version and this command.

Array layout of a ``face_mesh`` case (T frames, F = largest face count seen, N landmarks;
missing entries are NaN and ``*_count`` says how many are valid):

- ``landmarks`` (T, F, N, 3): x, y normalised, z in image-width units (MediaPipe's output)
- ``landmarks_count`` (T,)
- ``detections_box`` (T, F, 4) xmin, ymin, width, height; ``detections_score`` (T, F);
  ``detections_keypoints`` (T, F, 6, 2); ``detections_count`` (T,) (0 when the detector
  did not run)
- ``rects_from_detections`` / ``rects_from_landmarks`` (T, F, 5): x_center, y_center,
  width, height, rotation; with ``*_count`` (T,)

A ``face_detection`` case stores ``box`` (D, 4), ``score`` (D,), ``keypoints`` (D, 6, 2).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from whole_files import import_from_checkout, write, write_npz

ROOT = Path(__file__).resolve().parents[1]

# (name, file) of the committed photos; decoded with cv2.IMREAD_COLOR then BGR->RGB.
IMAGES = {
    "astronaut": "astronaut.png",
    "face_detection_expected": "face_detection_expected.png",
    "tom_hanks": "Tom_Hanks_54745.png",
    "takeo": "takeo.ppm",
    "t1": "t1.jpg",
}
# name -> (photos as (image name, crop rows y0:y1, cols x0:x1 or None), kind, n_frames)
VIDEOS = {
    "moving": ([("astronaut", None)], "moving", 60),
    "lost": ([("astronaut", None)], "lost", 45),
    "two": (
        [("astronaut", (0, 300, 90, 390)), ("face_detection_expected", (60, 460, 100, 500))],
        "two",
        40,
    ),
}
FRAME_W, FRAME_H = 640, 480


def load_synthetic() -> Any:
    """Import app/synthetic.py by path (facegraph is not installed here)."""
    return import_from_checkout("app/synthetic.py", "facegraph_synthetic")


def load_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(path)
    return np.ascontiguousarray(bgr[:, :, ::-1])


def sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def make_face_mesh(static: bool, max_faces: int, refine: bool) -> Any:
    from mediapipe.python.solution_base import SolutionBase
    from mediapipe.python.solutions import face_mesh

    # Same construction as mp.solutions.face_mesh.FaceMesh (defaults 0.5 / 0.5), plus the
    # intermediate streams the front graph exposes anyway.
    return SolutionBase(
        binary_graph_path=face_mesh._BINARYPB_FILE_PATH,
        side_inputs={
            "num_faces": max_faces,
            "with_attention": refine,
            "use_prev_landmarks": not static,
        },
        calculator_params={
            "facedetectionshortrangecpu__facedetectionshortrange__facedetection__"
            "TensorsToDetectionsCalculator.min_score_thresh": 0.5,
            "facelandmarkcpu__ThresholdingCalculator.threshold": 0.5,
        },
        outputs=[
            "multi_face_landmarks",
            "face_detections",
            "face_rects_from_detections",
            "face_rects_from_landmarks",
        ],
    )


def det_arrays(dets: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dets = list(dets or [])
    box = np.full((len(dets), 4), np.nan, np.float32)
    score = np.full((len(dets),), np.nan, np.float32)
    kps = np.full((len(dets), 6, 2), np.nan, np.float32)
    for i, d in enumerate(dets):
        bb = d.location_data.relative_bounding_box
        box[i] = (bb.xmin, bb.ymin, bb.width, bb.height)
        score[i] = d.score[0]
        for k, kp in enumerate(d.location_data.relative_keypoints):
            kps[i, k] = (kp.x, kp.y)
    return box, score, kps


def rect_array(rects: Any) -> np.ndarray:
    rects = list(rects or [])
    out = np.full((len(rects), 5), np.nan, np.float32)
    for i, r in enumerate(rects):
        out[i] = (r.x_center, r.y_center, r.width, r.height, r.rotation)
    return out


def run_face_mesh(frames: list[np.ndarray], static: bool, max_faces: int, refine: bool) -> dict:
    n_lm = 478 if refine else 468
    per_frame = []
    solution = make_face_mesh(static, max_faces, refine)
    try:
        for frame in frames:
            r = solution.process({"image": frame})
            lms = [
                np.array([(p.x, p.y, p.z) for p in f.landmark], np.float32)
                for f in (r.multi_face_landmarks or [])
            ]
            per_frame.append(
                (
                    lms,
                    det_arrays(r.face_detections),
                    rect_array(r.face_rects_from_detections),
                    rect_array(r.face_rects_from_landmarks),
                )
            )
    finally:
        solution.close()
    t = len(frames)
    f = max([1] + [max(len(p[0]), len(p[1][0]), len(p[2]), len(p[3])) for p in per_frame])
    out: dict[str, np.ndarray] = {
        "landmarks": np.full((t, f, n_lm, 3), np.nan, np.float32),
        "landmarks_count": np.zeros(t, np.int32),
        "detections_box": np.full((t, f, 4), np.nan, np.float32),
        "detections_score": np.full((t, f), np.nan, np.float32),
        "detections_keypoints": np.full((t, f, 6, 2), np.nan, np.float32),
        "detections_count": np.zeros(t, np.int32),
        "rects_from_detections": np.full((t, f, 5), np.nan, np.float32),
        "rects_from_detections_count": np.zeros(t, np.int32),
        "rects_from_landmarks": np.full((t, f, 5), np.nan, np.float32),
        "rects_from_landmarks_count": np.zeros(t, np.int32),
    }
    for i, (lms, (box, score, kps), rdet, rlm) in enumerate(per_frame):
        for j, lm in enumerate(lms):
            assert lm.shape == (n_lm, 3), lm.shape
            out["landmarks"][i, j] = lm
        out["landmarks_count"][i] = len(lms)
        d = len(score)
        out["detections_box"][i, :d] = box
        out["detections_score"][i, :d] = score
        out["detections_keypoints"][i, :d] = kps
        out["detections_count"][i] = d
        out["rects_from_detections"][i, : len(rdet)] = rdet
        out["rects_from_detections_count"][i] = len(rdet)
        out["rects_from_landmarks"][i, : len(rlm)] = rlm
        out["rects_from_landmarks_count"][i] = len(rlm)
    return out


def run_face_detection(image: np.ndarray, model_selection: int) -> dict:
    import mediapipe as mp

    with mp.solutions.face_detection.FaceDetection(
        min_detection_confidence=0.5, model_selection=model_selection
    ) as fd:
        r = fd.process(image)
    box, score, kps = det_arrays(r.detections)
    return {"box": box, "score": score, "keypoints": kps}


def main() -> None:
    import mediapipe as mp

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces-dir", type=Path, default=ROOT / "tests" / "fixtures" / "faces")
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "reference")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    synthetic = load_synthetic()

    images = {name: load_rgb(args.faces_dir / fn) for name, fn in IMAGES.items()}
    manifest: dict[str, Any] = {
        "mediapipe_version": mp.__version__,
        "generator": "scripts/reference_face_mesh.py",
        "command": "$FACEGRAPH_MEDIAPIPE_PYTHON " + " ".join(shlex.quote(a) for a in sys.argv),
        "generated_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "image_decoding": "cv2.imread(path, cv2.IMREAD_COLOR)[:, :, ::-1] (RGB, alpha dropped)",
        "images": {
            name: {
                "file": f"faces/{IMAGES[name]}",
                "shape": list(img.shape),
                "sha256_rgb": sha256(img),
            }
            for name, img in images.items()
        },
        "videos": {},
        "cases": [],
    }

    videos: dict[str, list[np.ndarray]] = {}
    for name, (photos, kind, n) in VIDEOS.items():
        crops = [
            images[p] if c is None else np.ascontiguousarray(images[p][c[0] : c[1], c[2] : c[3]])
            for p, c in photos
        ]
        frames = list(synthetic.moving_face_video(crops, kind, n, FRAME_W, FRAME_H))
        videos[name] = frames
        manifest["videos"][name] = {
            "generator": "facegraph.app.synthetic.moving_face_video",
            "photos": [{"image": p, "crop_y0_y1_x0_x1": c} for p, c in photos],
            "kind": kind,
            "n_frames": n,
            "width": FRAME_W,
            "height": FRAME_H,
            "frame_sha256": [sha256(f) for f in frames],
        }

    def add_mesh(name: str, source: dict, frames: list[np.ndarray], **settings: Any) -> None:
        arrays = run_face_mesh(frames, **settings)
        fn = f"{name}.npz"
        write_npz(args.out / fn, arrays)
        counts = arrays["landmarks_count"].tolist()
        manifest["cases"].append(
            {
                "name": name,
                "solution": "face_mesh",
                "input": source,
                "settings": {
                    "static_image_mode": settings["static"],
                    "max_num_faces": settings["max_faces"],
                    "refine_landmarks": settings["refine"],
                    "min_detection_confidence": 0.5,
                    "min_tracking_confidence": 0.5,
                },
                "file": fn,
                "faces_per_frame": counts,
            }
        )
        print(f"{name}: faces per frame {counts if len(counts) < 8 else sorted(set(counts))}")

    for img_name in ["astronaut", "face_detection_expected", "tom_hanks", "takeo", "t1"]:
        for refine in (True, False):
            add_mesh(
                f"mesh_static_{img_name}_{'refine' if refine else 'norefine'}",
                {"image": img_name},
                [images[img_name]],
                static=True,
                max_faces=1,
                refine=refine,
            )
    two0 = videos["two"][0]
    for max_faces in (1, 2):
        add_mesh(
            f"mesh_static_two_frame0_max{max_faces}",
            {"video": "two", "frames": [0, 1]},
            [two0],
            static=True,
            max_faces=max_faces,
            refine=True,
        )
    add_mesh(
        "mesh_track_moving_refine",
        {"video": "moving"},
        videos["moving"],
        static=False,
        max_faces=1,
        refine=True,
    )
    add_mesh(
        "mesh_track_moving_norefine",
        {"video": "moving"},
        videos["moving"],
        static=False,
        max_faces=1,
        refine=False,
    )
    add_mesh(
        "mesh_track_lost_refine",
        {"video": "lost"},
        videos["lost"],
        static=False,
        max_faces=1,
        refine=True,
    )
    add_mesh(
        "mesh_track_two_refine",
        {"video": "two"},
        videos["two"],
        static=False,
        max_faces=2,
        refine=True,
    )

    for model_selection in (0, 1):
        arrays: dict[str, np.ndarray] = {}
        counts = {}
        sources = {**images, "two_frame0": two0}
        for img_name, img in sources.items():
            res = run_face_detection(img, model_selection)
            for k, v in res.items():
                arrays[f"{img_name}__{k}"] = v
            counts[img_name] = len(res["score"])
        fn = f"detection_model{model_selection}.npz"
        write_npz(args.out / fn, arrays)
        manifest["cases"].append(
            {
                "name": f"detection_model{model_selection}",
                "solution": "face_detection",
                "input": {
                    "images": list(sources),
                    "two_frame0": {"video": "two", "frames": [0, 1]},
                },
                "settings": {"model_selection": model_selection, "min_detection_confidence": 0.5},
                "file": fn,
                "faces_per_image": counts,
                "keys": "<image>__box (D,4 xmin,ymin,w,h), <image>__score (D,), "
                "<image>__keypoints (D,6,2)",
            }
        )
        print(f"detection model {model_selection}: {counts}")

    write(args.out / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {len(manifest['cases'])} cases, {total / 1024:.0f} KiB in {args.out}")


if __name__ == "__main__":
    main()
