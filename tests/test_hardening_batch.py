"""Hardening: ``facegraph batch`` never un-completes work, fails fast on configuration, and
survives a Ray node dying.

Collections are made here (small MJPG videos of the astronaut photo, image folders,
symbolic-link loops, FIFOs); the Ray test starts a real two-node cluster on this machine
with ``ray start`` and kills the second node's raylet in the middle of the batch.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from facegraph.app.batch import BatchError, discover_inputs, run_batch

from tests.cli_helpers import (
    CLI,
    FACES,
    REPO,
    facegraph,
    models_cached,  # noqa: F401 - the module's autouse fixture
    mounted_tmpfs,
)


def make_video(path: Path, frames: int, shift: int = 0) -> Path:
    photo = cv2.resize(cv2.imread(str(FACES / "astronaut.png")), (160, 120))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (160, 120))
    for i in range(frames):
        writer.write(np.roll(photo, i + shift, axis=1))
    writer.release()
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


# -- 4. configuration errors fail fast, once, and never un-complete work ----------------------


def test_a_bad_side_packet_fails_once_before_any_input_and_keeps_finished_work(
    tmp_path: Path,
) -> None:
    inputs = tmp_path / "in"
    make_video(inputs / "a.avi", 4)
    make_video(inputs / "b.avi", 4, shift=3)
    out = tmp_path / "out"
    first = facegraph(
        "batch", "face_mesh", "--inputs", str(inputs), "--output-dir", str(out), "--workers", "1"
    )
    assert first.returncode == 0, first.stderr
    before = snapshot(out)
    assert {"a.avi.jsonl.done", "b.avi.jsonl.done"} <= set(before)
    for bad in ("num_faces=abc", "no_such_packet=1"):
        # Touch an input so that it would be redone: the configuration must fail first.
        os.utime(inputs / "a.avi")
        result = facegraph(
            "batch", "face_mesh", "--inputs", str(inputs), "--output-dir", str(out), "--side", bad
        )
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert "attempt" not in result.stderr and "failures.jsonl" not in result.stdout
        assert snapshot(out) == before  # sidecars and outputs untouched, no failures.jsonl


def test_output_dir_that_is_a_file_or_read_only_is_one_line(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    make_video(inputs / "a.avi", 2)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for target, expected in ((a_file, "is a file"), (a_file / "sub", "is a file")):
        result = facegraph(
            "batch", "face_mesh", "--inputs", str(inputs), "--output-dir", str(target)
        )
        assert result.returncode == 1
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and expected in lines[0], result.stderr
    with mounted_tmpfs(tmp_path / "ro", "ro,size=64k") as readonly:
        result = facegraph(
            "batch", "face_mesh", "--inputs", str(inputs), "--output-dir", str(readonly)
        )
        assert result.returncode == 1
        assert "Read-only file system" in result.stderr
        assert "Traceback" not in result.stderr


# -- 7. discovery: loops, duplicates, FIFOs -----------------------------------------------------


def test_discovery_never_follows_a_link_back_into_an_ancestor(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_video(root / "clips" / "one.avi", 2)
    (root / "clips" / "loop").symlink_to("..")  # back to data/
    (root / "again").symlink_to(root)  # data/again -> data
    (root / "alias.avi").symlink_to(root / "clips" / "one.avi")  # the same file twice
    found = discover_inputs(root)
    assert [Path(i.path).name for i in found] == ["alias.avi"] or [
        Path(i.path).name for i in found
    ] == ["one.avi"]


def test_a_fifo_in_a_list_is_refused_and_in_a_folder_is_skipped(tmp_path: Path) -> None:
    make_video(tmp_path / "data" / "ok.avi", 2)
    fifo = tmp_path / "data" / "pipe.avi"
    os.mkfifo(fifo)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'data' / 'ok.avi'}\n{fifo}\n")
    with pytest.raises(BatchError, match="not regular files"):
        discover_inputs(listing)
    found = discover_inputs(tmp_path / "data")  # a scan skips it with a note
    assert [Path(i.path).name for i in found] == ["ok.avi"]


# -- 5. a huge image in an image set: skipped, the set goes on ------------------------------------


def test_a_32767_pixel_image_in_a_batch_image_set_is_skipped_and_the_rest_is_done(
    tmp_path: Path,
) -> None:
    shots = tmp_path / "in" / "shots"
    shots.mkdir(parents=True)
    assert cv2.imwrite(str(shots / "a_wide.png"), np.zeros((4, 32768, 3), np.uint8))
    shutil.copy(FACES / "astronaut.png", shots / "b.png")
    summary = run_batch("face_mesh_static", tmp_path / "in", tmp_path / "out", workers=1)
    assert summary.done == 1 and summary.failed == 0
    (result,) = summary.results
    assert result.frames == 1 and result.faces == 1
    assert [Path(p).name for p, _ in result.skipped_files] == ["a_wide.png"]


# -- 13. a real two-node Ray cluster, one node killed mid-run ------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process we can see."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        table[int(entry.name)] = (ppid, cmdline)
    return table


def _with_descendants(roots: set[int], table: dict[int, tuple[int, str]]) -> set[int]:
    found = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _) in table.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def _kill(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _ray_start(args: list[str], env: dict[str, str], attempts: int = 2) -> None:
    """``ray start ...``; a second try when it fails (on a loaded machine a node can miss
    Ray's own start-up deadlines), then a failure that shows Ray's output."""
    output = ""
    for _ in range(attempts):
        done = subprocess.run(
            args, check=False, env=env, capture_output=True, text=True, timeout=120
        )
        if done.returncode == 0:
            return
        output = done.stdout + done.stderr
    tail = output.strip().splitlines()[-15:]
    pytest.fail(f"{' '.join(args[1:3])} failed {attempts}x:\n" + "\n".join(tail))


@contextlib.contextmanager
def two_node_cluster() -> Iterator[tuple[str, str]]:
    """A head (2 CPUs) and a second node (1 CPU) started with ``ray start``; yields the
    address and a marker of the second node's raylet command line. Every process of the
    cluster is killed by PID at the end (never ``ray stop``: other users' Ray survives)."""
    ray_bin = Path(sys.executable).parent / "ray"
    if not ray_bin.exists():
        pytest.skip("Ray is not installed (pip install 'facegraph[ray]')")
    temp = tempfile.mkdtemp(prefix="fgray", dir="/tmp")  # short: Ray's socket paths
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    port, head_nm, node_nm = _free_port(), _free_port(), _free_port()
    base = random.randrange(30000, 60000, 400)
    common = [
        "--disable-usage-stats",
        "--node-ip-address=127.0.0.1",
        "--object-store-memory=100000000",
    ]
    try:
        _ray_start(
            [
                str(ray_bin),
                "start",
                "--head",
                f"--port={port}",
                "--num-cpus=2",
                "--include-dashboard=false",
                f"--temp-dir={temp}",
                f"--node-manager-port={head_nm}",
                f"--min-worker-port={base}",
                f"--max-worker-port={base + 150}",
                *common,
            ],
            env,
        )
        _ray_start(
            [
                str(ray_bin),
                "start",
                f"--address=127.0.0.1:{port}",
                "--num-cpus=1",
                f"--node-manager-port={node_nm}",
                f"--min-worker-port={base + 200}",
                f"--max-worker-port={base + 350}",
                *common,
            ],
            env,
        )
        yield f"127.0.0.1:{port}", f"--node_manager_port={node_nm}"
    finally:
        table = _processes()
        ours = {pid for pid, (_, cmd) in table.items() if temp in cmd}
        _kill(_with_descendants(ours, table))
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_batch_on_a_two_node_ray_cluster_survives_losing_a_node(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    count = 6
    for k in range(count):
        make_video(inputs / f"v{k}.avi", 40, shift=k)
    out = tmp_path / "out"
    with two_node_cluster() as (address, second_node):
        proc = subprocess.Popen(
            [
                *CLI,
                "batch",
                "face_mesh",
                "--inputs",
                str(inputs),
                "--output-dir",
                str(out),
                "--ray-address",
                address,
                "--workers",
                "2",
            ],
            cwd=REPO,
            env={**os.environ, "RAY_AUTH_MODE": "disabled", "FACEGRAPH_NO_CAMERA": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # Both nodes work: wait for a finished input from each, then kill the second.
            deadline = time.monotonic() + 240
            nodes: set[str] = set()
            while len(nodes) < 2 and time.monotonic() < deadline and proc.poll() is None:
                nodes = (
                    {
                        json.loads(p.read_text())["worker"].rpartition("@")[2]
                        for p in out.glob("*.done")
                    }
                    if out.exists()
                    else set()
                )
                time.sleep(0.2)
            assert len(nodes) == 2, f"actors did not run on both nodes: {nodes}"
            table = _processes()
            raylet = {pid for pid, (_, cmd) in table.items() if second_node in cmd}
            assert raylet, "the second node's raylet is not running"
            _kill(_with_descendants(raylet, table))
            stdout, stderr = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, (stdout, stderr)
    assert f"inputs: {count} ({count} done, 0 failed, 0 skipped)" in stdout
    # Every input completed exactly once, with its whole output under its final name.
    finals = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert finals == sorted(
        [f"v{k}.avi.jsonl" for k in range(count)] + [f"v{k}.avi.jsonl.done" for k in range(count)]
    )
    # Temporaries of the killed node's worker are hidden, and gone once that input is redone.
    assert all(".tmp" in p.name for p in out.iterdir() if p.name.startswith("."))
    for k in range(count):
        lines = (out / f"v{k}.avi.jsonl").read_text().splitlines()
        assert [json.loads(line)["frame"] for line in lines] == list(range(40))
        done = json.loads((out / f"v{k}.avi.jsonl.done").read_text())
        assert done["frames"] == 40 and done["bytes"] == (out / f"v{k}.avi.jsonl").stat().st_size
