"""Hardening: ``facegraph run`` never destroys an input or an earlier result, and says why.

Each test runs the installed command line in a fresh process over files made here (a
small video written with OpenCV, copies of a fixture photo), then checks the files a user
would look at, byte for byte, and the one-line message:

- an output that is an input (same path, a symbolic link, a hard link, inside an input
  folder, matching an input glob) or another output is refused before anything opens;
- a run that fails before its first frame leaves existing outputs untouched; a run that
  fails later keeps (and names) what it did;
- a full disk (a small tmpfs mounted here; skipped where mounting is not allowed) ends
  the run with exit 1 and one line, and never leaves half a file under the final name;
- bad output paths are one-line errors, not tracebacks;
- temporaries left by a killed run are cleaned up by the next one;
- an output given as a symbolic link is written through it: the link stays.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.cli_helpers import (
    FACES,
    dead_pid,
    facegraph,
    messages,
    models_cached,  # noqa: F401 - the module's autouse fixture
    mounted_tmpfs,
    one_line_error,
)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


def make_video(path: Path, frames: int = 6, size: tuple[int, int] = (160, 120)) -> Path:
    """A small MJPG AVI of the astronaut photo, moving a little from frame to frame."""
    photo = cv2.resize(cv2.imread(str(FACES / "astronaut.png")), size)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, size)
    for i in range(frames):
        writer.write(np.roll(photo, i, axis=1))
    writer.release()
    assert path.stat().st_size > 0
    return path


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("p1.png", "p2.png"):
        shutil.copy(FACES / "astronaut.png", folder / name)
    return folder


# -- 1. an output that is an input ----------------------------------------------------------


def _refusal_cases(tmp: Path, photos: Path) -> list[tuple[list[str], list[Path], str]]:
    """(arguments, files that must stay byte-identical, text the message must contain)."""
    video = make_video(tmp / "clip.avi")
    link = tmp / "link.png"
    link.symlink_to(photos / "p1.png")
    hard = tmp / "hard.png"
    os.link(photos / "p2.png", hard)
    earlier = tmp / "faces.jsonl"
    earlier.write_text('{"earlier": true}\n')
    return [
        (["--input", str(video), "--render", str(video)], [video], str(video)),
        (["--input", str(photos), "--render", str(photos)], [photos / "p1.png"], str(photos)),
        (
            ["--input", str(photos), "--output", str(photos / "sub" / "f.jsonl")],
            [photos / "p1.png"],
            str(photos),
        ),
        (
            ["--input", str(photos / "*.png"), "--render", str(photos / "new.png")],
            [photos / "p1.png"],
            "*.png",
        ),
        (["--input", str(link), "--render", str(photos / "p1.png")], [photos / "p1.png"], "link"),
        (["--input", str(photos / "p2.png"), "--render", str(hard)], [hard], "hard link"),
        (["--input", str(tmp / "clip.avi"), "--trace", str(video)], [video], "clip.avi"),
        (
            ["--input", str(photos / "p1.png"), "--output", str(earlier), "--trace", str(earlier)],
            [earlier],
            "--output",
        ),
        (
            [
                "--input",
                str(photos / "p1.png"),
                "--output",
                str(tmp / "o.json"),
                "--render",
                str(tmp / "o.json"),
            ],
            [],
            "--output",
        ),
    ]


def test_an_output_that_is_an_input_or_another_output_is_refused_naming_both(
    tmp_path: Path, photos: Path
) -> None:
    for args, kept, mentioned in _refusal_cases(tmp_path, photos):
        before = {p: digest(p) for p in kept}
        listing = sorted(p.name for p in tmp_path.rglob("*"))
        result = facegraph("run", "face_mesh_static", *args)
        line = one_line_error(result)
        assert mentioned in line, (args, line)
        assert (
            "overwrite" in line
            or "same file" in line
            or "inside" in line
            or "matches" in (line)
            or "hard link" in line
        ), line
        assert {p: digest(p) for p in kept} == before, args
        # Refused before anything was opened: not even a folder or a temporary appeared.
        assert sorted(p.name for p in tmp_path.rglob("*")) == listing, args


# -- 2. a failed run keeps earlier results --------------------------------------------------


def test_a_run_failing_before_its_first_frame_leaves_existing_outputs_untouched(
    tmp_path: Path,
) -> None:
    video = make_video(tmp_path / "clip.avi")
    jsonl, js, overlay, trace = (tmp_path / n for n in ("k.jsonl", "k.json", "k.avi", "t.json"))
    for path in (jsonl, js, trace):
        path.write_text('{"earlier": "results"}\n' * 50)
    shutil.copy(video, overlay)
    before = {p: digest(p) for p in (jsonl, js, overlay, trace)}
    for outputs in (["--output", str(jsonl)], ["--output", str(js)]):
        result = facegraph(
            "run",
            "face_mesh",
            "--input",
            str(video),
            *outputs,
            "--render",
            str(overlay),
            "--trace",
            str(trace),
            "--side",
            "num_faces=abc",
        )
        # A bad side packet is refused as a usage error (exit 2), before anything opens.
        assert result.returncode == 2, result.stderr
        assert "num_faces" in result.stderr
        assert "Traceback" not in result.stderr.split("--- original traceback ---")[0]
        assert {p: digest(p) for p in before} == before
        assert leftovers(tmp_path) == []


FAILING_GRAPH = """
name: fails_on_frame_3
inputs: [image]
outputs: [faces]
nodes:
  - {calculator: "tests.test_run_cli:FailOnFrame", options: {at: 3},
     inputs: {IN: image}, outputs: {OUT: faces}}
"""


def test_a_run_failing_mid_way_keeps_the_frames_done_and_says_so(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.avi", frames=8)
    graph = tmp_path / "fails.yaml"
    graph.write_text(FAILING_GRAPH)
    out, overlay = tmp_path / "f.jsonl", tmp_path / "f.avi"
    out.write_text("earlier\n")
    result = facegraph(
        "run",
        str(graph),
        "--allow-imports",
        "--input",
        str(video),
        "--output",
        str(out),
        "--render",
        str(overlay),
    )
    assert result.returncode == 1
    assert "broken on frame 3" in result.stderr
    assert f"kept the 3 frame(s) done before the error in {out}, {overlay}" in result.stderr or (
        f"kept the 3 frame(s) done before the error in {overlay}, {out}" in result.stderr
    )
    assert [json.loads(line)["frame"] for line in out.read_text().splitlines()] == [0, 1, 2]
    assert int(cv2.VideoCapture(str(overlay)).get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    assert leftovers(tmp_path) == []


# -- 3. a full disk ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option,name",
    [
        ("--output", "faces.jsonl"),
        ("--output", "faces.json"),
        ("--render", "overlay.mp4"),
        ("--render", "overlay.avi"),
        ("--render", "frames/"),
        ("--trace", "trace.json"),
    ],
)
def test_a_full_disk_ends_the_run_with_one_line_and_no_half_file(
    tmp_path: Path, option: str, name: str
) -> None:
    video = make_video(tmp_path / "clip.avi", frames=40, size=(320, 240))
    with mounted_tmpfs(tmp_path / "disk", "size=40k") as disk:
        target = disk / name
        earlier = disk / "earlier"
        if not name.endswith("/"):
            target.write_text("earlier run\n")
        # Fill the disk up to a few KB, so the first frames fit and a later one does not.
        filler = disk / "filler"
        with open(filler, "wb") as f, contextlib.suppress(OSError):
            f.write(b"\0" * 30_000)
        result = facegraph("run", "face_mesh", "--input", str(video), option, str(target))
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        lines = messages(result.stderr)
        assert lines[0].startswith("error: ") and "No space left on device" in lines[0], lines
        assert all(line.startswith("kept the ") for line in lines[1:]), lines
        if target.is_file():
            assert target.read_text() == "earlier run\n"  # never replaced by a half file
        assert not earlier.exists()
        assert leftovers(disk) == []
        if name.endswith("/"):
            # Each image is moved into place whole: every one there decodes.
            for image in target.iterdir():
                assert cv2.imread(str(image)) is not None, image


# -- 10/11. one-line errors, honest summaries -------------------------------------------------


def test_bad_output_paths_are_one_line_errors(tmp_path: Path) -> None:
    photo = tmp_path / "p.png"
    shutil.copy(FACES / "astronaut.png", photo)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = [
        (["--output", str(a_file / "out.jsonl")], "is a file, not a folder"),
        (["--render", str(a_file / "overlay.mp4")], "is a file, not a folder"),
        (["--render", "/proc/facegraph-test.png"], "/proc/facegraph-test.png"),
        (["--render", str(tmp_path / "overlay.exr")], "cannot write .exr"),
        (["--output", str(tmp_path / "faces.txt")], "output format"),
        (["--trace", "/proc/facegraph-trace.json"], "trace"),
    ]
    for args, expected in cases:
        line = one_line_error(facegraph("run", "face_mesh_static", "--input", str(photo), *args))
        assert expected in line, (args, line)
    for spelling in ("99999999999999999999", "4294967296"):
        line = one_line_error(facegraph("run", "face_mesh", "--input", spelling))
        assert "no such camera" in line


def test_the_summary_labels_each_output_by_what_it_is(tmp_path: Path) -> None:
    photo = tmp_path / "p.png"
    shutil.copy(FACES / "astronaut.png", photo)
    overlay = tmp_path / "overlay.png"
    result = facegraph("run", "face_mesh_static", "--input", str(photo), "--render", str(overlay))
    assert result.returncode == 0, result.stderr
    assert f"rendering: {overlay}" in result.stdout
    assert "landmarks:" not in result.stdout
    assert cv2.imread(str(overlay)).shape == (512, 512, 3)


def test_an_ipv6_serve_address_in_the_documented_form_works(tmp_path: Path) -> None:
    if not Path("/proc/net/if_inet6").exists():
        pytest.skip("this machine has no IPv6 loopback")
    video = make_video(tmp_path / "clip.avi", frames=3)
    # --no-loop: a served file otherwise loops until Ctrl-C
    result = facegraph("run", "face_mesh", "--input", str(video), "--serve", "[::1]:0", "--no-loop")
    assert result.returncode == 0, result.stderr
    assert "live view: http://[::1]:" in result.stderr


# -- 12. leftovers of killed runs ------------------------------------------------------------


def test_temporaries_of_a_killed_run_are_cleaned_by_the_next_run(tmp_path: Path) -> None:
    photo = tmp_path / "p.png"
    shutil.copy(FACES / "astronaut.png", photo)
    pid = dead_pid()
    stale = [
        tmp_path / f".faces.jsonl.{pid}.0badc0de.tmp",
        tmp_path / f".overlay.mp4.{pid}.0badc0de.tmp.mp4",
        tmp_path / f".trace.json.{pid}.0badc0de.tmp",
    ]
    alive = tmp_path / f".faces.jsonl.{os.getpid()}.0badc0de.tmp"  # a running process's
    for path in [*stale, alive]:
        path.write_text("half")
    result = facegraph(
        "run",
        "face_mesh_static",
        "--input",
        str(photo),
        "--output",
        str(tmp_path / "faces.jsonl"),
        "--render",
        str(tmp_path / "overlay.mp4"),
        "--trace",
        str(tmp_path / "trace.json"),
    )
    assert result.returncode == 0, result.stderr
    assert [p for p in stale if p.exists()] == []
    assert alive.exists()
    assert leftovers(tmp_path) == [alive.name]


def test_wheel_folders_of_a_killed_fetch_are_cleaned_at_the_next_fetch(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    pid = dead_pid()
    stale = temp / f"facegraph-wheel-{pid}-abc123"
    stale.mkdir()
    (stale / "mediapipe.whl").write_bytes(b"partial download")
    live = temp / f"facegraph-wheel-{os.getpid()}-def456"  # a fetch still running
    live.mkdir()
    result = facegraph("models", "fetch", env={"TMPDIR": str(temp)})
    assert result.returncode == 0, result.stderr
    assert not stale.exists()
    assert live.exists()


def test_an_unwritable_trace_of_a_self_sourced_graph_fails_instead_of_claiming_success(
    tmp_path: Path,
) -> None:
    graph = tmp_path / "count.yaml"
    graph.write_text(
        "name: count\noutputs: [n]\nnodes:\n"
        "  - {calculator: CountSource, outputs: {OUT: n}, options: {count: 5}}\n"
    )
    line = one_line_error(facegraph("run", str(graph), "--trace", "/proc/facegraph-trace.json"))
    assert "cannot write the trace /proc/facegraph-trace.json" in line
    trace = tmp_path / "trace.json"
    done = facegraph("run", str(graph), "--trace", str(trace))
    assert done.returncode == 0 and f"trace written to {trace}" in done.stdout
    assert json.loads(trace.read_text())["traceEvents"]
    assert leftovers(tmp_path) == []


# -- 13. outputs given as symbolic links --------------------------------------------------------


def test_outputs_given_as_symbolic_links_are_written_through_them(tmp_path: Path) -> None:
    photo = tmp_path / "p.png"
    shutil.copy(FACES / "astronaut.png", photo)
    results = tmp_path / "results"
    results.mkdir()
    (results / "faces.jsonl").write_text('{"earlier": true}\n')  # replaced by this run
    stale = results / f".faces.jsonl.{dead_pid()}.0badc0de.tmp"  # a killed run's
    stale.write_text("half")
    links = {
        "--output": (tmp_path / "faces.jsonl", results / "faces.jsonl"),
        "--render": (tmp_path / "overlay.png", results / "overlay.png"),  # not there yet
        "--trace": (tmp_path / "trace.json", results / "trace.json"),
    }
    args: list[str] = []
    for option, (link, target) in links.items():
        link.symlink_to(os.path.relpath(target, link.parent))
        args += [option, str(link)]
    result = facegraph("run", "face_mesh_static", "--input", str(photo), *args)
    assert result.returncode == 0, result.stderr
    for link, target in links.values():
        assert link.is_symlink() and link.resolve() == target.resolve(), link
    lines = (results / "faces.jsonl").read_text().splitlines()
    assert len(lines) == 1 and len(json.loads(lines[0])["faces"]) == 1
    assert cv2.imread(str(results / "overlay.png")).shape[:2] == cv2.imread(str(photo)).shape[:2]
    json.loads((results / "trace.json").read_text())
    assert leftovers(results) == [] and leftovers(tmp_path) == []


def test_a_video_through_a_link_keeps_the_format_its_name_asks_for(tmp_path: Path) -> None:
    # The link says .mp4; the file it names has no extension. The encoder picks the
    # container from the temporary's name, which must carry the name given.
    video = make_video(tmp_path / "clip.avi", frames=3)
    (tmp_path / "store").mkdir()
    link = tmp_path / "overlay.mp4"
    link.symlink_to(Path("store") / "blob")
    result = facegraph("run", "face_mesh", "--input", str(video), "--render", str(link))
    assert result.returncode == 0, result.stderr
    assert link.is_symlink()
    cap = cv2.VideoCapture(str(tmp_path / "store" / "blob"))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape[:2] == (120, 160)
    assert leftovers(tmp_path / "store") == [] and leftovers(tmp_path) == []


def test_an_output_that_is_a_loop_of_symbolic_links_is_refused(tmp_path: Path) -> None:
    photo = tmp_path / "p.png"
    shutil.copy(FACES / "astronaut.png", photo)
    (tmp_path / "a.jsonl").symlink_to("b.jsonl")
    (tmp_path / "b.jsonl").symlink_to("a.jsonl")
    result = facegraph(
        "run", "face_mesh_static", "--input", str(photo), "--output", str(tmp_path / "a.jsonl")
    )
    assert result.returncode != 0
    line = one_line_error(result)
    assert "a.jsonl is a loop of symbolic links" in line, line
    assert (tmp_path / "a.jsonl").readlink() == Path("b.jsonl")  # the user's links stay
    assert (tmp_path / "b.jsonl").readlink() == Path("a.jsonl")
    assert leftovers(tmp_path) == []
