"""Generate MediaPipe Tasks (``FaceLandmarker``) reference fixtures.

Run with the MediaPipe *Tasks* reference venv (mediapipe 1.2.3; never a runtime or CI
dependency), given the bundle from facegraph's model store::

    "$FACEGRAPH_MEDIAPIPE_TASKS_PYTHON" scripts/reference_tasks.py image \\
        --bundle "$(facegraph models path face_landmarker)"

Subcommands (one per running mode; each writes its own cases and merges them into the
shared ``manifest.json``):

- ``image``: ``RunningMode.IMAGE`` on the photos of :data:`IMAGES` (``tests/fixtures/faces``),
  blendshapes and facial transformation matrices on.

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
    """Write ``<name>.npz`` beside its final name, then move it into place."""
    final = out / f"{name}.npz"
    tmp = out / f".{name}.npz.part"
    with tmp.open("wb") as f:
        np.savez_compressed(f, **arrays)
    tmp.replace(final)
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


MODES: dict[str, Callable[[argparse.Namespace], dict[str, dict[str, Any]]]] = {
    "image": run_image,
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
    tmp = manifest_path.with_name(".manifest.json.part")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n", "utf-8")
    tmp.replace(manifest_path)
    print(f"wrote {len(cases)} case(s) to {args.out}")


if __name__ == "__main__":
    main()
