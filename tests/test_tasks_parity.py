"""Parity with MediaPipe 1.2.3's Tasks FaceLandmarker, end to end (fixtures in
tests/fixtures/reference_tasks, made by scripts/reference_tasks.py from its own Python API).

Tolerances (pixels of the input image, x and y; z, in pixels of the image width, has the
same mean tolerance — it feeds the transformation matrix):

- IMAGE mode: per face, mean landmark distance ≤ 0.05 px and max ≤ 0.5 px;
- VIDEO mode on a clip where MediaPipe's own trajectory is stable (one grey level on 20
  pixels of frame 0 moves its landmarks by ≤ 0.05 px mean on every frame): every frame's
  mean distance ≤ 0.1 px;
- VIDEO mode on a chaotic clip (that perturbation moves MediaPipe by more): compared one
  step at a time — each frame's landmarks from MediaPipe's own tracking ROI (computed from
  its previous-frame landmarks, possible because those clips run with num_faces=2 and so
  without smoothing) must be within the IMAGE-mode tolerances;
- every mode: the same number of faces on every frame;
- blendshapes: max abs difference ≤ 0.02; transformation matrix: rotation entries ≤ 2e-3,
  translation ≤ 0.1 cm (IMAGE and VIDEO mode, every frame).
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

import cv2
import numpy as np
import pytest
from facegraph import FaceLandmarker, FaceLandmarkerOptions, Graph, RunningMode, load_graph
from facegraph.app import synthetic
from facegraph.vision.face.rois import landmarks_to_roi

from .tasks_reference import FIXTURES, IMAGE_CASES, REFERENCE_TASKS, image_case, manifest

IMAGE_MEAN_PX, IMAGE_MAX_PX = 0.05, 0.5
VIDEO_MEAN_PX = 0.1
STABLE_PERTURBED_PX = 0.05
BLENDSHAPE_ABS = 0.02
ROTATION_ABS, TRANSLATION_CM = 2e-3, 0.1
VIDEO_CASES = ["talking_face", "head_turns", "moving", "two"]


def assert_blendshapes_and_matrices(result: Any, ref: Any, t: int) -> None:
    n = int(ref["count"][t])
    ours_bs, ours_mx = result.blendshapes_array(), result.matrices_array()
    assert ours_bs.shape == (n, 52) and ours_mx.shape == (n, 4, 4)
    for k in range(n):
        assert np.abs(ours_bs[k] - ref["blendshapes"][t, k]).max() <= BLENDSHAPE_ABS, (t, k)
        ref_mx = ref["matrices"][t, k]
        assert np.abs(ours_mx[k, :3, :3] - ref_mx[:3, :3]).max() <= ROTATION_ABS, (t, k)
        assert np.abs(ours_mx[k, :3, 3] - ref_mx[:3, 3]).max() <= TRANSLATION_CM, (t, k)


def _sha(rgb: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).hexdigest()


def video_entry(name: str) -> dict[str, Any]:
    cases: dict[str, dict[str, Any]] = manifest()["cases"]  # type: ignore[assignment]
    return cases[f"video_{name}"]


@cache
def video_frames(name: str) -> tuple[np.ndarray, ...]:
    """The frames MediaPipe saw (skips when this decoder gives other pixels)."""
    source = video_entry(name)["input"]
    frames: list[np.ndarray] = []
    if "file" in source:
        cap = cv2.VideoCapture(str(FIXTURES / source["file"]))
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    else:  # regenerated bit-exactly from the photos
        r = source["synthetic"]
        photos = []
        for file, crop in r["photos"]:
            rgb = np.ascontiguousarray(cv2.imread(str(FIXTURES / "faces" / file))[:, :, ::-1])
            if crop is not None:
                rgb = np.ascontiguousarray(rgb[crop[0] : crop[1], crop[2] : crop[3]])
            photos.append(rgb)
        frames = list(
            synthetic.moving_face_video(photos, r["kind"], r["frames"], r["width"], r["height"])
        )
    if [_sha(f) for f in frames] != source["sha256_rgb"]:
        pytest.skip(f"video {name} decodes to other pixels than MediaPipe saw (decoder)")
    return tuple(frames)


def video_ref(name: str) -> Any:
    return np.load(REFERENCE_TASKS / video_entry(name)["file"])


def pixel_distances(ours: np.ndarray, ref: np.ndarray, w: int, h: int) -> np.ndarray:
    """Per-landmark 2-D distance in pixels."""
    return np.hypot((ours[:, 0] - ref[:, 0]) * w, (ours[:, 1] - ref[:, 1]) * h)


def z_mean_px(ours: np.ndarray, ref: np.ndarray, w: int) -> float:
    """Mean |z difference| in pixels (z is in image-width units)."""
    return float(np.abs(ours[:, 2] - ref[:, 2]).mean() * w)


@pytest.fixture(scope="module")
def image_landmarker() -> Any:
    options = FaceLandmarkerOptions(
        num_faces=2, output_face_blendshapes=True, output_facial_transformation_matrixes=True
    )
    with FaceLandmarker.create_from_options(options) as lm:
        yield lm


@pytest.mark.parametrize("name", IMAGE_CASES)
def test_image_mode_landmarks_match_mediapipe(name: str, image_landmarker: Any) -> None:
    case = image_case(name)
    rgb = case.rgb()
    ref = {"landmarks": case.landmarks, "blendshapes": case.blendshapes,
           "matrices": case.matrices, "count": case.count}  # fmt: skip
    result = image_landmarker.detect(rgb)
    assert len(result.face_landmarks) == int(ref["count"][0])
    h, w = rgb.shape[:2]
    for k, ours in enumerate(result.landmarks_array()):
        d = pixel_distances(ours, ref["landmarks"][0, k], w, h)
        assert d.mean() <= IMAGE_MEAN_PX and d.max() <= IMAGE_MAX_PX, (k, d.mean(), d.max())
        assert z_mean_px(ours, ref["landmarks"][0, k], w) <= IMAGE_MEAN_PX
    assert_blendshapes_and_matrices(result, ref, 0)


def _run_video(name: str) -> tuple[list[Any], int, Any]:
    num_faces = int(video_entry(name)["options"]["num_faces"])
    ref = video_ref(name)
    options = FaceLandmarkerOptions(
        running_mode=RunningMode.VIDEO,
        num_faces=num_faces,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    with FaceLandmarker.create_from_options(options) as lm:
        results = [
            lm.detect_for_video(f, int(t))
            for f, t in zip(video_frames(name), ref["timestamps_ms"], strict=True)
        ]
    return results, num_faces, ref


@pytest.mark.parametrize("name", VIDEO_CASES)
def test_video_mode_tracks_like_mediapipe(name: str) -> None:
    results, num_faces, ref = _run_video(name)
    frames = video_frames(name)
    h, w = frames[0].shape[:2]
    counts = [len(r.face_landmarks) for r in results]
    assert counts == ref["count"].tolist()
    if float(np.max(ref["perturbed_diff_px"])) <= STABLE_PERTURBED_PX:
        for t, r in enumerate(results):
            for k, ours in enumerate(r.landmarks_array()):
                d = pixel_distances(ours, ref["landmarks"][t, k], w, h)
                assert d.mean() <= VIDEO_MEAN_PX, (t, k, d.mean())
                assert z_mean_px(ours, ref["landmarks"][t, k], w) <= VIDEO_MEAN_PX, (t, k)
        return
    # Chaotic: one step at a time from MediaPipe's own state.
    assert num_faces > 1, "a smoothed chaotic clip cannot be stepped from its outputs"
    graph = Graph(load_graph("face_landmarks_v2"), mode="deterministic")
    graph.start({})
    try:
        steps = 0
        for t in range(1, len(frames)):
            if ref["count"][t - 1] != num_faces:
                continue  # the detector ran at t: not a pure tracking step
            for k in range(int(ref["count"][t])):
                roi = landmarks_to_roi(ref["landmarks"][t - 1, k], w, h)
                out = graph.run_once({"image": frames[t], "roi": roi})
                ours = out["face"].points
                d = pixel_distances(ours, ref["landmarks"][t, k], w, h)
                assert d.mean() <= IMAGE_MEAN_PX and d.max() <= IMAGE_MAX_PX, (t, k, d.mean())
                assert z_mean_px(ours, ref["landmarks"][t, k], w) <= IMAGE_MEAN_PX, (t, k)
                steps += 1
        assert steps >= len(frames) - 2
    finally:
        graph.close_all_inputs()
        graph.wait_until_done()


@pytest.mark.parametrize("name", VIDEO_CASES)
def test_video_mode_blendshapes_and_matrices_match_mediapipe(name: str) -> None:
    results, _, ref = _run_video(name)
    for t, r in enumerate(results):
        assert_blendshapes_and_matrices(r, ref, t)
