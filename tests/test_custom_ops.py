"""MediaPipe's three custom-op kernels on cases small enough to compute by hand."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from facegraph import RegistryError
from facegraph.models.custom_ops import (
    CustomOp,
    CustomOpError,
    find_kernel,
    landmarks_to_transform_matrix_v2,
    register_custom_op,
    registered_custom_ops,
    transform_landmarks_v2,
    transform_tensor_bilinear_v2,
    unregister_custom_op,
)
from facegraph.models.tflite_graph import TensorInfo

F32 = np.dtype(np.float32)


def make_op(
    name: str, in_shapes: list[tuple[int, ...]], out_shapes: list[tuple[int, ...]], **options: Any
) -> CustomOp:
    def infos(shapes: list[tuple[int, ...]], prefix: str) -> tuple[TensorInfo, ...]:
        return tuple(TensorInfo(i, f"{prefix}{i}", s, F32, False) for i, s in enumerate(shapes))

    return CustomOp(
        name=name,
        version=2,
        index=0,
        options=options,
        inputs=infos(in_shapes, "in"),
        outputs=infos(out_shapes, "out"),
        model="test.tflite",
    )


def matrix(rows: list[list[float]]) -> np.ndarray:
    """A [1,4,4] matrix from its first two rows (rows 2–3 as MediaPipe leaves them)."""
    m = np.eye(4, dtype=np.float32)
    m[:2] = np.asarray(rows, dtype=np.float32)
    return m.reshape(1, 4, 4)


def rot(theta: float) -> np.ndarray:
    return np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])


# ------------------------------------------------------------ Landmarks2TransformMatrix


def l2tm(points: np.ndarray, **options: Any) -> np.ndarray:
    """Run the kernel on 2-D points (z filled with junk: the kernel must ignore it)."""
    n = len(points)
    lm = np.concatenate([points, np.full((n, 1), 123.0)], axis=1).astype(np.float32)
    opts = {
        "subset_idxs": list(range(n)),
        "left_rotation_idx": 0,
        "right_rotation_idx": 1,
        "output_height": 16,
        "output_width": 16,
        "scale_x": 1.0,
        "scale_y": 1.0,
    }
    opts.update(options)
    op = make_op("Landmarks2TransformMatrix", [(1, n, 3)], [(1, 4, 4)], **opts)
    out = landmarks_to_transform_matrix_v2(op)(lm.reshape(1, n, 3))
    assert out.shape == (1, 4, 4) and out.dtype == np.float32
    return np.asarray(out)[0]


SQUARE = np.array([[0, 0], [16, 0], [0, 16], [16, 16]], dtype=np.float64)


def test_l2tm_identity_for_a_level_square_matching_the_grid() -> None:
    # Box 16×16 at the origin, left→right along +x, 16×16 grid, scale 1: T is the identity.
    np.testing.assert_allclose(l2tm(SQUARE), np.eye(4), atol=1e-6)


def test_l2tm_pure_translation() -> None:
    t = l2tm(SQUARE + np.array([5.0, -3.0]))
    np.testing.assert_allclose(t[:2, :2], np.eye(2), atol=1e-6)
    np.testing.assert_allclose(t[:2, 3], [5.0, -3.0], atol=1e-5)


def test_l2tm_scale_enlarges_the_box_about_its_centre() -> None:
    t = l2tm(SQUARE, scale_x=1.5, scale_y=2.0)
    # a = 1.5·16/16, b = 2·16/16; translation c − (8a, 8b) with c = (8, 8).
    expected = [[1.5, 0, 0, 8 - 8 * 1.5], [0, 2.0, 0, 8 - 8 * 2.0]]
    np.testing.assert_allclose(t[:2], expected, atol=1e-5)
    np.testing.assert_allclose(t[2:], np.eye(4)[2:], atol=0)


def test_l2tm_grid_size_divides_the_scale() -> None:
    # A 32×32 grid over the same 16-px box: each grid step is half a landmark unit.
    t = l2tm(SQUARE, output_height=32, output_width=32)
    np.testing.assert_allclose(t[:2], [[0.5, 0, 0, 0], [0, 0.5, 0, 0]], atol=1e-6)


@pytest.mark.parametrize("theta_deg", [30.0, 90.0, -135.0])
def test_l2tm_pure_rotation_follows_the_left_right_landmark_line(theta_deg: float) -> None:
    theta = math.radians(theta_deg)
    centre = np.array([20.0, 30.0])
    corners = np.array([[-8, -8], [8, -8], [-8, 8], [8, 8]], dtype=np.float64)
    pts = centre + corners @ rot(theta).T  # left = corner 0, right = corner 1: angle θ
    t = l2tm(pts)
    # T·q = c + R(θ)·(q − (8, 8)): the grid's x axis runs along left→right.
    r = rot(theta)
    np.testing.assert_allclose(t[:2, :2], r, atol=1e-6)
    np.testing.assert_allclose(t[:2, 3], centre - r @ [8.0, 8.0], atol=1e-4)
    # Grid corners land on the rotated square's corners.
    for q, p in zip([(0, 0), (16, 0), (0, 16), (16, 16)], pts, strict=True):
        np.testing.assert_allclose(t[:2, :2] @ q + t[:2, 3], p, atol=1e-4)


def test_l2tm_target_rotation_is_subtracted() -> None:
    # Level square with target π/2: ρ = π/2, α = −π/2; box measured in the rotated frame.
    t = l2tm(SQUARE, target_rotation_radians=math.pi / 2)
    np.testing.assert_allclose(t[:2, :2], rot(-math.pi / 2), atol=1e-6)
    np.testing.assert_allclose(t[:2, :2] @ [8, 8] + t[:2, 3], [8, 8], atol=1e-5)


def test_l2tm_uses_only_the_subset_and_an_odd_count_is_fine() -> None:
    pts = np.array([[0, 0], [10, 0], [100, 100], [4, 6], [-50, 7]], dtype=np.float64)
    # Odd subset {0, 1, 3}: box x ∈ [0, 10], y ∈ [0, 6]; points 2 and 4 are ignored.
    t = l2tm(pts, subset_idxs=[0, 1, 3], output_width=10, output_height=6)
    expected = [[1, 0, 0, 0], [0, 1, 0, 0]]
    np.testing.assert_allclose(t[:2], expected, atol=1e-6)
    # MediaPipe duplicates an odd last index into a pair: same set, same matrix.
    t2 = l2tm(pts, subset_idxs=[0, 1, 3, 3], output_width=10, output_height=6)
    np.testing.assert_array_equal(t, t2)


def test_l2tm_rejects_bad_options_at_load() -> None:
    with pytest.raises(CustomOpError, match=r"'subset_idxs' has indices outside \[0, 4\)"):
        l2tm(SQUARE, subset_idxs=[0, 9])
    with pytest.raises(CustomOpError, match="scale_x/scale_y must be > 0"):
        l2tm(SQUARE, scale_x=0.0)
    with pytest.raises(CustomOpError, match="'right_rotation_idx' = 7"):
        l2tm(SQUARE, right_rotation_idx=7)
    op = make_op("Landmarks2TransformMatrix", [(1, 4, 2)], [(1, 4, 4)], subset_idxs=[0])
    with pytest.raises(CustomOpError, match=r"operator #0.*must be \[1, N, 3\]"):
        landmarks_to_transform_matrix_v2(op)


# -------------------------------------------------------------- TransformTensorBilinear


def ttb(data: np.ndarray, m: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    h, w, c = data.shape
    op = make_op(
        "TransformTensorBilinear",
        [(1, h, w, c), (1, 4, 4)],
        [(1, *out_hw, c)],
        output_height=out_hw[0],
        output_width=out_hw[1],
    )
    out = transform_tensor_bilinear_v2(op)(data.reshape(1, h, w, c).astype(np.float32), m)
    assert out.shape == (1, *out_hw, c) and out.dtype == np.float32
    return np.asarray(out)[0]


@pytest.fixture
def grid() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.standard_normal((5, 6, 3)).astype(np.float32)


def test_ttb_identity_copies_the_tensor(grid: np.ndarray) -> None:
    # Half-pixel correction of the identity is a no-op: every pixel samples itself exactly.
    np.testing.assert_array_equal(ttb(grid, matrix([[1, 0, 0, 0], [0, 1, 0, 0]]), (5, 6)), grid)


def test_ttb_integer_translation_and_zero_outside(grid: np.ndarray) -> None:
    out = ttb(grid, matrix([[1, 0, 0, 2], [0, 1, 0, 1]]), (5, 6))
    np.testing.assert_array_equal(out[:4, :4], grid[1:5, 2:6])
    # Samples beyond the last row/column are out of bounds: all channels 0, not clamped.
    assert not out[4:, :].any()
    assert not out[:, 4:].any()


def test_ttb_half_pixel_translation_averages_neighbours(grid: np.ndarray) -> None:
    out = ttb(grid, matrix([[1, 0, 0, 0.5], [0, 1, 0, 0]]), (5, 6))
    np.testing.assert_allclose(out[:, :5], 0.5 * (grid[:, :5] + grid[:, 1:]), atol=1e-6)
    # Last column samples x = 5.5 > W − 1 = 5: out of bounds, so 0 (not a partial sample).
    assert not out[:, 5].any()


def test_ttb_negative_translation_zeroes_the_first_column(grid: np.ndarray) -> None:
    out = ttb(grid, matrix([[1, 0, 0, -1], [0, 1, 0, 0]]), (5, 6))
    assert not out[:, 0].any()
    np.testing.assert_array_equal(out[:, 1:], grid[:, :5])


def test_ttb_scale_two_is_a_2x2_box_average() -> None:
    data = np.arange(4 * 6 * 2, dtype=np.float32).reshape(4, 6, 2) ** 1.5
    out = ttb(data, matrix([[2, 0, 0, 0], [0, 2, 0, 0]]), (2, 3))
    # Output pixel o samples 2·(o + 0.5) − 0.5 = 2o + 0.5: the centre of a 2×2 block.
    box = data.reshape(2, 2, 3, 2, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(out, box, rtol=1e-6)


def test_ttb_rotation_by_90_degrees_is_rot90() -> None:
    data = np.random.default_rng(3).standard_normal((4, 4, 2)).astype(np.float32)
    # Continuous map q → (N − q_y, q_x): with pixel centres this samples (N−1−oy, ox).
    out = ttb(data, matrix([[0, -1, 0, 4], [1, 0, 0, 0]]), (4, 4))
    np.testing.assert_array_equal(out, np.rot90(data, k=1, axes=(0, 1)))


def test_ttb_bilinear_weights_at_a_fractional_point() -> None:
    data = np.array([[1.0, 2.0], [3.0, 5.0]], dtype=np.float32)[:, :, None]
    # One output pixel sampling (x, y) = (0.25, 0.75): T·(0.5, 0.5) − 0.5 = (t03, t13).
    out = ttb(data, matrix([[1, 0, 0, 0.25], [0, 1, 0, 0.75]]), (1, 1))
    upper = 0.75 * 1.0 + 0.25 * 2.0
    lower = 0.75 * 3.0 + 0.25 * 5.0
    np.testing.assert_allclose(out[0, 0, 0], 0.75 * lower + 0.25 * upper, rtol=1e-7)


def ttb_loop(data: np.ndarray, m: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Spec §1.3 written as the plain per-pixel loop (float64), for comparison."""
    h, w, c = data.shape
    x = m[0, 0, :4].astype(np.float64)
    y = m[0, 1, :4].astype(np.float64)
    x[3] += 0.5 * x[0] + 0.5 * x[1] - 0.5
    y[3] += 0.5 * y[0] + 0.5 * y[1] - 0.5
    out = np.zeros((*out_hw, c))

    def read(r: int, col: int) -> np.ndarray:
        inside = 0 <= r < h and 0 <= col < w
        return data[r, col].astype(np.float64) if inside else np.zeros(c)

    for oy in range(out_hw[0]):
        for ox in range(out_hw[1]):
            tx, ty = x[0] * ox + x[1] * oy + x[3], y[0] * ox + y[1] * oy + y[3]
            if tx < 0 or tx > w - 1 or ty < 0 or ty > h - 1:
                continue
            x0, y0 = math.floor(tx), math.floor(ty)
            fx, fy = tx - x0, ty - y0
            upper = (1 - fx) * read(y0, x0) + fx * read(y0, x0 + 1)
            lower = (1 - fx) * read(y0 + 1, x0) + fx * read(y0 + 1, x0 + 1)
            out[oy, ox] = fy * lower + (1 - fy) * upper
    return out


@pytest.mark.parametrize("seed", range(6))
def test_ttb_matches_the_per_pixel_definition_on_random_affine_maps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((9, 11, 4)).astype(np.float32)
    angle, scale = rng.uniform(-math.pi, math.pi), rng.uniform(1.2, 1.8)
    r = scale * rot(angle)
    # The 8×7 grid's centre lands near the data's centre, rotated and scaled, so that
    # some samples fall inside and some outside: both rules are exercised.
    centre = np.array([5.5, 4.5]) + rng.uniform(-2, 2, size=2)
    t = centre - r @ [4.0, 3.5]
    m = matrix([[r[0, 0], r[0, 1], 0, t[0]], [r[1, 0], r[1, 1], 0, t[1]]])
    got = ttb(data, m, (7, 8))
    expected = ttb_loop(data, m, (7, 8))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    outside = ~expected.any(axis=-1)
    assert outside.any() and not outside.all()
    assert not got[outside].any()


def test_ttb_rejects_channel_mismatch() -> None:
    op = make_op("TransformTensorBilinear", [(1, 4, 4, 3), (1, 4, 4)], [(1, 2, 2, 5)])
    with pytest.raises(CustomOpError, match="5 channels but the input has 3"):
        transform_tensor_bilinear_v2(op)


# -------------------------------------------------------------------- TransformLandmarks


def tl(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    n, d = points.shape
    op = make_op("TransformLandmarks", [(1, n, d), (1, 4, 4)], [(1, n, d)])
    out = transform_landmarks_v2(op)(points.reshape(1, n, d).astype(np.float32), m)
    assert out.shape == (1, n, d) and out.dtype == np.float32
    return np.asarray(out)[0]


def test_tl_identity() -> None:
    pts = np.array([[1.0, 2.0, 3.0], [-4.0, 5.5, 6.0]])
    np.testing.assert_array_equal(tl(pts, matrix([[1, 0, 0, 0], [0, 1, 0, 0]])), pts)


def test_tl_rotation_scale_translation_2d_and_3d() -> None:
    # x' = t00·x + t01·y + t03; y' = t10·x + t11·y + t13 (no half-pixel shift);
    # t02/t12 multiply the homogeneous z = 0, so they have no effect; z is copied, unscaled.
    m = matrix([[0, -2, 99, 10], [2, 0, 99, 20]])
    pts3 = np.array([[1.0, 0.0, 7.0], [0.0, 1.0, -7.0], [3.0, 4.0, 0.5]])
    expected = np.array([[10.0, 22.0, 7.0], [8.0, 20.0, -7.0], [2.0, 26.0, 0.5]])
    np.testing.assert_allclose(tl(pts3, m), expected, atol=1e-6)
    np.testing.assert_allclose(tl(pts3[:, :2], m), expected[:, :2], atol=1e-6)


def test_tl_inverts_nothing_but_composes_with_l2tm() -> None:
    # The Attention Mesh use: L2TM maps a 16-grid to landmarks; TL maps grid points back.
    theta = math.radians(25)
    pts = np.array([20.0, 30.0]) + SQUARE @ rot(theta).T
    t = l2tm(pts).reshape(1, 4, 4).astype(np.float32)
    corners = np.array([[0.0, 0.0], [16.0, 0.0], [0.0, 16.0], [16.0, 16.0]])
    np.testing.assert_allclose(tl(corners, t), pts, atol=1e-4)


def test_tl_rejects_4d_landmarks() -> None:
    op = make_op("TransformLandmarks", [(1, 1, 5, 2), (1, 4, 4)], [(1, 1, 5, 2)])
    with pytest.raises(CustomOpError, match=r"must be \[1, N, 2\|3\]"):
        transform_landmarks_v2(op)


def test_mediapipe_kernels_are_registered_for_version_2_only() -> None:
    for name in ("Landmarks2TransformMatrix", "TransformTensorBilinear", "TransformLandmarks"):
        assert find_kernel(name, 2) is not None
        assert find_kernel(name, 1) is None


def test_a_second_kernel_for_a_taken_op_is_a_registry_error_naming_both() -> None:
    """Custom ops follow the one collision rule of every facegraph registry."""

    def other_kernel(op: CustomOp) -> Any:
        return lambda *arrays: arrays[0]

    with pytest.raises(
        RegistryError,
        match=r"'TransformLandmarks v2' is already registered by .*transform_landmarks_v2.*"
        r"other_kernel",
    ):
        register_custom_op("TransformLandmarks", version=2)(other_kernel)
    assert find_kernel("TransformLandmarks", 2) is transform_landmarks_v2
    # The same factory again is a no-op; an explicit replace overrides (and is undone).
    register_custom_op("TransformLandmarks", version=2)(transform_landmarks_v2)
    register_custom_op("FgTestAnyVersion")(other_kernel)
    try:
        assert find_kernel("FgTestAnyVersion", 7) is other_kernel
        assert ("FgTestAnyVersion", None) in registered_custom_ops()
        register_custom_op("FgTestAnyVersion", replace=True)(transform_landmarks_v2)
        assert find_kernel("FgTestAnyVersion", 1) is transform_landmarks_v2
    finally:
        unregister_custom_op("FgTestAnyVersion")
    assert find_kernel("FgTestAnyVersion", 1) is None
