"""Rendered outputs: a real video OpenCV can read back, image folders, single images."""

from __future__ import annotations

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
