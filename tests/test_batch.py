"""``facegraph batch``: a collection of short videos and an image folder, processed by
worker processes (and by Ray actors when Ray is installed), gives byte-identical files to
``run_source`` (what ``facegraph run`` calls) on each input; failures are retried and
reported without stopping the others; reruns skip complete inputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from facegraph.app.batch import (
    BatchError,
    BatchInput,
    discover_inputs,
    run_batch,
)
from typer.testing import CliRunner

from tests.helpers import read_video_frames

# face_mesh loads two LiteRT models: the BlazeFace detector and the Attention Mesh.
FACE_MESH_MODELS = 2
FRAMES_PER_CLIP = 10


def _write_video(path: Path, frames: list[np.ndarray]) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 30.0, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Path:
    """a/clip.mp4, b/clip.mp4 (same name, other folder), c.mp4 and stills/ (2 images).

    Depends on ``model_cache`` so the models are fetched once, before any worker starts.
    """
    import cv2
    from facegraph.app.runner import sample_video

    with sample_video() as sample:
        frames = read_video_frames(sample)
    assert len(frames) >= 100
    root = tmp_path_factory.mktemp("collection")
    _write_video(root / "a" / "clip.mp4", frames[0:FRAMES_PER_CLIP])
    _write_video(root / "b" / "clip.mp4", frames[40 : 40 + FRAMES_PER_CLIP])
    _write_video(root / "c.mp4", frames[80 : 80 + FRAMES_PER_CLIP])
    (root / "stills").mkdir()
    for i, k in enumerate((20, 60)):
        cv2.imwrite(str(root / "stills" / f"still{i}.png"), frames[k])
    (root / "notes.txt").write_text("not an input\n")
    return root


EXPECTED_OUTPUTS = {"a/clip.mp4.jsonl", "b/clip.mp4.jsonl", "c.mp4.jsonl", "stills.jsonl"}


@pytest.fixture(scope="module")
def references(collection: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """run_source's JSONL for each input of the collection (what facegraph run writes)."""
    from facegraph.app.runner import run_source

    out = tmp_path_factory.mktemp("reference")
    refs: dict[str, bytes] = {}
    for item in discover_inputs(collection):
        target = out / item.output.replace("/", "_")
        run_source("face_mesh", item.path, output=target)
        refs[item.output] = target.read_bytes()
    return refs


def _outputs(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in directory.rglob("*.jsonl")
        if p.name != "failures.jsonl"
    }


# ------------------------------------------------------------------------------ inputs


def test_a_directory_gives_its_videos_and_image_folders_named_by_relative_path(
    collection: Path,
) -> None:
    items = discover_inputs(collection)
    assert {i.output for i in items} == EXPECTED_OUTPUTS
    by_name = {i.output: i.path for i in items}
    assert by_name["a/clip.mp4.jsonl"] == str(collection / "a" / "clip.mp4")
    assert by_name["stills.jsonl"] == str(collection / "stills")
    assert all(os.path.isabs(i.path) for i in items)


def test_glob_and_list_inputs_keep_paths_relative_to_their_common_folder(
    collection: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = discover_inputs(str(collection / "**" / "clip.mp4"))
    assert [i.output for i in found] == ["a/clip.mp4.jsonl", "b/clip.mp4.jsonl"]

    monkeypatch.chdir(collection)  # listed relative paths are relative to the current folder
    listing = tmp_path / "inputs.txt"
    listing.write_text("# my clips\nb/clip.mp4\n\n./c.mp4\nstills\n")
    assert [(i.path, i.output) for i in discover_inputs(listing)] == [
        (str(collection / "b" / "clip.mp4"), "b/clip.mp4.jsonl"),
        (str(collection / "c.mp4"), "c.mp4.jsonl"),
        (str(collection / "stills"), "stills.jsonl"),
    ]


def test_bad_collections_are_refused_before_any_work(collection: Path, tmp_path: Path) -> None:
    listing = tmp_path / "inputs.txt"
    listing.write_text(f"{collection / 'c.mp4'}\n{collection / 'missing.mp4'}\n")
    with pytest.raises(BatchError, match=r"1 path\(s\) of list .* do not exist: .*missing\.mp4"):
        discover_inputs(listing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BatchError, match="no videos"):
        discover_inputs(tmp_path / "empty")
    with pytest.raises(BatchError, match="no files match"):
        discover_inputs(str(tmp_path / "*.mkv"))
    with pytest.raises(BatchError, match="not found"):
        discover_inputs(tmp_path / "nowhere")


# ------------------------------------------------------------------------------ model reuse


def test_model_reuse_hands_each_run_its_own_instances_and_loads_once(model_cache: Path) -> None:
    from facegraph.models import model_path, reuse
    from facegraph.models.inference import TfLiteModel

    path = model_path("face_detection_short_range")
    tensor = np.random.default_rng(0).uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
    expected = TfLiteModel(path).run(tensor)
    reuse.enable()
    try:
        first, second = TfLiteModel(path), TfLiteModel(path)  # one run, two nodes
        assert first._steps is not second._steps  # a model is not thread-safe: never shared
        reuse.next_run()
        third = TfLiteModel(path)
        assert third._steps is first._steps  # the next run takes over a loaded one
        assert reuse.stats() == reuse.ReuseStats(loads=2, reuses=1)
        for name, value in third.run(tensor).items():
            np.testing.assert_array_equal(value, expected[name])
    finally:
        reuse.disable()
    assert TfLiteModel(path)._steps is not first._steps  # off again: loads as before


# ------------------------------------------------------------------------------ batches


def test_local_workers_write_what_run_source_writes_loading_models_once_per_worker(
    collection: Path, references: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    summary = run_batch("face_mesh", collection, out, workers=2)
    assert (summary.total, summary.done, summary.failed, summary.skipped) == (4, 4, 0, 0)
    assert summary.frames == 3 * FRAMES_PER_CLIP + 2
    assert summary.faces == summary.frames  # one face in every frame of the sample
    assert _outputs(out) == references
    workers = summary.worker_processes
    assert 1 <= len(workers) <= 2
    assert summary.model_loads == FACE_MESH_MODELS * len(workers)
    assert summary.model_reuses == FACE_MESH_MODELS * (4 - len(workers))
    done = json.loads((out / "a" / "clip.mp4.jsonl.done").read_text())
    assert done["input"] == str(collection / "a" / "clip.mp4")
    assert done["frames"] == FRAMES_PER_CLIP
    assert done["bytes"] == len(references["a/clip.mp4.jsonl"])
    assert not list(out.rglob(".*"))  # no temporary file left behind
    assert not (out / "failures.jsonl").exists()


def test_a_corrupt_video_is_retried_reported_and_the_rest_completes_and_reruns_skip(
    collection: Path, references: dict[str, bytes], tmp_path: Path
) -> None:
    from facegraph.cli import app

    inputs = tmp_path / "videos"
    shutil.copytree(collection, inputs)
    (inputs / "a" / "broken.mp4").write_bytes(b"this is not a video\n" * 200)
    # The same frames from another folder: records differ only by their "source" path.
    expected = {
        name: data.replace(str(collection).encode(), str(inputs).encode())
        for name, data in references.items()
    }
    out = tmp_path / "out"
    command = ["batch", "face_mesh", "--inputs", str(inputs), "--output-dir", str(out)]
    runner = CliRunner()

    first = runner.invoke(app, [*command, "--workers", "2", "--retries", "1"])
    assert first.exit_code == 1, first.output
    assert "inputs: 5 (4 done, 1 failed, 0 skipped)" in first.output
    assert "broken.mp4: cannot open video" in first.output
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [(f["output"], f["attempts"]) for f in failures] == [("a/broken.mp4.jsonl", 2)]
    assert "OpenCV found no decoder" in failures[0]["error"]
    assert not (out / "a" / "broken.mp4.jsonl").exists()
    assert _outputs(out) == expected

    # Rerun: complete inputs are skipped (their files untouched), the broken one retried.
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.jsonl*") if "failures" not in p.name}
    assert len(stamps) == 8  # 4 outputs and their .done sidecars
    second = runner.invoke(app, [*command, "--workers", "1", "--retries", "0"])
    assert second.exit_code == 1, second.output
    assert "inputs: 5 (0 done, 1 failed, 4 skipped)" in second.output
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # A changed input is processed again; without the broken file the batch succeeds.
    (inputs / "a" / "broken.mp4").unlink()
    os.utime(inputs / "c.mp4", ns=(1_000_000_000, 1_000_000_000))
    third = runner.invoke(app, [*command, "--workers", "1"])
    assert third.exit_code == 0, third.output
    assert "inputs: 4 (1 done, 0 failed, 3 skipped)" in third.output
    assert not (out / "failures.jsonl").exists()
    assert _outputs(out) == expected


def test_a_changed_side_packet_makes_outputs_stale(collection: Path, tmp_path: Path) -> None:
    from facegraph.app.batch import BatchConfig, is_complete

    item = BatchInput(str(collection / "c.mp4"), "c.mp4.jsonl")
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)  # a process that has exited: its temporaries are stale
    stale = out / f".c.mp4.jsonl.{pid}.0badc0de.tmp.jsonl"  # left by a worker that died here
    stale.write_text("{}\n")
    other = out / f".c.jsonl.{pid}.0badc0de.tmp.jsonl"  # another input's ("c/") temporary
    other.write_text("{}\n")
    summary = run_batch("face_mesh", [item], out, workers=1)
    assert summary.done == 1
    assert not stale.exists()
    assert other.exists()
    assert is_complete(BatchConfig("face_mesh", str(out)), item)
    assert not is_complete(BatchConfig("face_mesh", str(out), {"num_faces": 2}), item)
    assert not is_complete(BatchConfig("face_mesh_static", str(out)), item)
    (out / "c.mp4.jsonl").write_text("truncated\n")
    assert not is_complete(BatchConfig("face_mesh", str(out)), item)


def test_without_ray_the_error_says_how_to_install_it(
    collection: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(BatchError, match=r'pip install "facegraph\[ray\]"'):
        run_batch("face_mesh", collection, tmp_path / "out", ray_address="local")


def test_ray_actors_write_what_run_source_writes(
    collection: Path, references: dict[str, bytes], tmp_path: Path
) -> None:
    ray = pytest.importorskip("ray", reason="Ray is optional: pip install 'facegraph[ray]'")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        configure_logging=False,
        log_to_driver=False,
    )
    try:
        out = tmp_path / "out"
        summary = run_batch("face_mesh", collection, out, ray_address="local")
        assert ray.is_initialized()  # an existing Ray connection is the caller's to close
    finally:
        ray.shutdown()
    assert summary.executor == "2 Ray actors (local Ray)"
    assert (summary.done, summary.failed) == (4, 0)
    assert _outputs(out) == references
    assert summary.model_loads == FACE_MESH_MODELS * len(summary.worker_processes)


CRASHING_GRAPH = """\
name: exit_on_dark_frame
inputs: [image]
outputs: [faces]
nodes:
  - calculator: tests.batch_plugins:ExitOnDarkFrame
    inputs: {IMAGE: image}
    outputs: {FACES: faces}
"""


def test_a_worker_that_dies_is_replaced_and_only_its_input_fails(
    collection: Path, tmp_path: Path
) -> None:
    import cv2

    inputs = tmp_path / "videos"
    inputs.mkdir()
    shutil.copy(collection / "c.mp4", inputs / "bright.mp4")
    _write_video(inputs / "dark.mp4", [np.zeros((120, 160, 3), np.uint8)] * 5)
    shutil.copy(collection / "a" / "clip.mp4", inputs / "later.mp4")
    graph = tmp_path / "crash.yaml"
    graph.write_text(CRASHING_GRAPH)
    assert cv2.VideoCapture(str(inputs / "dark.mp4")).isOpened()

    out = tmp_path / "out"
    summary = run_batch(graph, inputs, out, workers=1, retries=1, allow_imports=True)
    assert (summary.done, summary.failed) == (2, 1)
    assert [(f.output, f.attempts, f.error) for f in summary.failures] == [
        ("dark.mp4.jsonl", 2, "a worker process died")
    ]
    assert len(summary.worker_processes) >= 1
    for name in ("bright.mp4.jsonl", "later.mp4.jsonl"):
        lines = (out / name).read_text().splitlines()
        assert len(lines) == FRAMES_PER_CLIP
        assert json.loads(lines[0])["faces"] == []
