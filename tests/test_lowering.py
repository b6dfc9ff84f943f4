"""Custom ops lowered to built-in TFLite ops (facegraph.models.lowering) against the numpy
kernels they replace, on small one-op models with options and shapes the Attention Mesh
model does not use (odd subsets, a target rotation, non-square grids, 3-D landmarks,
samples outside the tensor and on its last row/column). Real LiteRT on both sides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from facegraph.models.inference import TfLiteModel
from facegraph.models.lowering import LOWERINGS, can_lower, lower_custom_ops, lowering_key
from facegraph.models.tflite_graph import TfLiteGraph

from tests.test_tflite_split import F32, build_model


def version_2(data: bytes) -> bytes:
    """``data`` with every operator code at version 2 (MediaPipe's ops are v2)."""
    import flatbuffers

    graph = TfLiteGraph(data)
    for code in graph.model.operatorCodes:
        code.version = 2
    builder = flatbuffers.Builder(1024)
    builder.Finish(graph.model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def both(
    tmp_path: Path, name: str, tensors: list[Any], op: Any, inputs: list[int]
) -> tuple[TfLiteModel, TfLiteModel]:
    data = version_2(build_model(tensors, [op], inputs, [len(tensors) - 1]))
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(data)
    lowered, split = TfLiteModel(path), TfLiteModel(path, custom_ops="split")
    assert lowered.is_lowered and [s.kind for s in lowered.steps] == ["litert"]
    assert split.is_split and [s.kind for s in split.steps] == ["custom"]
    return lowered, split


def assert_same(lowered: TfLiteModel, split: TfLiteModel, feeds: dict[str, np.ndarray]) -> None:
    a, b = lowered.run(feeds), split.run(feeds)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_landmarks_to_transform_matrix(tmp_path: Path) -> None:
    n = 20
    options = {
        "subset_idxs": [1, 4, 7, 9, 12],  # odd count
        "left_rotation_idx": 3,
        "right_rotation_idx": 17,
        "target_rotation_radians": 0.3,
        "output_height": 12,
        "output_width": 16,
        "scale_x": 1.5,
        "scale_y": 1.2,
    }
    tensors = [("lm", [1, n, 3], F32, None), ("m", [1, 4, 4], F32, None)]
    lowered, split = both(
        tmp_path, "l2tm", tensors, ("Landmarks2TransformMatrix", [0], [1], options), [0]
    )
    rng = np.random.default_rng(1)
    for _ in range(50):
        lm = rng.uniform(-50, 250, (1, n, 3)).astype(np.float32)
        assert_same(lowered, split, {"lm": lm})


def test_transform_tensor_bilinear(tmp_path: Path) -> None:
    h, w, c, oh, ow = 9, 11, 5, 6, 7
    tensors = [
        ("data", [1, h, w, c], F32, None),
        ("m", [1, 4, 4], F32, None),
        ("out", [1, oh, ow, c], F32, None),
    ]
    op = ("TransformTensorBilinear", [0, 1], [2], {"output_height": oh, "output_width": ow})
    lowered, split = both(tmp_path, "ttb", tensors, op, [0, 1])
    rng = np.random.default_rng(2)
    data = rng.normal(0, 10, (1, h, w, c)).astype(np.float32)
    cases = []
    for _ in range(40):  # rotations, scales and shifts; some samples fall outside
        a, s = rng.uniform(-np.pi, np.pi), rng.uniform(0.3, 2.0)
        m = np.eye(4, dtype=np.float32)
        m[0, :2] = s * np.cos(a), -s * np.sin(a)
        m[1, :2] = s * np.sin(a), s * np.cos(a)
        m[:2, 3] = rng.uniform(-4, 12, 2)
        cases.append(m)
    exact = np.eye(4, dtype=np.float32)
    exact[0, 0] = exact[1, 1] = np.float32((w - 1) / (ow - 1))  # samples on the last column
    exact[0, 3] = exact[1, 3] = np.float32(0.5 - 0.5 * (w - 1) / (ow - 1))
    cases.append(exact)
    for m in cases:
        assert_same(lowered, split, {"data": data, "m": m[None]})


@pytest.mark.parametrize("dims", [2, 3])
def test_transform_landmarks(tmp_path: Path, dims: int) -> None:
    n = 13
    tensors = [("lm", [1, n, dims], F32, None), ("m", [1, 4, 4], F32, None)]
    tensors.append(("out", [1, n, dims], F32, None))
    lowered, split = both(
        tmp_path, "tl", tensors, ("TransformLandmarks", [0, 1], [2], None), [0, 1]
    )
    rng = np.random.default_rng(3)
    for _ in range(20):
        m = rng.normal(0, 3, (1, 4, 4)).astype(np.float32)
        lm = rng.uniform(-100, 100, (1, n, dims)).astype(np.float32)
        assert_same(lowered, split, {"lm": lm, "m": m})


def test_a_model_with_an_op_without_lowering_is_split(tmp_path: Path) -> None:
    from tests.test_tflite_split import mixed_model

    graph = TfLiteGraph(mixed_model())
    assert not can_lower(graph) and lower_custom_ops(graph) is None
    path = tmp_path / "mixed.tflite"
    path.write_bytes(mixed_model())
    model = TfLiteModel(path)
    assert model.is_split and not model.is_lowered
    assert lowering_key("TransformLandmarks", 2) in LOWERINGS
    assert lowering_key("TransformLandmarks", 1) not in LOWERINGS
