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
  ``tests/fixtures/videos/`` → ``tasks_video_<name>.npz``. Each clip is run twice more:
  with frame 0 perturbed (one grey level added to 20 fixed pixels) to measure how chaotic
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
#: The perturbation of frame 0: +1 grey level on these 20 (row, col) pixels (clipped).
PERTURB_SEED = 1234
PERTURB_PIXELS = 20


def perturb(frame: np.ndarray) -> np.ndarray:
    """Frame 0 with one grey level added to 20 pixels (same pixels in every run)."""
    rng = np.random.default_rng(PERTURB_SEED)
    out = frame.copy()
    h, w = frame.shape[:2]
    rows, cols = rng.integers(0, h, PERTURB_PIXELS), rng.integers(0, w, PERTURB_PIXELS)
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
                cv2.cvtColor(cv2.imread(str(ROOT / "tests/fixtures/faces" / file)), cv2.COLOR_BGR2RGB)
            )
            res = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
            arrays = _pack([res])
            np.savez_compressed(out / f"tasks_image_{name}.npz", **arrays)
            cases.append(
                {"name": name, "mode": "IMAGE", "input": f"faces/{file}", "num_faces": 2,
                 "sha256_rgb": [sha(rgb)], "faces": arrays["count"].tolist()}
            )  # fmt: skip
    return cases


def _run_video(task: Path, frames: list[np.ndarray], stamps: list[int]) -> list[Any]:
    mp, landmarker = _landmarker(task, "VIDEO", 1)
    with landmarker:
        return [
            landmarker.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=f), t)
            for f, t in zip(frames, stamps, strict=True)
        ]


def run_video_cases(task: Path, out: Path) -> list[dict[str, Any]]:
    cases = []
    for name, file in VIDEOS.items():
        frames, fps = read_video(ROOT / "tests/fixtures/videos" / file)
        stamps = [round(i * 1000 / fps) for i in range(len(frames))]
        base = _pack(_run_video(task, frames, stamps))
        again = _pack(_run_video(task, [perturb(frames[0]), *frames[1:]], stamps))
        h, w = frames[0].shape[:2]
        scale = np.array([w, h], np.float32)
        d = np.linalg.norm((base["landmarks"][:, 0, :, :2] - again["landmarks"][:, 0, :, :2]) * scale, axis=-1)
        diff = np.nanmean(d, axis=-1) if d.size else np.zeros(len(frames))
        arrays = {
            **base,
            "timestamps_ms": np.asarray(stamps, np.int64),
            "perturbed_diff_px": np.nan_to_num(diff, nan=np.inf).astype(np.float32),
            "perturbed_count": again["count"],
        }
        np.savez_compressed(out / f"tasks_video_{name}.npz", **arrays)
        cases.append(
            {"name": name, "mode": "VIDEO", "input": f"videos/{file}", "num_faces": 1,
             "fps": fps, "sha256_rgb": [sha(f) for f in frames],
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
            "perturbation": {"seed": PERTURB_SEED, "pixels": PERTURB_PIXELS, "frame": 0},
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
