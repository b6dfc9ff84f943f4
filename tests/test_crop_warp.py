"""The landmark crop's two warps: ``image_to_tensor(..., warp="exact" | "fast")``.

``exact`` is the bit-exact OpenCV 3.4 emulation (tests/test_face_numerics.py); ``fast``
runs this cv2's ``warpAffine`` on the same geometry and is what the shipped landmark graphs
(graphs/face_landmark.yaml, graphs/face_landmarks_v2.yaml) use.

Tensors (measured on 2026-12 with opencv-python-headless 5.1, 192² and 256², both borders,
letterbox on and off, rotated ROIs partly outside the frame): ROI, letterbox padding and
MATRIX identical; on a photo mean |fast − exact| ≤ 0.1 grey level (tolerance 0.25) and
max ≤ 4 levels (tolerance 8); on uniform noise, the worst case for sub-pixel differences,
mean ≤ 0.85 levels (tolerance 1.5).

Landmarks against MediaPipe's references (budgets of issues 13/14; the measured worst
per-face values with fast in brackets):

- legacy face mesh, static: mean ≤ 0.05 px [0.030], max ≤ 0.5 px [0.106] — asserted on
  the shipped graphs by tests/test_face_graphs.py::test_static_graph_matches_mediapipe;
- legacy tracking one step (MediaPipe's landmarks of frame i−1 → ROI → our frame i, the
  shipped face_landmark graph): mean ≤ 0.05 px [0.035], max ≤ 0.5 px [0.097] — below;
- Tasks IMAGE mode: mean ≤ 0.05 px [0.026], max ≤ 0.5 px [0.085], blendshapes ≤ 0.02
  [0.011], rotation ≤ 2e-3 [1.2e-3], translation ≤ 0.1 cm [0.010] — asserted by
  tests/test_tasks_parity.py (which also steps the chaotic two-face VIDEO clip one frame
  at a time within the IMAGE tolerances [0.023 / 0.125]).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from facegraph import Graph, graph_from_yaml, graphs, load_graph
from facegraph.calculators.face.nodes import ImageToTensor
from facegraph.vision.face import image_to_tensor as itt
from facegraph.vision.face.image_to_tensor import image_to_tensor
from facegraph.vision.face.types import NormalizedRect

from .test_face_reference import REFERENCE, case, frames_of, image, pixel_errors

#: Landmark budgets (issues 13/14), pixels of the input image.
ONE_STEP_MEAN_PX, ONE_STEP_MAX_PX = 0.05, 0.5
#: fast vs exact tensors, in grey levels (see the top for the measured values).
PHOTO_MEAN_LEVELS, PHOTO_MAX_LEVELS, NOISE_MEAN_LEVELS = 0.25, 8.0, 1.5

ROIS = [
    NormalizedRect(0.5, 0.45, 0.4, 0.5, 0.3),
    NormalizedRect(0.45, 0.5, 0.5, 0.45, -1.0),
    NormalizedRect(0.1, 0.9, 0.5, 0.5, 2.0),  # mostly outside: the border shows
    NormalizedRect(0.5, 0.5, 1.2, 1.0, 0.0),  # wider than the frame
    NormalizedRect(0.6, 0.4, 0.3, 0.6, 3.1),  # upside down, tall: letterbox matters
]


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.ascontiguousarray(cv2.resize(image("astronaut"), (640, 480)))


def both(frame: np.ndarray, rect: NormalizedRect | None, size: int, **kw: object) -> tuple:
    exact = image_to_tensor(frame, rect, size, size, (0.0, 1.0), **kw)  # type: ignore[arg-type]
    fast = image_to_tensor(frame, rect, size, size, (0.0, 1.0), warp="fast", **kw)  # type: ignore[arg-type]
    return exact, fast


@pytest.mark.parametrize("size", [192, 256])
@pytest.mark.parametrize("border", ["replicate", "zero"])
@pytest.mark.parametrize("keep_aspect", [False, True])
def test_fast_tensor_is_close_to_exact_with_the_same_geometry(
    photo: np.ndarray, size: int, border: str, keep_aspect: bool
) -> None:
    for rect in ROIS:
        exact, fast = both(photo, rect, size, border=border, keep_aspect=keep_aspect)
        assert fast.roi == exact.roi and fast.padding == exact.padding
        assert np.array_equal(fast.matrix, exact.matrix) and fast.matrix.dtype == np.float32
        assert fast.tensor.shape == exact.tensor.shape == (1, size, size, 3)
        assert fast.tensor.dtype == np.float32
        diff = np.abs(fast.tensor - exact.tensor) * 255
        assert diff.mean() <= PHOTO_MEAN_LEVELS, (rect, diff.mean())
        assert diff.max() <= PHOTO_MAX_LEVELS, (rect, diff.max())


def test_fast_tensor_on_noise_and_value_ranges() -> None:
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for rect in ROIS[:2]:
        for lo, hi in ((0.0, 1.0), (-1.0, 1.0)):
            exact = image_to_tensor(noise, rect, 192, 192, (lo, hi))
            fast = image_to_tensor(noise, rect, 192, 192, (lo, hi), warp="fast")
            diff = np.abs(fast.tensor - exact.tensor) * 255 / (hi - lo)
            assert diff.mean() <= NOISE_MEAN_LEVELS, diff.mean()
            assert fast.tensor.min() >= lo and fast.tensor.max() <= hi


def test_fast_identity_crop_equals_the_image_and_exact() -> None:
    """A crop that maps pixels onto pixels has no rounding to differ in."""
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    exact = image_to_tensor(img, None, 48, 64, (0.0, 255.0))
    fast = image_to_tensor(img, None, 48, 64, (0.0, 255.0), warp="fast")
    assert np.array_equal(fast.tensor[0], img.astype(np.float32))
    assert np.array_equal(fast.tensor, exact.tensor)


def test_fast_tensor_is_a_fresh_array_per_call(photo: np.ndarray) -> None:
    """The model may keep the tensor it was given: no buffer is reused across calls."""
    a = image_to_tensor(photo, ROIS[0], 192, 192, warp="fast").tensor
    keep = a.copy()
    b = image_to_tensor(photo, ROIS[1], 192, 192, warp="fast").tensor
    assert not np.shares_memory(a, b)
    assert np.array_equal(a, keep)
    assert a.flags.c_contiguous and a.flags.writeable


@pytest.mark.parametrize("border", ["replicate", "zero"])
def test_fast_source_window_reads_like_the_whole_frame(
    photo: np.ndarray, border: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast warp reads a window around the ROI; without it (the whole frame)
    the pixels are the same up to the matrix's last bits (the window shifts the
    translation), including at the frame's edges; strided views crop like copies."""
    windowed = [
        image_to_tensor(photo, r, 192, 192, border=border, warp="fast")  # type: ignore[arg-type]
        for r in ROIS
    ]
    strided = np.zeros((480, 700, 3), np.uint8)
    strided[:, :640] = photo
    view = strided[:, :640]
    for rect, got in zip(ROIS, windowed, strict=True):
        again = image_to_tensor(view, rect, 192, 192, border=border, warp="fast")  # type: ignore[arg-type]
        assert np.array_equal(again.tensor, got.tensor)
    monkeypatch.setattr(itt, "_affine_source_window", lambda *a: None)
    for rect, got in zip(ROIS, windowed, strict=True):
        whole = image_to_tensor(photo, rect, 192, 192, border=border, warp="fast")  # type: ignore[arg-type]
        diff = np.abs(got.tensor - whole.tensor) * 255
        assert diff.max() <= 1.0 + 1e-4 and diff.mean() <= 0.01, (rect, diff.mean())


def test_fast_leaves_sources_beyond_int16_to_exact() -> None:
    """OpenCV 4's warpAffine would read wrong pixels past 32767 rows: such crops go
    through the exact path, which fails as it always did (cv2.remap's limit)."""
    tall = np.zeros((40000, 4, 3), np.uint8)
    rect = NormalizedRect(0.5, 0.5, 1.0, 1.0, 0.0)
    for warp in ("exact", "fast"):
        with pytest.raises(cv2.error):
            image_to_tensor(tall, rect, 16, 16, warp=warp)  # type: ignore[arg-type]
    small_roi = NormalizedRect(0.5, 0.5, 1.0, 0.01, 0.0)  # a 400-row window: fine
    fast = image_to_tensor(tall, small_roi, 16, 16, warp="fast")
    assert fast.tensor.shape == (1, 16, 16, 3) and not fast.tensor.any()


def test_warp_option_values_and_defaults() -> None:
    with pytest.raises(ValueError, match="warp"):
        image_to_tensor(np.zeros((8, 8, 3), np.uint8), None, 4, 4, warp="quick")  # type: ignore[arg-type]
    base = {"output_width": 8, "output_height": 8}
    assert ImageToTensor.Options(**base).warp == "exact"  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ImageToTensor.Options(**base, warp="quick")  # type: ignore[arg-type]
    for name in ("face_landmark", "face_landmarks_v2"):
        crops = [n for n in load_graph(name).nodes if n.calculator_name == "ImageToTensor"]
        assert [n.options.warp for n in crops] == ["fast"], name  # type: ignore[attr-defined]


def landmark_graph(warp: str) -> Graph:
    """The shipped face_landmark graph with its crop's warp set to ``warp``."""
    text = (Path(graphs.__file__).parent / "face_landmark.yaml").read_text("utf-8")
    option = "border_mode: replicate, warp: fast}"
    assert text.count(option) == 1
    spec = graph_from_yaml(text.replace(option, f"border_mode: replicate, warp: {warp}}}"))
    return Graph(spec, mode="deterministic").start({})


TRACKING_CLIPS = [
    ("mesh_track_moving_refine", True),
    ("mesh_track_moving_norefine", False),
    ("mesh_track_lost_refine", True),
    ("mesh_track_two_refine", True),
]


@pytest.mark.parametrize(("name", "refine"), TRACKING_CLIPS)
def test_fast_landmark_graph_one_step_tracking_within_budget(
    model_cache: Path, name: str, refine: bool
) -> None:
    """Every tracking step of MediaPipe's clips through the shipped (fast) face_landmark
    graph: MediaPipe's ROI from frame i−1's landmarks, our landmarks on frame i."""
    c = case(name)
    ref = np.load(REFERENCE / c["file"])
    frames = frames_of(c["input"])
    g = Graph(load_graph("face_landmark"), mode="deterministic").start({"with_attention": refine})
    steps = 0
    try:
        for i in range(1, len(frames)):
            h, w = frames[i].shape[:2]
            n = min(int(ref["landmarks_count"][i - 1]), int(ref["landmarks_count"][i]))
            for j in range(n):
                roi = NormalizedRect.from_array(ref["rects_from_landmarks"][i - 1, j])
                out = g.run_once({"image": frames[i], "roi": roi}, timestamp=steps)
                steps += 1
                # Face j of frame i is the one tracked from face j of frame i−1 (the
                # two-face clip's faces keep their order); compare with the nearest.
                err = min(
                    (pixel_errors(out["face"].points, ref["landmarks"][i, k], w, h)
                     for k in range(int(ref["landmarks_count"][i]))),
                    key=lambda e: float(e.mean()),
                )  # fmt: skip
                assert err.mean() <= ONE_STEP_MEAN_PX, (i, j, err.mean())
                assert err.max() <= ONE_STEP_MAX_PX, (i, j, err.max())
    finally:
        g.close_all_inputs()
        g.wait_until_done()
    assert steps >= 20


def test_exact_landmark_graph_still_reproduces_mediapipe(model_cache: Path) -> None:
    """``warp: exact`` in the same graph: ≤ 0.01 px given MediaPipe's ROI (the bit-exact
    crop; the numerics-level version is test_face_reference's)."""
    c = case("mesh_track_moving_refine")
    ref = np.load(REFERENCE / c["file"])
    frames = frames_of(c["input"])
    g = landmark_graph("exact")
    try:
        for k, i in enumerate((1, 30, 59)):
            roi = NormalizedRect.from_array(ref["rects_from_landmarks"][i - 1, 0])
            out = g.run_once({"image": frames[i], "roi": roi}, timestamp=k)
            assert pixel_errors(out["face"].points, ref["landmarks"][i, 0], 640, 480).max() <= 0.01
    finally:
        g.close_all_inputs()
        g.wait_until_done()


def test_fast_affine_is_the_exact_geometry_in_closed_form() -> None:
    """The fast warp's closed-form map sends every output pixel where OpenCV's
    perspective solve (the exact mode's) does, to 1e-3 px (the exact path rounds the
    rect's corners to float32 first; measured worst 1.6e-4 px) on ROIs rotated any way,
    letterboxed or not, partly outside the frame."""
    rng = np.random.default_rng(5)
    for _ in range(500):
        rect = NormalizedRect(
            *rng.uniform(-0.2, 1.2, 2), *rng.uniform(0.05, 1.5, 2), rng.uniform(-7, 7)
        )
        size = int(rng.choice([128, 192, 256]))
        roi, _ = itt._padded_roi(rect, 640, 480, size, size, bool(rng.integers(2)))
        exact = itt.crop_matrix(roi, size, size)
        fast = itt._affine_map(roi, size, size)
        for x, y in ((0, 0), (size, 0), (0, size), (size, size), (size / 2, size / 3)):
            want = exact @ (x, y, 1.0)
            assert np.abs(fast @ (x, y, 1.0) - want[:2] / want[2]).max() <= 1e-3, rect


def test_a_crop_of_a_non_finite_roi_is_a_clear_error(photo: np.ndarray) -> None:
    inf = float("inf")
    for rect in (
        NormalizedRect(0.5, 0.5, inf, 0.5, 0.0),
        NormalizedRect(inf, 0.5, 0.5, 0.5, 0.0),
        NormalizedRect(0.5, 0.5, 0.5, 0.5, inf),  # cos(inf): a math domain error before
    ):
        for warp in ("exact", "fast"):
            with pytest.raises(ValueError, match="cannot crop a non-finite ROI"):
                image_to_tensor(photo, rect, 192, 192, warp=warp)  # type: ignore[arg-type]
