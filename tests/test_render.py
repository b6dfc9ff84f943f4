"""Rendered outputs: a real video OpenCV can read back, image folders, single images."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from facegraph import Graph
from facegraph.config import graph_from_yaml
from facegraph.vision.media import FrameInfo, open_source
from facegraph.vision.render import ImageRenderer, RenderError, VideoRenderer, open_renderer

from tests.helpers import read_video_frames


def gray(value: int, h: int = 48, w: int = 64) -> np.ndarray:
    img = np.full((h, w, 3), value, np.uint8)
    img.flags.writeable = False
    return img


def test_video_renderer_writes_an_mp4_with_every_frame_and_the_fps(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with open_renderer(out, fps=12.5) as renderer:
        assert isinstance(renderer, VideoRenderer)
        for i in range(8):
            renderer.write(gray(20 + 25 * i))
    cap = cv2.VideoCapture(str(out))
    assert cap.isOpened()
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(12.5)
    values = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (48, 64, 3)
        values.append(float(frame.mean()))
    cap.release()
    assert len(values) == 8
    np.testing.assert_allclose(values, [20 + 25 * i for i in range(8)], atol=4)


def test_video_renderer_resizes_frames_of_another_size(tmp_path: Path) -> None:
    out = tmp_path / "mixed.avi"
    with VideoRenderer(out) as renderer:
        renderer.write(gray(100))
        renderer.write(gray(200, h=96, w=128))
    assert [f.shape for f in read_video_frames(out)] == [(48, 64, 3), (48, 64, 3)]


def test_video_renderer_colours_are_rgb_in(tmp_path: Path) -> None:
    out = tmp_path / "red.avi"
    red = np.zeros((48, 64, 3), np.uint8)
    red[..., 0] = 255
    with VideoRenderer(out) as renderer:
        renderer.write(red)
    ok, frame = cv2.VideoCapture(str(out)).read()
    assert ok and frame[24, 32, 2] > 200 and frame[24, 32, 0] < 60  # BGR on disk: red


def test_image_folder_output_is_named_after_the_sources(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for name, v in (("b.jpg", 50), ("a.png", 10)):
        cv2.imwrite(str(src / name), np.full((8, 8, 3), v, np.uint8))
    out = tmp_path / "out"
    with open_renderer(str(out) + "/") as renderer:
        assert isinstance(renderer, ImageRenderer)
        for frame in open_source(str(src)):
            renderer.write(frame.image, frame.info)
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert cv2.imread(str(out / "b.png"))[0, 0, 0] == pytest.approx(50, abs=2)


def test_frames_of_a_video_in_a_folder_are_numbered(tmp_path: Path) -> None:
    out = tmp_path / "frames"
    with open_renderer(out) as renderer:
        for i in range(2):
            renderer.write(gray(i), FrameInfo(i, i, "clip.mp4", 64, 48))
    assert sorted(p.name for p in out.iterdir()) == ["frame_000000.png", "frame_000001.png"]


def test_single_image_output_takes_one_frame_only(tmp_path: Path) -> None:
    out = tmp_path / "one.jpg"
    renderer = open_renderer(out)
    renderer.write(gray(128))
    assert not out.exists()  # moved into place when the run ends
    with pytest.raises(RenderError, match="folder"):
        renderer.write(gray(128))
    renderer.close()
    assert cv2.imread(str(out)).shape == (48, 64, 3)


def test_missing_output_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="does not exist"):
        open_renderer(tmp_path / "nope" / "out.mp4")


@pytest.mark.parametrize("mode", ["deterministic", "threads"])
def test_render_node_writes_the_video(tmp_path: Path, mode: str) -> None:
    out = tmp_path / "node.mp4"
    spec = graph_from_yaml(
        textwrap.dedent(
            f"""
            inputs: [image]
            nodes:
              - calculator: Render
                inputs: {{IMAGE: image}}
                options: {{path: "{out.as_posix()}", fps: 10}}
            """
        )
    )
    graph = Graph(spec, mode=mode)  # type: ignore[arg-type]
    graph.start()
    for i in range(4):
        graph.add_packet("image", gray(40 * i), i * 100_000)
    graph.close_all_inputs()
    graph.wait_until_done(timeout=30)
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 4


def _fourcc(path: Path) -> bytes:
    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little")
    finally:
        cap.release()


def test_mp4_is_h264_which_browsers_play(tmp_path: Path) -> None:
    pytest.importorskip("av", reason="PyAV is a dependency; this install lacks it")
    out = tmp_path / "out.mp4"
    with open_renderer(out, fps=25) as renderer:
        for i in range(10):
            renderer.write(gray(i * 20))
    assert renderer.fourcc == "h264"
    assert _fourcc(out) in (b"h264", b"avc1")
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(bgr)
    cap.release()
    assert len(frames) == 10
    # lossy, but each frame keeps its grey level (CRF 20: within a few levels)
    assert [round(float(f.mean()) / 20) for f in frames] == list(range(10))


def test_h264_odd_sized_frames_are_padded_not_scaled(tmp_path: Path) -> None:
    pytest.importorskip("av", reason="PyAV is a dependency; this install lacks it")
    out = tmp_path / "odd.mp4"
    image = np.zeros((41, 63, 3), np.uint8)
    image[:, :31] = 255  # left half white
    with open_renderer(out, fps=10) as renderer:
        renderer.write(image)
    assert renderer.size == (64, 42)
    cap = cv2.VideoCapture(str(out))
    ok, bgr = cap.read()
    cap.release()
    assert ok and bgr.shape == (42, 64, 3)
    assert bgr[:, :28].min() > 200 and bgr[:, 34:].max() < 60  # the edge stayed in place


def test_mp4_falls_back_to_mp4v_with_a_notice_without_pyav(tmp_path: Path) -> None:
    # A real interpreter in which `import av` fails, as on an install without PyAV.
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["av"] = None  # makes `import av` raise ImportError
        import numpy as np
        from facegraph.vision.render import open_renderer
        with open_renderer({str(tmp_path / "x.mp4")!r}, fps=10) as r:
            for i in range(3):
                r.write(np.zeros((32, 32, 3), np.uint8))
        print(r.fourcc)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "mp4v"
    notes = [line for line in proc.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "browsers do not play" in notes[0] and "pip install av" in notes[0]
    assert _fourcc(tmp_path / "x.mp4") in (b"mp4v", b"FMP4")  # MPEG-4 part 2
