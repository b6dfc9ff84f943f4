"""Generate MediaPipe Tasks (``FaceLandmarker``) reference fixtures.

Run with the MediaPipe *Tasks* reference venv (mediapipe 1.2.3; never a runtime or CI
dependency), given the bundle from facegraph's model store::

    "$FACEGRAPH_MEDIAPIPE_TASKS_PYTHON" scripts/reference_tasks.py image \\
        --bundle "$(facegraph models path face_landmarker)"

Subcommands (one per running mode; each writes its own cases and merges them into the
shared ``manifest.json``):

- ``image``: ``RunningMode.IMAGE`` on the photos of :data:`IMAGES` (``tests/fixtures/faces``),
  blendshapes and facial transformation matrices on.
- ``video``: ``RunningMode.VIDEO`` (blendshapes and matrices on, timestamps
  ``round(i * 1000 / fps)`` ms) on the clips of :data:`VIDEOS` (``tests/fixtures/videos``)
  with ``num_faces=1`` (so MediaPipe smooths the landmarks) and on the synthetic videos of
  :data:`SYNTHETIC` (``app/synthetic.py``, loaded by path). Each is run a second time with
  frame 0 perturbed (one grey level added to 20 fixed pixels inside the face) to measure
  how chaotic MediaPipe's own trajectory is: ``perturbed_diff_px`` (T,) is the per-frame
  mean landmark distance between the two runs (worst face), ``perturbed_count`` (T,) the
  second run's face counts; ``timestamps_ms`` (T,) the timestamps.

To add a mode (e.g. ``video``), write a ``run_<mode>(args) -> dict[str, dict]`` that
returns {case name: manifest entry} after saving each case with :func:`save_case`, and
register it in :data:`MODES`.

Output: ``tests/fixtures/reference_tasks/<case>.npz`` and ``manifest.json`` (MediaPipe
version, bundle sha256, image sha256 of the decoded RGB pixels, options, command).

Array layout of a case (T frames, F = most faces on a frame; missing entries NaN):

- ``landmarks`` (T, F, 478, 3) float32: x, y normalised, z scaled like x (MediaPipe's)
- ``blendshapes`` (T, F, 52) float32, MediaPipe's category order (index 0 ``_neutral``)
- ``matrices`` (T, F, 4, 4) float32: ``facial_transformation_matrixes``
- ``count`` (T,) int32: faces found on each frame
- ``blendshape_names`` (52,) str: the category names MediaPipe returned
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from whole_files import import_from_checkout, write, write_npz

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT / "tests" / "fixtures" / "faces"
OUT = ROOT / "tests" / "fixtures" / "reference_tasks"

# name -> (file in tests/fixtures/faces, num_faces asked for)
IMAGES = {
    "astronaut": ("astronaut.png", 1),
    "face_detection_expected": ("face_detection_expected.png", 1),
    "tom_hanks": ("Tom_Hanks_54745.png", 1),
    "takeo": ("takeo.ppm", 1),
    "two_faces": ("two_faces.png", 2),
}
DECODING = "cv2.imread(path, cv2.IMREAD_COLOR)[:, :, ::-1] (RGB, alpha dropped)"


def load_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot decode {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def landmarker(bundle: Path, mode: str, num_faces: int) -> Any:
    from mediapipe.tasks import python as mp_tasks
    from mediapipe.tasks.python import vision

    options = vision.FaceLandmarkerOptions(
        base_options=mp_tasks.BaseOptions(model_asset_path=str(bundle)),
        running_mode=getattr(vision.RunningMode, mode),
        num_faces=num_faces,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    return vision.FaceLandmarker.create_from_options(options)


def result_arrays(results: list[Any]) -> dict[str, np.ndarray]:
    """Stack per-frame ``FaceLandmarkerResult`` objects into the case arrays."""
    frames = len(results)
    most = max([len(r.face_landmarks) for r in results] + [1])
    landmarks = np.full((frames, most, 478, 3), np.nan, np.float32)
    blendshapes = np.full((frames, most, 52), np.nan, np.float32)
    matrices = np.full((frames, most, 4, 4), np.nan, np.float32)
    count = np.zeros(frames, np.int32)
    names: list[str] = []
    for t, r in enumerate(results):
        count[t] = len(r.face_landmarks)
        for f, face in enumerate(r.face_landmarks):
            landmarks[t, f] = [[p.x, p.y, p.z] for p in face]
        for f, cats in enumerate(r.face_blendshapes):
            blendshapes[t, f] = [c.score for c in cats]
            names = [c.category_name for c in cats]
        for f, m in enumerate(r.facial_transformation_matrixes):
            matrices[t, f] = np.asarray(m, np.float32).reshape(4, 4)
    return {
        "landmarks": landmarks,
        "blendshapes": blendshapes,
        "matrices": matrices,
        "count": count,
        "blendshape_names": np.asarray(names or [""] * 52),
    }


def save_case(out: Path, name: str, arrays: dict[str, np.ndarray]) -> str:
    """Write ``<name>.npz`` whole (a temporary beside its final name, moved into place)."""
    final = out / f"{name}.npz"
    write_npz(final, arrays)
    return final.name


def run_image(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    import mediapipe as mp

    cases: dict[str, dict[str, Any]] = {}
    for name, (file, num_faces) in IMAGES.items():
        rgb = load_rgb(FACES / file)
        with landmarker(args.bundle, "IMAGE", num_faces) as task:
            result = task.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
        arrays = result_arrays([result])
        case = f"image_{name}"
        cases[case] = {
            "mode": "IMAGE",
            "input": {
                "file": f"faces/{file}",
                "shape": list(rgb.shape),
                "sha256_rgb": sha256(rgb.tobytes()),
            },
            "options": {"num_faces": num_faces},
            "file": save_case(args.out, case, arrays),
            "faces": arrays["count"].tolist(),
        }
        print(f"{case}: {arrays['count'].tolist()} face(s)")
    return cases


# name -> file in tests/fixtures/videos (num_faces=1)
VIDEOS = {"talking_face": "talking_face_40.mp4", "head_turns": "head_turns_40.mp4"}
# name -> (photos as (file, crop (y0, y1, x0, x1) or None), kind, frames, num_faces, fps);
# ``moving`` turns the face by +-25 degrees while zooming; ``two`` has two faces.
_TWO_PHOTOS = [
    ("astronaut.png", (0, 300, 90, 390)),
    ("face_detection_expected.png", (60, 460, 100, 500)),
]
SYNTHETIC: dict[str, tuple[list[tuple[str, Any]], str, int, int, float]] = {
    "moving": ([("astronaut.png", None)], "moving", 40, 1, 30.0),
    "two": (_TWO_PHOTOS, "two", 30, 2, 30.0),
}
PERTURB_SEED, PERTURB_PIXELS = 1234, 20


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    return frames, fps


def synthetic_frames(name: str) -> list[np.ndarray]:
    """Regenerate a synthetic video with app/synthetic.py (imported by path)."""
    module = import_from_checkout("app/synthetic.py", "synthetic")
    photos_spec, kind, n, _, _ = SYNTHETIC[name]
    photos = []
    for file, crop in photos_spec:
        rgb = load_rgb(FACES / file)
        if crop is not None:
            rgb = np.ascontiguousarray(rgb[crop[0] : crop[1], crop[2] : crop[3]])
        photos.append(rgb)
    return list(module.moving_face_video(photos, kind, n, 640, 480))


def perturb(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """``frame`` with one grey level added to 20 pixels inside the landmarks' box
    (``landmarks``: one face's normalised (478, 3)); the same pixels in every run."""
    rng = np.random.default_rng(PERTURB_SEED)
    out = frame.copy()
    h, w = frame.shape[:2]
    lo = np.clip(np.nanmin(landmarks[:, :2], axis=0) * (w, h), 0, (w - 1, h - 1)).astype(int)
    hi = np.clip(np.nanmax(landmarks[:, :2], axis=0) * (w, h), 0, (w - 1, h - 1)).astype(int)
    rows = rng.integers(lo[1], hi[1] + 1, PERTURB_PIXELS)
    cols = rng.integers(lo[0], hi[0] + 1, PERTURB_PIXELS)
    out[rows, cols] = np.minimum(out[rows, cols].astype(np.int16) + 1, 255).astype(np.uint8)
    return out


def _video_results(bundle: Path, frames: list[np.ndarray], stamps: list[int], faces: int) -> Any:
    import mediapipe as mp

    with landmarker(bundle, "VIDEO", faces) as task:
        return [
            task.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=f), t)
            for f, t in zip(frames, stamps, strict=True)
        ]


def run_video(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    inputs: list[tuple[str, dict[str, Any], list[np.ndarray], float, int]] = []
    for name, file in VIDEOS.items():
        frames, fps = read_video(ROOT / "tests" / "fixtures" / "videos" / file)
        inputs.append((name, {"file": f"videos/{file}"}, frames, fps, 1))
    for name, (photos, kind, n, faces, fps) in SYNTHETIC.items():
        recipe = {"photos": photos, "kind": kind, "frames": n, "width": 640, "height": 480}
        inputs.append((name, {"synthetic": recipe}, synthetic_frames(name), fps, faces))
    cases: dict[str, dict[str, Any]] = {}
    for name, source, frames, fps, faces in inputs:
        stamps = [round(i * 1000 / fps) for i in range(len(frames))]
        arrays = result_arrays(_video_results(args.bundle, frames, stamps, faces))
        first = perturb(frames[0], arrays["landmarks"][0, 0])
        again = result_arrays(_video_results(args.bundle, [first, *frames[1:]], stamps, faces))
        h, w = frames[0].shape[:2]
        f = min(arrays["landmarks"].shape[1], again["landmarks"].shape[1])
        d = np.linalg.norm(
            (arrays["landmarks"][:, :f, :, :2] - again["landmarks"][:, :f, :, :2]) * (w, h),
            axis=-1,
        )
        diff = np.max(np.mean(d, axis=-1), axis=-1)  # NaN where a face is missing in one run
        arrays.update(
            timestamps_ms=np.asarray(stamps, np.int64),
            perturbed_diff_px=np.nan_to_num(diff, nan=np.inf).astype(np.float32),
            perturbed_count=again["count"],
        )
        case = f"video_{name}"
        cases[case] = {
            "mode": "VIDEO",
            "input": {
                **source,
                "shape": list(frames[0].shape),
                "fps": fps,
                "sha256_rgb": [sha256(fr.tobytes()) for fr in frames],
            },
            "options": {"num_faces": faces},
            "perturbation": {"seed": PERTURB_SEED, "pixels": PERTURB_PIXELS, "frame": 0},
            "file": save_case(args.out, case, arrays),
            "faces": arrays["count"].tolist(),
            "perturbed_max_mean_px": float(np.max(arrays["perturbed_diff_px"])),
        }
        print(f"{case}: {len(frames)} frames, perturbed max {np.max(diff):.3f} px")
    return cases


MODES: dict[str, Callable[[argparse.Namespace], dict[str, dict[str, Any]]]] = {
    "image": run_image,
    "video": run_video,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--bundle", type=Path, required=True, help="face_landmarker.task")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    import mediapipe as mp

    args.out.mkdir(parents=True, exist_ok=True)
    cases = MODES[args.mode](args)
    manifest_path = args.out / "manifest.json"
    manifest: dict[str, Any] = (
        json.loads(manifest_path.read_text("utf-8")) if manifest_path.exists() else {}
    )
    manifest.update(
        {
            "mediapipe_version": mp.__version__,
            "generator": "scripts/reference_tasks.py",
            "bundle_sha256": sha256(args.bundle.read_bytes()),
            "image_decoding": DECODING,
        }
    )
    manifest.setdefault("commands", {})[args.mode] = (
        f'"$FACEGRAPH_MEDIAPIPE_TASKS_PYTHON" scripts/reference_tasks.py {args.mode} '
        '--bundle "$(facegraph models path face_landmarker)"'
    )
    manifest.setdefault("generated_utc", {})[args.mode] = datetime.now(timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    manifest.setdefault("cases", {}).update(cases)
    write(manifest_path, json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(cases)} case(s) to {args.out}")


if __name__ == "__main__":
    main()
