"""Generate MediaPipe Tasks ``FaceLandmarker`` (mediapipe 1.2.3) reference fixtures.

Run with the Tasks reference venv (never a runtime or CI dependency)::

    $FACEGRAPH_MEDIAPIPE_TASKS_PYTHON scripts/reference_tasks.py --task face_landmarker.task \\
        [--mode image|video|all] [--out tests/fixtures/reference_tasks]

``--task`` is the bundle (sha256 64184e22…; ``facegraph models path face_landmarker``
prints the cached copy). Cases:

- ``image``: ``RunningMode.IMAGE``, ``num_faces=2``, blendshapes and matrices on, on the
  photos in ``tests/fixtures/faces/`` → ``tasks_image_<name>.npz``;
- ``video``: ``RunningMode.VIDEO``, ``num_faces=1`` (so MediaPipe smooths the landmarks),
  blendshapes and matrices on, timestamps ``round(i * 1000 / fps)`` ms, on the clips in
  ``tests/fixtures/videos/`` and on synthetic videos (``SYNTHETIC``; ``two`` with
  ``num_faces=2``, so unsmoothed) → ``tasks_video_<name>.npz``. Each clip is run twice more:
  with frame 0 perturbed (one grey level added to 20 fixed pixels inside the face) to
  measure how chaotic
  MediaPipe's own trajectory is (``perturbed_diff_px``: per-frame mean landmark distance
  between the two runs, in pixels).

Array layout (T frames or images, F = most faces seen, missing entries NaN):
``landmarks`` (T, F, 478, 3) normalised; ``count`` (T,); ``blendshapes`` (T, F, 52);
``matrices`` (T, F, 4, 4); video only: ``timestamps_ms`` (T,), ``perturbed_diff_px`` (T,),
``perturbed_count`` (T,). ``manifest.json`` records inputs (sha256 of each decoded RGB
frame), settings, versions and this command.
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

ROOT = Path(__file__).resolve().parents[1]
IMAGES = {
    "astronaut": "astronaut.png",
    "face_detection_expected": "face_detection_expected.png",
    "tom_hanks": "Tom_Hanks_54745.png",
    "t1": "t1.jpg",
}
VIDEOS = {"talking_face": "talking_face_40.mp4", "head_turns": "head_turns_40.mp4"}
#: Synthetic 640x480 videos regenerated bit-exactly by ``facegraph.app.synthetic`` from the
#: photos: name -> (photo files with crops (y0, y1, x0, x1) or None, kind, frames, num_faces,
#: fps). ``moving`` turns the face by +-25 degrees while zooming (chaotic for MediaPipe).
_TWO_PHOTOS = [
    ("astronaut.png", (0, 300, 90, 390)),
    ("face_detection_expected.png", (60, 460, 100, 500)),
]
SYNTHETIC = {
    "moving": ([("astronaut.png", None)], "moving", 40, 1, 30.0),
    "two": (_TWO_PHOTOS, "two", 30, 2, 30.0),
}
#: The perturbation of frame 0: +1 grey level on these 20 (row, col) pixels (clipped).
PERTURB_SEED = 1234
PERTURB_PIXELS = 20


def perturb(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Frame 0 with one grey level added to 20 pixels inside the first face's landmark box
    (``landmarks``: that face's normalised (478, 3); the same pixels in every run)."""
    rng = np.random.default_rng(PERTURB_SEED)
    out = frame.copy()
    h, w = frame.shape[:2]
    x0, y0 = np.clip(np.nanmin(landmarks[:, :2], axis=0) * (w, h), 0, (w - 1, h - 1)).astype(int)
    x1, y1 = np.clip(np.nanmax(landmarks[:, :2], axis=0) * (w, h), 0, (w - 1, h - 1)).astype(int)
    rows = rng.integers(y0, y1 + 1, PERTURB_PIXELS)
    cols = rng.integers(x0, x1 + 1, PERTURB_PIXELS)
    out[rows, cols] = np.minimum(out[rows, cols].astype(np.int16) + 1, 255).astype(np.uint8)
    return out


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    return frames, fps


def sha(rgb: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).hexdigest()


def _pack(results: list[Any]) -> dict[str, np.ndarray]:
    t = len(results)
    f = max([len(r.face_landmarks) for r in results] + [1])
    lm = np.full((t, f, 478, 3), np.nan, np.float32)
    bs = np.full((t, f, 52), np.nan, np.float32)
    mx = np.full((t, f, 4, 4), np.nan, np.float32)
    count = np.zeros(t, np.int32)
    for i, r in enumerate(results):
        count[i] = len(r.face_landmarks)
        for k, face in enumerate(r.face_landmarks):
            lm[i, k] = [[p.x, p.y, p.z] for p in face]
        for k, cats in enumerate(r.face_blendshapes or []):
            bs[i, k] = [c.score for c in cats]
        for k, m in enumerate(r.facial_transformation_matrixes or []):
            mx[i, k] = np.asarray(m, np.float32).reshape(4, 4)
    return {"landmarks": lm, "count": count, "blendshapes": bs, "matrices": mx}


def _landmarker(task: Path, mode: str, num_faces: int) -> Any:
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(task)),
        running_mode=getattr(vision.RunningMode, mode),
        num_faces=num_faces,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    return mp, vision.FaceLandmarker.create_from_options(options)


def run_image_cases(task: Path, out: Path) -> list[dict[str, Any]]:
    cases = []
    mp, landmarker = _landmarker(task, "IMAGE", 2)
    with landmarker:
        for name, file in IMAGES.items():
            rgb = np.ascontiguousarray(
                cv2.cvtColor(
                    cv2.imread(str(ROOT / "tests/fixtures/faces" / file)), cv2.COLOR_BGR2RGB
                )
            )
            res = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
            arrays = _pack([res])
            np.savez_compressed(out / f"tasks_image_{name}.npz", **arrays)
            cases.append(
                {"name": name, "mode": "IMAGE", "input": f"faces/{file}", "num_faces": 2,
                 "sha256_rgb": [sha(rgb)], "faces": arrays["count"].tolist()}
            )  # fmt: skip
    return cases


def load_synthetic() -> Any:
    """Import app/synthetic.py by path (facegraph is not installed in the reference venv)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("synthetic", ROOT / "app" / "synthetic.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["synthetic"] = module
    spec.loader.exec_module(module)
    return module


def synthetic_frames(name: str) -> list[np.ndarray]:
    photos_spec, kind, n, _, _ = SYNTHETIC[name]
    photos = []
    for file, crop in photos_spec:
        rgb = cv2.cvtColor(cv2.imread(str(ROOT / "tests/fixtures/faces" / file)), cv2.COLOR_BGR2RGB)
        if crop is not None:
            rgb = rgb[crop[0] : crop[1], crop[2] : crop[3]]
        photos.append(np.ascontiguousarray(rgb))
    return list(load_synthetic().moving_face_video(photos, kind, n, 640, 480))


def _run_video(
    task: Path, frames: list[np.ndarray], stamps: list[int], num_faces: int = 1
) -> list[Any]:
    mp, landmarker = _landmarker(task, "VIDEO", num_faces)
    with landmarker:
        return [
            landmarker.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=f), t)
            for f, t in zip(frames, stamps, strict=True)
        ]


def run_video_cases(task: Path, out: Path) -> list[dict[str, Any]]:
    cases = []
    inputs: list[tuple[str, str, list[np.ndarray], float, int, Any]] = []
    for name, file in VIDEOS.items():
        frames, fps = read_video(ROOT / "tests/fixtures/videos" / file)
        inputs.append((name, f"videos/{file}", frames, fps, 1, None))
    for name, (photos, kind, n, num_faces, fps) in SYNTHETIC.items():
        recipe = {"photos": photos, "kind": kind, "frames": n, "width": 640, "height": 480}
        inputs.append((name, "synthetic", synthetic_frames(name), fps, num_faces, recipe))
    for name, source, frames, fps, num_faces, recipe in inputs:
        stamps = [round(i * 1000 / fps) for i in range(len(frames))]
        base = _pack(_run_video(task, frames, stamps, num_faces))
        first = perturb(frames[0], base["landmarks"][0, 0])
        again = _pack(_run_video(task, [first, *frames[1:]], stamps, num_faces))
        h, w = frames[0].shape[:2]
        scale = np.array([w, h], np.float32)
        f = min(base["landmarks"].shape[1], again["landmarks"].shape[1])
        d = np.linalg.norm(
            (base["landmarks"][:, :f, :, :2] - again["landmarks"][:, :f, :, :2]) * scale, axis=-1
        )
        # Per frame: the worst face's mean distance (NaN when a face is missing in one run).
        diff = np.max(np.mean(d, axis=-1), axis=-1)
        arrays = {
            **base,
            "timestamps_ms": np.asarray(stamps, np.int64),
            "perturbed_diff_px": np.nan_to_num(diff, nan=np.inf).astype(np.float32),
            "perturbed_count": again["count"],
        }
        np.savez_compressed(out / f"tasks_video_{name}.npz", **arrays)
        cases.append(
            {"name": name, "mode": "VIDEO", "input": source, "num_faces": num_faces,
             "fps": fps, "synthetic": recipe, "sha256_rgb": [sha(f) for f in frames],
             "faces": base["count"].tolist(),
             "perturbed_max_mean_px": float(np.max(arrays["perturbed_diff_px"]))}
        )  # fmt: skip
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", type=Path, required=True, help="face_landmarker.task bundle")
    parser.add_argument("--mode", choices=["image", "video", "all"], default="all")
    parser.add_argument("--out", type=Path, default=ROOT / "tests/fixtures/reference_tasks")
    args = parser.parse_args(argv)
    import mediapipe as mp

    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "manifest.json"
    manifest: dict[str, Any] = (
        json.loads(manifest_path.read_text()) if manifest_path.exists() else {"cases": []}
    )
    modes = ["image", "video"] if args.mode == "all" else [args.mode]
    new: list[dict[str, Any]] = []
    if "image" in modes:
        new += run_image_cases(args.task, args.out)
    if "video" in modes:
        new += run_video_cases(args.task, args.out)
    kept = [c for c in manifest["cases"] if c["mode"].lower() not in modes]
    manifest.update(
        {
            "mediapipe": mp.__version__,
            "opencv": cv2.__version__,
            "task_sha256": hashlib.sha256(args.task.read_bytes()).hexdigest(),
            "perturbation": {
                "seed": PERTURB_SEED,
                "pixels": PERTURB_PIXELS,
                "frame": 0,
                "where": "inside the first face's landmark box",
            },
            "command": "python scripts/reference_tasks.py " + shlex.join(sys.argv[1:]),
            "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "cases": kept + new,
        }
    )
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    tmp.replace(manifest_path)
    for c in new:
        print(c["mode"], c["name"], "faces", c["faces"][:10], c.get("perturbed_max_mean_px", ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
