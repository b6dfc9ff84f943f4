"""The face model nodes refuse a wrong or missing model clearly: at load for a model that
cannot exist, at start for a real model of the wrong kind (naming the file and the fix)."""

from __future__ import annotations

from pathlib import Path

import pytest
from facegraph import CalculatorError, Graph, GraphConfigError, graph_from_yaml

MESH_NODE = """
inputs: [tensor]
outputs: [tensors]
nodes:
  - calculator: FaceLandmarkModel
    inputs: {{TENSOR: tensor}}
    outputs: {{TENSORS: tensors}}
    options: {{model: "{model}"}}
"""


def test_a_missing_model_file_is_a_load_time_problem_with_its_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.tflite"
    with pytest.raises(GraphConfigError) as info:
        graph_from_yaml(MESH_NODE.format(model=missing), file="mesh.yaml")
    text = str(info.value)
    assert "mesh.yaml:8" in text and "nowhere.tflite" in text


def test_an_unknown_model_name_suggests_the_closest() -> None:
    with pytest.raises(GraphConfigError, match="face_landmark"):
        graph_from_yaml(MESH_NODE.format(model="face_landmarks_with_atention"))


def test_the_iris_model_in_the_mesh_node_names_the_file_and_the_expected_models(
    model_cache: Path,
) -> None:
    graph = Graph(graph_from_yaml(MESH_NODE.format(model="iris_landmark")))
    with pytest.raises(CalculatorError) as info:
        graph.start()
        graph.wait_until_done(timeout=30)
    message = str(info.value)
    assert "iris_landmark.tflite" in message
    assert "(1, 192, 192, 3)" in message and "face_landmark_with_attention" in message
