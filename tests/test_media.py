"""Frame sources on real files made with OpenCV: images, folders, globs, videos, cameras."""

from __future__ import annotations

import itertools
import struct
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from facegraph import Graph
from facegraph.config import graph_from_yaml
from facegraph.vision.media import (
    CameraSource,
    FrameInfo,
    ImageFiles,
    SourceError,
    VideoFile,
    open_source,
    video_timestamp_us,
)


def write_png(path: Path, rgb: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def solid(value: int, h: int = 24, w: int = 32) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def write_video(path: Path, n: int, fps: float = 25.0, size: tuple[int, int] = (64, 48)) -> Path:
    """Frames of flat gray 10, 30, 50, ... so each frame is recognisable after compression."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((size[1], size[0], 3), 10 + 20 * i, np.uint8))
    writer.release()
    return path


def frame_number(image: np.ndarray) -> int:
    return round((float(image.mean()) - 10) / 20)


# -- image files ---------------------------------------------------------------------------------


def test_directory_skips_unreadable_files_names_them_and_runs_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_png(tmp_path / "img10.png", solid(100))
    write_png(tmp_path / "img2.png", solid(20))
    (tmp_path / "img3.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    (tmp_path / "img4.jpg").write_bytes(b"")
    write_png(tmp_path / "img5.png", solid(50))
    (tmp_path / "notes.txt").write_text("not an image extension: ignored")

    source = open_source(str(tmp_path))
    assert isinstance(source, ImageFiles)
    assert source.frame_count == 5
    frames = list(source)

    # Natural order (img2 < img5 < img10); bad files skipped; indices dense.
    assert [f.info.source for f in frames] == [
        str(tmp_path / "img2.png"),
        str(tmp_path / "img5.png"),
        str(tmp_path / "img10.png"),
    ]
    assert [int(f.image[0, 0, 0]) for f in frames] == [20, 50, 100]
    assert [f.info.index for f in frames] == [0, 1, 2]
    ts = [f.info.timestamp_us for f in frames]
    assert ts == [0, 33333, 66667]

    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert str(tmp_path / "img3.png") in err[0] and "not a decodable image" in err[0]
    assert str(tmp_path / "img4.jpg") in err[1] and "empty" in err[1]
    assert [p for p, _ in source.skipped] == [
        str(tmp_path / "img3.png"),
        str(tmp_path / "img4.jpg"),
    ]


def test_frames_are_rgb_uint8_contiguous_read_only_with_frame_info(tmp_path: Path) -> None:
    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[:, :, 0] = 200  # red in RGB
    path = write_png(tmp_path / "red.png", rgb)
    (frame,) = list(open_source(str(path)))
    assert frame.image.dtype == np.uint8 and frame.image.shape == (24, 32, 3)
    assert frame.image.flags.c_contiguous and not frame.image.flags.writeable
    assert frame.image[0, 0].tolist() == [200, 0, 0]
    assert frame.info == FrameInfo(index=0, timestamp_us=0, source=str(path), width=32, height=24)
    with pytest.raises(ValueError):
        frame.image[0, 0, 0] = 1


def test_grayscale_rgba_and_16_bit_images_become_8_bit_rgb(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a_gray.png"), np.full((5, 6), 77, np.uint8))
    bgra = np.dstack([np.full((5, 6, 3), (10, 20, 30), np.uint8), np.full((5, 6), 0, np.uint8)])
    cv2.imwrite(str(tmp_path / "b_rgba.png"), bgra)
    cv2.imwrite(str(tmp_path / "c_16bit.png"), np.full((5, 6, 3), 40000, np.uint16))
    frames = list(open_source(str(tmp_path)))
    assert [f.image.shape for f in frames] == [(5, 6, 3)] * 3
    assert all(f.image.dtype == np.uint8 for f in frames)
    assert frames[0].image[0, 0].tolist() == [77, 77, 77]
    assert frames[1].image[0, 0].tolist() == [30, 20, 10]  # BGRA → RGB, alpha dropped
    assert frames[2].image[0, 0].tolist() == [40000 // 256] * 3


def _jpeg_with_exif_orientation(image_bgr: np.ndarray, orientation: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image_bgr)
    assert ok
    data = buf.tobytes()
    # A minimal EXIF APP1 segment: big-endian TIFF header, one IFD entry (0x0112 Orientation).
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(tiff)) + b"Exif\x00\x00" + tiff
    return data[:2] + app1 + data[2:]


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # 20x40 landscape, left half white; orientation 6 = "rotate 90° clockwise to display".
    bgr = np.zeros((20, 40, 3), np.uint8)
    bgr[:, :20] = 255
    path = tmp_path / "phone.jpg"
    path.write_bytes(_jpeg_with_exif_orientation(bgr, 6))
    (frame,) = list(open_source(str(path)))
    assert frame.image.shape == (40, 20, 3)  # displayed upright: portrait
    assert (frame.info.width, frame.info.height) == (20, 40)
    assert frame.image[2, 10].min() > 200  # the white half is now on top
    assert frame.image[-3, 10].max() < 50


def test_glob_selects_matching_files_in_natural_order(tmp_path: Path) -> None:
    for i in (1, 12, 3):
        write_png(tmp_path / f"shot_{i}.png", solid(i))
    write_png(tmp_path / "other.png", solid(99))
    source = open_source(str(tmp_path / "shot_*.png"))
    assert [int(f.image[0, 0, 0]) for f in source] == [1, 3, 12]


def test_image_fps_sets_the_timestamps(tmp_path: Path) -> None:
    for i in range(3):
        write_png(tmp_path / f"{i}.png", solid(i))
    source = open_source(str(tmp_path), fps=10)
    assert [f.info.timestamp_us for f in source] == [0, 100_000, 200_000]


@pytest.mark.parametrize(
    ("make", "spec", "message"),
    [
        (lambda d: None, "missing.mp4", "input not found"),
        (lambda d: None, "nothing_*.png", "no files match"),
        (lambda d: (d / "empty").mkdir(), "empty", "no image files"),
        (lambda d: None, "  ", "empty input"),
    ],
)
def test_inputs_that_cannot_open_give_a_clear_error(
    tmp_path: Path, make: object, spec: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    make(tmp_path)  # type: ignore[operator]
    with pytest.raises(SourceError, match=message):
        open_source(spec)


# -- video files ---------------------------------------------------------------------------------


def test_video_frames_timestamps_and_count(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", 12, fps=25.0)
    source = open_source(str(path))
    assert isinstance(source, VideoFile)
    assert source.fps == pytest.approx(25.0)
    assert source.frame_count == 12
    frames = list(source)
    assert len(frames) == 12
    assert [frame_number(f.image) for f in frames] == list(range(12))
    ts = [f.info.timestamp_us for f in frames]
    assert ts == [i * 40_000 for i in range(12)]  # 25 fps, from the container's times
    assert all(f.info.source == str(path) and f.info.width == 64 for f in frames)
    assert all(not f.image.flags.writeable for f in frames)


@pytest.mark.parametrize(
    ("positions_ms", "expected_us"),
    [
        ([0.0, 40.0, 80.0], [0, 40_000, 80_000]),  # container times
        ([0.0, 0.0, 0.0], [0, 40_000, 80_000]),  # no times: index / fps
        ([float("nan")] * 3, [0, 40_000, 80_000]),
        ([0.0, 40.0, 40.0, 120.0], [0, 40_000, 80_000, 120_000]),  # one repeated time
        ([0.0, 100.0, 50.0, 110.0], [0, 100_000, 100_001, 110_000]),  # a time going back
    ],
)
def test_video_timestamps_always_increase(
    positions_ms: list[float], expected_us: list[int]
) -> None:
    last, got = -1, []
    for index, pos in enumerate(positions_ms):
        last = video_timestamp_us(pos, index, 40_000.0, last)
        got.append(last)
    assert got == expected_us


def test_video_that_cannot_be_decoded_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    with pytest.raises(SourceError, match=r"cannot open video .*broken\.mp4"):
        open_source(str(bad))


# -- cameras -------------------------------------------------------------------------------------


def test_camera_that_does_not_exist_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="cannot open camera 97"):
        open_source("97")


def test_camera_keeps_only_the_newest_frame_and_ends_cleanly_when_it_stops(
    tmp_path: Path,
) -> None:
    # A real VideoCapture on a file stands in for a device: it delivers frames much faster
    # than this slow consumer, then fails every read, like an unplugged camera.
    path = write_video(tmp_path / "cam.mp4", 12, fps=25.0)
    messages: list[str] = []

    class Lines:
        def write(self, text: str) -> None:
            if text.strip():
                messages.append(text.strip())

        def flush(self) -> None:
            pass

    camera = CameraSource.from_capture(
        cv2.VideoCapture(str(path)),
        "camera:test",
        max_failures=3,
        stderr=Lines(),  # type: ignore[arg-type]
    )
    assert camera.live and camera.frame_count is None
    got = []
    for frame in camera:
        got.append(frame)
        time.sleep(0.05)  # slower than the device
    numbers = [frame_number(f.image) for f in got]
    ts = [f.info.timestamp_us for f in got]
    assert numbers == sorted(set(numbers)), numbers  # never an old frame, never twice
    assert numbers[-1] == 11  # the newest frame before the end is delivered
    assert len(got) < 12 and camera.dropped == 12 - len(got)  # older frames were dropped
    assert all(b > a for a, b in itertools.pairwise(ts))
    assert [f.info.index for f in got] == list(range(len(got)))
    assert len(messages) == 1 and "camera:test stopped delivering frames" in messages[0]


class _LoopingCapture:
    """A real VideoCapture on a file that starts over at its end: a camera that never
    stops delivering on its own (a plain file ends after its frames, and a consumer that
    the machine's load delays past that end rightly hears that the camera stopped)."""

    def __init__(self, path: Path) -> None:
        self._cap = cv2.VideoCapture(str(path))

    def isOpened(self) -> bool:
        return bool(self._cap.isOpened())

    def get(self, prop: int) -> float:
        return float(self._cap.get(prop))

    def read(self) -> tuple[bool, np.ndarray | None]:
        ok, image = self._cap.read()
        if not ok:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._cap.read()
        return ok, image

    def release(self) -> None:
        self._cap.release()


def test_camera_closed_by_the_consumer_ends_without_a_message(tmp_path: Path) -> None:
    path = write_video(tmp_path / "cam.mp4", 10)
    messages: list[str] = []

    class Lines:
        def write(self, text: str) -> None:
            messages.append(text)

        def flush(self) -> None:
            pass

    capture = _LoopingCapture(path)
    with CameraSource.from_capture(
        capture,
        "camera:x",
        stderr=Lines(),  # type: ignore[arg-type]
    ) as camera:
        for i, _ in enumerate(camera):
            if i == 1:
                break
    assert messages == []
    assert camera.grabbed >= 2


# -- the graph node ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["deterministic", "threads"])
def test_media_source_node_emits_images_and_frame_info(tmp_path: Path, mode: str) -> None:
    path = write_video(tmp_path / "clip.mp4", 5)
    spec = graph_from_yaml(
        textwrap.dedent(
            """
            outputs: [image, info]
            side_inputs: {input: {}}
            nodes:
              - calculator: MediaSource
                side_inputs: {INPUT: input}
                outputs: {IMAGE: image, FRAME_INFO: info}
            """
        )
    )
    graph = Graph(spec, mode=mode)  # type: ignore[arg-type]
    images: list[tuple[int, np.ndarray]] = []
    infos: list[tuple[int, FrameInfo]] = []
    graph.observe("image", lambda p: images.append((p.timestamp, p.value)))
    graph.observe("info", lambda p: infos.append((p.timestamp, p.value)))
    graph.start({"input": str(path)})
    graph.wait_until_done(timeout=30)
    assert [t for t, _ in images] == [i * 40_000 for i in range(5)]
    assert [t for t, _ in infos] == [info.timestamp_us for _, info in infos]
    assert [frame_number(img) for _, img in images] == list(range(5))
    assert all(info.source == str(path) for _, info in infos)
