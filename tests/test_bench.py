"""``facegraph bench`` and its library (facegraph.app.bench) on real models."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
from facegraph import Graph, load_graph
from facegraph.app.bench import (
    STANDARD_ROWS,
    BenchConfig,
    BenchError,
    MediaPipeBaseline,
    Pacer,
    block_positions,
    graph_models,
    grid_photo_frames,
    run_bench,
    run_scaling,
    run_table,
    summarize_table_runs,
    with_threads,
)
from facegraph.app.runner import sample_video
from facegraph.cli import app
from typer.testing import CliRunner

MP_PYTHON = os.environ.get("FACEGRAPH_MEDIAPIPE_PYTHON")
NO_MP_PYTHON = "set FACEGRAPH_MEDIAPIPE_PYTHON to a python with mediapipe 0.10.14"
HAS_MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None

# Documented keys of the --json output (see bench_cli / README "Benchmarks").
TOP_KEYS = {
    "graph",
    "input",
    "frame_size",
    "frames",
    "warmup",
    "mode",
    "threads",
    "side_packets",
    "static_image_mode",
    "interval_ms",
    "load_average",
    "ours",
    "nodes",
    "floor",
    "baseline",
    "ratio",
    "engine_ms_per_frame",
}
STAT_KEYS = {"mean_ms", "p50_ms", "p99_ms", "fps", "per_frame_ms"}


@pytest.fixture(scope="module")
def sample() -> Iterator[str]:
    with sample_video() as path:
        yield str(path)


def bench(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["bench", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def landmark_model_cpu_ms(model_cache: Path) -> float:
    """Process CPU time of one landmark-model call (the reference fixture's input)."""
    from facegraph.models import model_path
    from facegraph.models.inference import TfLiteModel

    from tests.test_inference import model_input

    model = TfLiteModel(model_path("face_landmark_with_attention", cache_dir=model_cache))
    x = model_input("face_landmark_with_attention")
    model.run(x)
    c0 = time.process_time()
    for _ in range(10):
        model.run(x)
    return (time.process_time() - c0) * 1e3 / 10


def test_bench_command_report_json_and_plot(sample: str, tmp_path: Path, model_cache: Path) -> None:
    out_json, out_png = tmp_path / "b.json", tmp_path / "b.png"
    model_ms = landmark_model_cpu_ms(model_cache)
    c0 = time.process_time()
    code, text = bench(
        "face_mesh",
        "--input",
        sample,
        "--frames",
        "10",
        "--warmup",
        "2",
        "--json",
        str(out_json),
        "--plot",
        str(out_png),
    )
    command_cpu_ms = (time.process_time() - c0) * 1e3
    assert code == 0, text
    for section in ("per-frame time", "CPU ms/frame", "peak RSS", "inference floor", "per node"):
        assert section in text
    assert "landmarks/model" in text  # the per-node breakdown names the graph's nodes
    data = json.loads(out_json.read_text())
    assert data.keys() >= TOP_KEYS
    assert data["ours"].keys() >= STAT_KEYS and data["floor"].keys() >= STAT_KEYS
    assert data["frames"] == 10 and len(data["ours"]["per_frame_ms"]) == 10
    assert data["frame_size"] == [400, 300] and data["static_image_mode"] is False
    assert data["ours"]["faces_per_frame"] == 1.0  # one face in every sample frame
    # CPU time of the 10 timed frames: a part of the whole command's CPU time, and at least
    # half the CPU of the one landmark-model call each frame makes (both are process CPU
    # time, so machine load does not move them much; measured ratio ≈ 1.8).
    cpu_ms = data["ours"]["cpu_ms_per_frame"]
    assert 0.5 * model_ms < cpu_ms and 10 * cpu_ms < command_cpu_ms, (cpu_ms, model_ms)
    assert data["ours"]["peak_rss_mb"] > 50
    assert data["baseline"] is None and data["ratio"] is None
    # The floor is a subset of the graph's work (its model calls only).
    assert sum(data["floor"]["per_frame_ms"]) < sum(data["ours"]["per_frame_ms"])
    model = next(n for n in data["nodes"] if n["node"] == "landmarks/model")
    assert model["calls"] == 12  # warm-up + timed frames, one face each
    # Engine time is the profiled pass minus the nodes' own time: a part of each frame.
    per_frame = data["ours"]["per_frame_ms"]
    assert 0.0 <= data["engine_ms_per_frame"] < sum(per_frame) / len(per_frame)
    assert "engine overhead" in text
    png = cv2.imread(str(out_png))
    assert png is not None and png.shape[0] > 100 and png.shape[1] > 100


@pytest.mark.skipif(HAS_MEDIAPIPE, reason="mediapipe is importable here")
def test_baseline_without_mediapipe_says_how_to_install(
    sample: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FACEGRAPH_MEDIAPIPE_PYTHON", raising=False)
    code, text = bench("face_mesh", "--input", sample, "--frames", "2", "--baseline", "mediapipe")
    assert code == 2
    assert "mediapipe is not importable" in text
    assert "facegraph[reference]" in text and "--baseline-python" in text


def test_baseline_python_missing_file(sample: str, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "python"
    code, text = bench(
        "face_mesh",
        "--input",
        sample,
        "--frames",
        "2",
        "--baseline",
        "mediapipe",
        "--baseline-python",
        str(missing),
    )
    assert code == 2 and "no such file" in text


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    code, text = bench("face_mesh", "--input", str(tmp_path / "nothing.mp4"), "--frames", "2")
    assert code == 2 and "input not found" in text


def test_a_node_that_cannot_open_is_one_line_naming_it(model_cache: Path) -> None:
    # --threads reaches the detector node; yunet runs no LiteRT model, so a count fails
    # its open: one line naming the node and why, exit 1 as in facegraph run, no traceback.
    code, text = bench(
        "face_mesh_static", "--faces", "1", "--frames", "2", "--threads", "1",
        "--side", "detector=yunet",
    )  # fmt: skip
    assert code == 1, text
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if line.startswith("error:")]
    assert lines == [
        "error: node 'detection/detector' failed in open: detector 'yunet' takes no threads "
        "setting (it runs no LiteRT model); use threads: auto for it"
    ], text


def test_outputs_never_overwrite_the_input_and_bad_paths_fail_before_timing(
    sample: str, tmp_path: Path
) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(Path(sample).read_bytes())
    before = clip.read_bytes()
    for option in ("--json", "--plot"):
        code, text = bench("face_mesh", "--input", str(clip), option, str(clip), "--frames", "1")
        assert code == 2 and option in text and "timing" not in text, text
        assert clip.read_bytes() == before
    same = str(tmp_path / "out.json")
    code, text = bench("face_mesh", "--input", str(clip), "--json", same, "--plot", same)
    assert code == 2 and "--json" in text and "--plot" in text
    code, text = bench("--table", "--json", str(tmp_path / "no" / "t.json"), "--frames", "1")
    assert code == 2 and "does not exist" in text and "opening" not in text
    # A write that fails at the end (a folder where the file goes): one line, no temporary.
    (tmp_path / "dir.json").mkdir()
    code, text = bench(
        "face_mesh", "--input", str(clip), "--frames", "1", "--warmup", "0", "--no-profile",
        "--json", str(tmp_path / "dir.json"),
    )  # fmt: skip
    assert code == 2 and f"cannot write {tmp_path / 'dir.json'}" in text
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_block_positions_split_each_blocks_first_frame_from_its_second_half() -> None:
    # Two blocks of 6: a slow first frame after each pause, then settling.
    ms = [9.0, 5.0, 4.0, 2.0, 2.0, 3.0, 7.0, 6.0, 4.0, 1.0, 2.0, 2.0]
    assert block_positions(ms, 6) == {"first_p50_ms": 8.0, "late_p50_ms": 2.0}
    # A last, shorter block counts by position too; blocks under 4 frames: no split.
    assert block_positions([*ms, 5.0, 1.0], 6) == {"first_p50_ms": 7.0, "late_p50_ms": 2.0}
    assert block_positions(ms, 3) is None and block_positions(ms[:3], 6) is None


def test_pacer_starts_frames_an_interval_apart_like_a_camera() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 9))
        now[0] += seconds

    pacer = Pacer(0.040, clock=lambda: now[0], sleep=sleep)
    pacer.block()
    starts = []
    for work in (0.010, 0.055, 0.010, 0.010):  # the second frame overruns its interval
        pacer.wait()
        starts.append(round(now[0] - 100.0, 9))
        now[0] += work
    # A block's first frame waits a whole interval; an overrun frame's successor starts at
    # once, and the one after it an interval later.
    assert starts == [0.040, 0.080, 0.135, 0.175]
    assert slept == [0.040, 0.030, 0.030]
    unpaced = Pacer(None, clock=lambda: now[0], sleep=sleep)
    unpaced.block()
    unpaced.wait()
    assert len(slept) == 3


def test_interval_option_paces_frames_and_says_so(tmp_path: Path) -> None:
    out_json = tmp_path / "p.json"
    args = ["face_mesh", "--faces", "1", "--size", "320x240", "--frames", "2", "--warmup", "0"]
    code, text = bench(*args, "--no-profile", "--interval", "5", "--json", str(out_json))
    assert code == 0, text
    assert "frames started 5 ms apart (200 fps, idle between)" in text
    assert json.loads(out_json.read_text())["interval_ms"] == 5.0
    code, text = bench("face_mesh", "--scaling", "--interval", "5")
    assert code == 2 and "not --scaling" in text
    with pytest.raises(BenchError, match="interval must be > 0"):
        run_bench(BenchConfig(graph="face_mesh", input="synthetic:1", interval_ms=0.0))


def test_interval_paces_the_profiled_pass_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """At a camera's cadence each frame starts cold: the per-node breakdown must come from
    frames paced like the timed ones, or it describes another regime."""
    import facegraph.app.bench as bench_module

    waits: list[str] = []

    class CountingPacer(Pacer):
        def wait(self) -> None:
            waits.append("wait")
            super().wait()

    monkeypatch.setattr(bench_module, "Pacer", CountingPacer)
    result = run_bench(
        BenchConfig(graph="face_mesh", input="synthetic:1", frames=2, warmup=1, interval_ms=2.0)
    )
    assert result["nodes"], "the profiled pass ran"
    # Ours and the floor on the 2 timed frames, the profiled pass on all 3 (warm-up too).
    assert len(waits) == 2 + 2 + 3


@pytest.mark.skipif(MP_PYTHON is None, reason=NO_MP_PYTHON)
def test_mediapipe_worker_paces_its_frames(tmp_path: Path) -> None:
    frames = grid_photo_frames(3, 320, 240, 1)
    worker = MediaPipeBaseline(frames, False, 1, MP_PYTHON, tmp_path)
    try:
        t0 = time.perf_counter()
        result = worker.run(0, 3, 0.1)
        took = time.perf_counter() - t0
    finally:
        worker.close()
    assert result["faces"] == [1, 1, 1]
    # Each of the three frames started after the worker's own 0.1 s wait (a lower bound
    # set by its sleeps, not by the machine's speed).
    assert took >= 0.3


@pytest.mark.skipif(MP_PYTHON is None, reason=NO_MP_PYTHON)
def test_mediapipe_baseline_in_a_worker(sample: str) -> None:
    result = run_bench(
        BenchConfig(
            graph="face_mesh_static",
            input=sample,
            frames=6,
            warmup=1,
            baseline="mediapipe",
            baseline_python=MP_PYTHON,
            block=4,
            profile_pass=False,
        )
    )
    base = result["baseline"]
    assert base["version"] == "0.10.14" and base["static_image_mode"] is True
    assert len(base["per_frame_ms"]) == 6 and base["faces_per_frame"] == 1.0
    assert base["in_block"] == block_positions(base["per_frame_ms"], 4)
    assert result["ours"]["detector_frames"] == 6  # static graph: detector on every frame
    ratio = result["ratio"]
    assert ratio["p50"] == pytest.approx(result["ours"]["p50_ms"] / base["p50_ms"])
    late = result["ours"]["in_block"]["late_p50_ms"] / base["in_block"]["late_p50_ms"]
    assert ratio["late_in_block_p50"] == pytest.approx(late)


@pytest.mark.skipif(
    not os.environ.get("FACEGRAPH_MEDIAPIPE_TASKS_PYTHON"),
    reason="FACEGRAPH_MEDIAPIPE_TASKS_PYTHON is not set (the Python of a mediapipe 1.2.3 venv)",
)
def test_mediapipe_tasks_baseline_in_a_worker(sample: str) -> None:
    side = {"blendshapes": True, "head_pose": True}
    result = run_bench(
        BenchConfig(
            graph="face_landmarker",
            input=sample,
            frames=6,
            warmup=1,
            side_packets=side,
            baseline="mediapipe-tasks",
            baseline_python=os.environ["FACEGRAPH_MEDIAPIPE_TASKS_PYTHON"],
            block=3,
            profile_pass=False,
        )
    )
    base = result["baseline"]
    assert base["name"] == "mediapipe-tasks" and base["version"] == "1.2.3"
    assert base["static_image_mode"] is False and base["faces_per_frame"] == 1.0
    assert result["ours"]["faces_per_frame"] == 1.0
    floor = result["floor"]
    assert floor["landmark_model"] == "face_landmarks_v2"
    assert floor["detector"] == "face_landmarker" and floor["blendshapes_model"]
    assert floor["share_of_ours_p50"] > 0


def test_with_threads_sets_model_nodes_only() -> None:
    spec = load_graph("face_mesh")
    two = with_threads(spec, 2)
    assert two.node("landmarks/model").options.threads == 2  # type: ignore[attr-defined]
    assert spec.node("landmarks/model").options.threads == "auto"  # type: ignore[attr-defined]
    # The detector's model too, and the floor runs it as the graph does.
    assert two.node("detection/detector").options.threads == 2  # type: ignore[attr-defined]
    assert spec.node("detection/detector").options.threads == "auto"  # type: ignore[attr-defined]
    assert graph_models(two, {}).detector_threads == 2
    assert graph_models(spec, {}).detector_threads == "auto"
    assert two.node("landmarks/crop").options == spec.node("landmarks/crop").options
    graph = Graph(two, mode="deterministic")
    graph.start({})
    frame = grid_photo_frames(1, 320, 240, 1)[0]
    assert len(graph.run_once({"image": frame}).get("faces") or []) == 1
    graph.close_all_inputs()
    graph.wait_until_done()


def test_grid_frames_hold_the_requested_faces() -> None:
    frame = grid_photo_frames(1, 640, 480, 4)[0]
    assert frame.shape == (480, 640, 3)
    graph = Graph(load_graph("face_mesh_static"), mode="deterministic")
    graph.start({"num_faces": 4})
    assert len(graph.run_once({"image": frame}).get("faces") or []) == 4
    graph.close_all_inputs()
    graph.wait_until_done()


def test_scaling_rows() -> None:
    rows = run_scaling(
        "face_mesh", faces=(2,), sizes=((320, 240),), threads=(1, 2), frames=3, warmup=1
    )
    assert [(r["faces"], r["threads"]) for r in rows] == [(2, 1), (2, 2)]
    assert all(r["faces_found"] == 2 for r in rows)
    assert all(0 < r["min_ms"] <= r["p50_ms"] <= r["p99_ms"] <= r["max_ms"] for r in rows)


def test_synthetic_input_with_side_packets() -> None:
    result = run_bench(
        BenchConfig(
            graph="face_mesh",
            input="synthetic:2",
            frames=4,
            warmup=1,
            side_packets={"num_faces": 2},
            size=(320, 240),
            threads=2,
            profile_pass=False,
        )
    )
    assert result["frame_size"] == [320, 240] and result["threads"] == 2
    assert result["floor"]["model_threads"] == 2
    assert result["ours"]["faces_per_frame"] == 2.0


def test_faces_option_makes_synthetic_frames_with_that_many_faces(tmp_path: Path) -> None:
    out_json = tmp_path / "b.json"
    args = ["face_mesh_static", "--faces", "2", "--size", "480x270", "--frames", "2"]
    args += ["--custom-ops", "split"]  # the general path still works inside a graph
    code, text = bench(*args, "--warmup", "0", "--no-profile", "--json", str(out_json))
    assert code == 0, text
    data = json.loads(out_json.read_text())
    assert data["custom_ops"] == "split"
    assert data["input"] == "synthetic:2" and data["side_packets"] == {"num_faces": 2}
    assert data["frame_size"] == [480, 270] and data["ours"]["faces_per_frame"] == 2.0
    code, text = bench("face_mesh", "--faces", "2", "--input", "synthetic", "--frames", "1")
    assert code == 2 and "not both" in text


def test_table_runs_the_four_standard_rows(tmp_path: Path) -> None:
    out_json = tmp_path / "t.json"
    code, text = bench(
        "--table", "--baseline", "none", "--frames", "2", "--warmup", "0", "--json", str(out_json)
    )
    assert code == 0, text
    rows = json.loads(out_json.read_text())["rows"]
    assert [(r["graph"], r["frame_size"], r["side_packets"]["num_faces"]) for r in rows] == [
        (graph, [w, h], faces) for graph, w, h, faces in STANDARD_ROWS
    ]
    # Every face of the synthetic frames is found, in every row.
    assert [r["ours"]["faces_per_frame"] for r in rows] == [1.0, 2.0, 1.0, 2.0]
    assert all(r["baseline"] is None and r["floor"]["share_of_ours_p50"] for r in rows)
    assert "960x540, 2 face(s), face_mesh_static" in text and "floor share" in text


def test_table_repeated_reports_each_ratio_median_and_range(tmp_path: Path) -> None:
    out_json = tmp_path / "t.json"
    code, text = bench(
        "--table", "--repeat", "2", "--baseline", "none", "--frames", "1", "--warmup", "0",
        "--json", str(out_json),
    )  # fmt: skip
    assert code == 0, text
    data = json.loads(out_json.read_text())
    assert len(data["runs"]) == 2 and data["rows"] == data["runs"][1]
    for i, row in enumerate(data["summary"]):
        p50 = sorted(run[i]["ours"]["p50_ms"] for run in data["runs"])
        assert row["runs"] == 2 and row["row"] == data["runs"][0][i]["row"]
        assert row["p50_ms"] == {"median": sum(p50) / 2, "min": p50[0], "max": p50[1]}
        assert row["mp_over_ours_p50"] is None  # no baseline
    assert "median (min-max) over 2 runs" in text
    code, text = bench("face_mesh", "--repeat", "2", "--frames", "1")
    assert code == 2 and "--repeat applies to --table" in text


def test_table_repeated_keeps_the_finished_runs_when_one_fails_or_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import facegraph.app.bench as bench_module

    real, calls = bench_module.run_table, []
    stop: list[BaseException] = [bench_module.BenchError("the machine went away")]

    def second_run_fails(**kwargs: object) -> list[dict[str, object]]:
        calls.append(1)
        if len(calls) % 2 == 0:
            raise stop[0]
        return real(**kwargs, rows=[("face_mesh", 320, 240, 1)])  # type: ignore[arg-type]

    monkeypatch.setattr(bench_module, "run_table", second_run_fails)
    out_json = tmp_path / "t.json"
    args = ["--table", "--repeat", "3", "--baseline", "none", "--frames", "1", "--warmup", "0"]
    code, text = bench(*args, "--json", str(out_json))
    assert code == 2 and "the machine went away" in text
    data = json.loads(out_json.read_text())
    assert len(data["runs"]) == 1 and data["summary"][0]["runs"] == 1
    # Ctrl-C in the second run: exit 130, no traceback, the first run kept.
    stop[0] = KeyboardInterrupt()
    out_json.unlink()
    code, text = bench(*args, "--json", str(out_json))
    assert code == 130 and "interrupted" in text and "Traceback" not in text
    assert len(json.loads(out_json.read_text())["runs"]) == 1


def test_sigterm_ends_a_bench_cleanly_and_removes_its_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real SIGTERM to this process in the middle of the timed frames: exit 143 with
    'terminated' and no traceback, the bench's temporary folder gone (it holds the
    MediaPipe worker's frame file, hundreds of MB), the handler from before back."""
    import signal
    import tempfile

    import facegraph.app.bench as bench_module

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    real_step, steps = bench_module.GraphContender.step, []

    def step(self: object, frame: object) -> object:
        steps.append(1)
        if len(steps) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # handled before this call returns
        return real_step(self, frame)  # type: ignore[arg-type]

    def outside_the_bench(_signum: int, _frame: object) -> None:
        raise AssertionError("SIGTERM reached the handler the bench should have replaced")

    monkeypatch.setattr(bench_module.GraphContender, "step", step)
    # A handler of the test's own outside the command (not the default, which would end
    # pytest itself if the bench did not take SIGTERM over).
    previous = signal.signal(signal.SIGTERM, outside_the_bench)
    try:
        args = ("face_mesh", "--faces", "1", "--size", "320x240", "--frames", "5")
        code, text = bench(*args, "--warmup", "1", "--no-profile")
        assert signal.getsignal(signal.SIGTERM) is outside_the_bench
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 128 + signal.SIGTERM and "terminated" in text, text
    assert "Traceback" not in text and len(steps) == 3
    assert not list(tmp_path.glob("facegraph-bench-*"))


def test_summary_of_table_runs_reports_mediapipe_over_ours() -> None:
    def row(ours_ms: float, mp_ms: float) -> dict[str, object]:
        ratio = {"p50": ours_ms / mp_ms, "cpu": 1.0, "late_in_block_p50": ours_ms / mp_ms}
        ours = {"p50_ms": ours_ms, "cpu_ms_per_frame": ours_ms}
        return {"row": "r", "ours": ours, "ratio": ratio}

    (summary,) = summarize_table_runs([[row(4.0, 6.0)], [row(5.0, 6.0)], [row(3.0, 6.0)]])
    assert summary["mp_over_ours_p50"] == {"median": 1.5, "min": 1.2, "max": 2.0}
    assert summary["mp_over_ours_cpu"]["median"] == 1.0
    assert summary["p50_ms"]["median"] == 4.0


@pytest.mark.skipif(MP_PYTHON is None, reason=NO_MP_PYTHON)
def test_table_row_against_mediapipe() -> None:
    (row,) = run_table(frames=2, warmup=1, block=1, rows=[("face_mesh", 480, 270, 2)])
    base = row["baseline"]
    assert base["version"] == "0.10.14" and base["max_num_faces"] == 2
    assert base["faces_per_frame"] == 2.0 and row["ours"]["faces_per_frame"] == 2.0
    assert base["cpu_ms_per_frame"] > 0 and row["ratio"]["cpu"] > 0


def test_mediapipe_worker_faults_its_frames_in_before_timing(tmp_path: Path) -> None:
    """The worker maps the frame file; each page's first read is a page fault, which
    MediaPipe's copy of a frame would pay inside the timed call. After fault_in, reading
    every frame again faults (almost) never."""
    import resource

    import numpy as np
    from facegraph.app.mediapipe_worker import fault_in

    path = tmp_path / "frames.npy"
    # 48 MiB, in the page cache: many faults however many pages the kernel maps per fault
    # (16 pages, or a whole large folio of up to 2 MiB).
    np.save(path, np.zeros((64, 512, 512, 3), np.uint8))

    def faults_reading(frames: np.ndarray) -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for frame in frames:
            np.array(frame)
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    cold = faults_reading(np.load(path, mmap_mode="r"))
    frames = np.load(path, mmap_mode="r")
    fault_in(frames)
    warm = faults_reading(frames)
    assert cold >= 16
    assert warm <= cold // 4
