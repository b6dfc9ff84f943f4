"""``facegraph run`` as a user runs it: real subprocesses, real models, the bundled sample.

Each test starts the installed command line in a fresh Python process (as a shell would)
and checks what a user looks at: the files written (JSONL schema, JSON array, decodable
video, overlay images), stdout/stderr, and the exit code. ``FACEGRAPH_NO_CAMERA=1`` keeps
a developer's webcam out of the default-input test (CI has none anyway).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from facegraph import Calculator, CalculatorContext, CalculatorError, Input, Output, graph_from_yaml
from facegraph.app.runner import RunSummary, run_source, sample_video
from facegraph.config import shipped_graphs
from facegraph.vision.media import CameraSource, open_source
from pydantic import BaseModel

from tests.helpers import read_video_frames, skip_unless_ci

if "face_mesh" not in shipped_graphs():
    skip_unless_ci("face_mesh graph not shipped", allow_module_level=True)

SAMPLE_FRAMES = 125
CLI = [sys.executable, "-c", "from facegraph.cli import main; main()", "run"]


@pytest.fixture(scope="module", autouse=True)
def _models() -> None:
    """Models in the cache before the subprocesses start (they would fetch on first use)."""
    from facegraph.models import fetch, resolve_cache_dir

    fetch(cache_dir=resolve_cache_dir())


def env() -> dict[str, str]:
    return {**os.environ, "FACEGRAPH_NO_CAMERA": "1", "COLUMNS": "200"}


def facegraph_run(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        check=False,
        cwd=cwd,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_record(record: dict[str, Any], index: int) -> None:
    """The per-frame object of the issue: frame, timestamp_us, source, size, faces, and the
    face_mesh graphs' other output streams (detections, rois) under their names."""
    base = {"frame", "timestamp_us", "source", "width", "height", "faces"}
    assert set(record) == base | {"detections", "rois"}
    assert record["frame"] == index
    assert isinstance(record["timestamp_us"], int)
    assert (record["width"], record["height"]) == (400, 300)
    for face in record["faces"]:
        assert 0.5 <= face["score"] <= 1.0
        box = face["box"]
        assert set(box) == {"xMin", "xMax", "yMin", "yMax", "width", "height"}
        assert 0 <= box["xMin"] < box["xMax"] <= 400 and 0 <= box["yMin"] < box["yMax"] <= 300
        assert len(face["keypoints"]) == 478
        assert all({"x", "y", "z"} <= set(k) for k in face["keypoints"])
        xs = np.array([k["x"] for k in face["keypoints"]])
        # Every landmark lies in (or very near) its face box.
        assert box["xMin"] - 1 <= xs.min() and xs.max() <= box["xMax"] + 1


def video_frames(path: Path) -> list[np.ndarray]:
    return read_video_frames(path)


@pytest.fixture(scope="module")
def sample_frames() -> list[np.ndarray]:
    with sample_video() as path:
        return [f.image for f in open_source(str(path))]


@pytest.fixture
def photo_dir(tmp_path: Path, sample_frames: list[np.ndarray]) -> Path:
    """Three frames of the sample as PNG files, a blank one and a corrupt "JPEG"."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in (0, 40, 80):
        cv2.imwrite(str(folder / f"frame{i}.png"), sample_frames[i][:, :, ::-1])
    cv2.imwrite(str(folder / "zblank.png"), np.full((300, 400, 3), 90, np.uint8))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return folder


def test_main_job_on_the_bundled_sample_writes_jsonl_and_a_video(tmp_path: Path) -> None:
    # The README's command (no --input, no camera): landmarks + overlay in a new folder.
    proc = facegraph_run(
        "face_mesh", "--output", "out/landmarks.jsonl", "--render", "out/overlay.mp4", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "input: bundled sample video" in proc.stderr
    assert "landmarks: out/landmarks.jsonl" in proc.stdout
    assert "rendering: out/overlay.mp4" in proc.stdout
    assert f"{SAMPLE_FRAMES} frames" in proc.stdout

    records = read_jsonl(tmp_path / "out" / "landmarks.jsonl")
    assert len(records) == SAMPLE_FRAMES
    for i, record in enumerate(records):
        check_record(record, i)
        assert record["source"].endswith("face_sample.mp4")
    stamps = [r["timestamp_us"] for r in records]
    assert stamps == sorted(set(stamps)) and stamps[1] == 40_000  # 25 fps
    with_face = sum(1 for r in records if len(r["faces"]) == 1)
    assert with_face >= 0.9 * SAMPLE_FRAMES  # one man, always in view

    frames = video_frames(tmp_path / "out" / "overlay.mp4")
    assert len(frames) == SAMPLE_FRAMES and frames[0].shape == (300, 400, 3)
    # The overlay is drawn: the rendered frame differs from the input around the face.
    with sample_video() as path:
        first = video_frames(path)[0]
    box = records[0]["faces"][0]["box"]
    y0, y1 = int(box["yMin"]), int(box["yMax"])
    x0, x1 = int(box["xMin"]), int(box["xMax"])
    diff = np.abs(frames[0][y0:y1, x0:x1].astype(int) - first[y0:y1, x0:x1].astype(int))
    assert diff.mean() > 10


def test_a_file_runs_deterministically_unless_threads_are_asked_for(tmp_path: Path) -> None:
    outputs = {}
    for flags, mode in (((), "deterministic"), (("--threads", "2"), "threads")):
        out = tmp_path / f"{mode}.jsonl"
        proc = facegraph_run(
            "face_mesh",
            "--input",
            "sample",
            "--max-frames",
            "5",
            "--output",
            str(out),
            *flags,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        assert f"graph 'face_mesh', {mode})" in proc.stdout
        outputs[mode] = out.read_text()
    assert outputs["deterministic"] == outputs["threads"]  # the same lines either way
    proc = facegraph_run(
        "face_mesh", "--input", "sample", "--deterministic", "--threads", "2", cwd=tmp_path
    )
    assert proc.returncode == 2
    assert "--deterministic and --threads exclude each other" in proc.stderr


def test_image_folder_with_a_corrupt_file_reports_it_and_runs_the_rest(
    tmp_path: Path, photo_dir: Path
) -> None:
    proc = facegraph_run(
        "face_mesh",
        "--input",
        str(photo_dir),
        "--output",
        "faces.json",
        "--render",
        "overlays/",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "broken.jpg" in proc.stderr and "Traceback" not in proc.stderr
    records = json.loads((tmp_path / "faces.json").read_text())  # one JSON array
    names = ["frame0.png", "frame40.png", "frame80.png", "zblank.png"]
    assert [Path(r["source"]).name for r in records] == names
    for i, record in enumerate(records):
        check_record(record, i)
    assert [len(r["faces"]) for r in records] == [1, 1, 1, 0]  # no face: "faces": []
    assert sorted(p.name for p in (tmp_path / "overlays").iterdir()) == names
    assert "skipped 1 unreadable file(s)" in proc.stdout and "broken.jpg" in proc.stdout
    assert not list(tmp_path.glob(".faces.json*"))  # no temporary file left behind


def test_stdout_output_is_pure_jsonl_and_max_frames_stops(tmp_path: Path) -> None:
    proc = facegraph_run(
        "face_mesh", "--input", "sample", "--output", "-", "--max-frames", "7", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]  # nothing else on stdout
    assert [r["frame"] for r in records] == list(range(7))
    assert "7 frames (--max-frames reached)" in proc.stderr


def test_sigterm_mid_run_stops_cleanly_with_complete_outputs(tmp_path: Path) -> None:
    # stdout is a pipe we stop reading: the run blocks on its writes, so the signal
    # surely arrives mid-run (no timing guess); then we drain what it still writes.
    proc = subprocess.Popen(
        [*CLI, "face_mesh", "--output", "-", "--render", "overlay.mp4"],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = [proc.stdout.readline() for _ in range(3)]
    proc.send_signal(signal.SIGTERM)
    rest, err = proc.communicate(timeout=60)
    lines = [line for line in first + rest.splitlines() if line.strip()]
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert "SIGTERM: stopping after this frame" in err and "(stopped by signal)" in err
    records = [json.loads(line) for line in lines]  # every line is complete JSON
    n = len(records)
    assert 3 <= n < SAMPLE_FRAMES
    assert [r["frame"] for r in records] == list(range(n))
    assert f"{n} frames (stopped by signal)" in err
    assert len(video_frames(tmp_path / "overlay.mp4")) == n  # the video was finalised


def test_profile_trace_side_packets_and_deterministic_mode(tmp_path: Path) -> None:
    proc = facegraph_run(
        "face_mesh",
        "--input",
        "sample",
        "--max-frames",
        "4",
        "--side",
        "num_faces=2",
        "--deterministic",
        "--profile",
        "--trace",
        "trace.json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "node timings" in proc.stdout and "FaceLandmarkModel" in proc.stdout
    assert "deterministic" in proc.stdout and "trace: trace.json" in proc.stdout
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    assert any(e.get("name") == "landmarks/model" and e["ph"] == "X" for e in events)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no_such_graph"], "no shipped graph of that name"),
        (["face_mesh", "--input", "missing.mp4"], "input not found: missing.mp4"),
        (["face_mesh", "-i", "sample", "--output", "faces.txt"], "use a .jsonl"),
        (["face_mesh", "-i", "sample", "--show"], "--serve"),
        (["face_mesh", "-i", "sample", "--serve", "nonsense"], "[HOST:]PORT"),
        (["face_mesh", "-i", "sample", "--side", "no_such=1"], "unknown side packet"),
    ],
)
def test_errors_are_one_clear_message(tmp_path: Path, args: list[str], message: str) -> None:
    proc = facegraph_run(*args, cwd=tmp_path)
    assert proc.returncode not in (0, None)
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing half-written


# -- run_source, the function behind `run` and `batch` -----------------------------------------


def test_run_source_stop_event_ends_after_the_current_frame(tmp_path: Path) -> None:
    stop = threading.Event()
    seen: list[int] = []

    def on_frame(result: Any) -> None:
        seen.append(result.frame.info.index)
        if len(seen) == 5:
            stop.set()

    with sample_video() as path:
        t0 = time.perf_counter()
        summary = run_source(
            "face_mesh", path, output=tmp_path / "a.json", on_frame=on_frame, stop=stop
        )
        wall = time.perf_counter() - t0
    assert isinstance(summary, RunSummary)
    assert summary.stopped == "stop" and summary.frames == 5 and seen == list(range(5))
    assert summary.frames_with_faces == 5 and summary.faces == 5
    assert summary.outputs == [str(tmp_path / "a.json")]
    assert len(json.loads((tmp_path / "a.json").read_text())) == 5
    # elapsed is a part of the call (graph start excluded); fps is frames over it.
    assert 0 < summary.elapsed < wall and summary.fps == pytest.approx(5 / summary.elapsed)
    assert summary.stats is not None


def test_run_source_reports_skipped_files(tmp_path: Path, photo_dir: Path) -> None:
    summary = run_source("face_mesh_static", str(photo_dir / "*"), max_frames=2)
    assert summary.frames == 2 and summary.stopped == "max_frames"
    assert [Path(p).name for p, _ in summary.errors] == ["broken.jpg"]


def test_serve_shows_the_running_graph_on_a_local_page(tmp_path: Path) -> None:
    # Held mid-run by not reading its stdout (as in the SIGTERM test) while we load the page.
    proc = subprocess.Popen(
        # --no-loop: the run must end with the clip (with --serve it would loop until Ctrl-C)
        [*CLI, "face_mesh", "--input", "sample", "--output", "-", "--serve", "0", "--no-loop"],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        proc.stdout.readline()
        proc.stdout.readline()  # frame 1 is written after frame 0 is published
        line = ""
        while "live view:" not in line:
            line = proc.stderr.readline()
            assert line, "no 'live view:' line on stderr"
        url = line.split("live view:", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:")  # loopback by default
        with urllib.request.urlopen(url + "stats.json", timeout=10) as response:
            stats = json.loads(response.read())
        assert stats["frames"] >= 1 and stats["faces"] == 1
        assert (stats["width"], stats["height"]) == (400, 300)
        model = [n for n in stats["nodes"] if n["node"] == "landmarks/model"]
        assert model and model[0]["calls"] >= 1 and model[0]["mean_ms"] > 0
        with urllib.request.urlopen(url + "frame.jpg", timeout=10) as response:
            jpeg = np.frombuffer(response.read(), np.uint8)
        assert cv2.imdecode(jpeg, cv2.IMREAD_COLOR).shape == (300, 400, 3)
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"stream.mjpg" in response.read()
    finally:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert len(out.splitlines()) == SAMPLE_FRAMES - 2


def test_a_camera_that_stops_ends_the_run_cleanly_keeping_the_outputs(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # A real capture device stands in for a webcam: OpenCV reading the sample file as fast
    # as it decodes (faster than the graph: the flow limiter must drop frames), which then
    # fails every read, as an unplugged camera does.
    with sample_video() as path:
        camera = CameraSource.from_capture(cv2.VideoCapture(str(path)), "camera:test")
        summary = run_source("face_mesh", camera, output=tmp_path / "cam.jsonl")
    assert summary.live and summary.stopped == "end"
    assert summary.frames >= 1 and summary.dropped >= 1
    assert summary.frames + summary.dropped <= SAMPLE_FRAMES
    records = read_jsonl(tmp_path / "cam.jsonl")
    assert len(records) == summary.frames
    assert all(r["source"] == "camera:test" for r in records)
    stamps = [r["timestamp_us"] for r in records]
    assert stamps == sorted(set(stamps))
    assert "camera:test stopped delivering frames" in capfd.readouterr().err


def test_help_shows_every_option_with_examples() -> None:
    from facegraph.cli import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--input", "--output", "--render", "--show", "--serve", "--side", "--trace"):
        assert option in result.stdout
    assert "Examples" in result.stdout
    assert "facegraph run face_mesh --input 0 --serve 8080" in result.stdout
    assert "facegraph run face_mesh_static --input photos/ --output - --render overlays/" in (
        result.stdout
    )


class FailOnFrame(Calculator):
    """Passes frames on as an empty face list; raises on the frame numbered ``at``."""

    class Options(BaseModel):
        at: int = 3

    IN = Input("IN", np.ndarray)
    OUT = Output("OUT", list)

    def open(self, ctx: CalculatorContext) -> None:
        self.seen = 0

    def process(self, ctx: CalculatorContext) -> None:
        if self.seen == self.options.at:
            raise ValueError(f"broken on frame {self.seen}")
        self.seen += 1
        ctx.emit(self.OUT, [])


def test_a_failing_graph_raises_after_finishing_the_outputs(tmp_path: Path) -> None:
    spec = graph_from_yaml(
        """
name: fails
inputs: [image]
outputs: [faces]
nodes:
  - {calculator: "tests.test_run_cli:FailOnFrame", options: {at: 3},
     inputs: {IN: image}, outputs: {OUT: faces}}
""",
        allow_imports=True,
    )
    with sample_video() as path, pytest.raises(CalculatorError, match="broken on frame 3"):
        run_source(spec, path, output=tmp_path / "f.json", render=tmp_path / "f.mp4")
    records = json.loads((tmp_path / "f.json").read_text())  # closed, valid, moved in place
    assert [r["frame"] for r in records] == [0, 1, 2]
    assert len(video_frames(tmp_path / "f.mp4")) == 3
