"""Hardening: broken and unusual video files through ``open_source`` (and the graph node).

Videos are written with OpenCV (mp4v in MP4, MJPG in AVI) and then damaged or edited at
the byte level: the MP4 ``stts`` box is rewritten to make a variable-frame-rate file
(and one with repeated presentation times), the AVI's fourcc is replaced by an unknown
one, bytes in the middle of the media data are garbled, and files are cut short.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from facegraph import Graph
from facegraph.config import graph_from_yaml
from facegraph.vision.media import SourceError, VideoFile, open_source

_CONTAINERS = (b"moov", b"trak", b"mdia", b"minf", b"stbl")


def write_video(path: Path, n: int, fourcc: str = "mp4v", fps: float = 25.0) -> bytes:
    """Frames of flat gray 10, 30, 50, ... (recognisable after compression)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (64, 48))
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((48, 64, 3), 10 + 20 * i, np.uint8))
    writer.release()
    return path.read_bytes()


def frame_number(image: np.ndarray) -> int:
    return round((float(image.mean()) - 10) / 20)


def rewrite_boxes(data: bytes, edit: Callable[[bytes, bytes], bytes]) -> bytes:
    """Rebuild an MP4's box tree with ``edit(type, payload)`` applied to the leaf boxes.

    OpenCV's writer puts ``moov`` after ``mdat``, so resizing a box inside ``moov`` moves
    no media data and the chunk offsets stay valid.
    """
    out = bytearray()
    off = 0
    while off < len(data):
        size, kind = struct.unpack(">I4s", data[off : off + 8])
        payload = data[off + 8 : off + size]
        payload = rewrite_boxes(payload, edit) if kind in _CONTAINERS else edit(kind, payload)
        out += struct.pack(">I4s", len(payload) + 8, kind) + payload
        off += size
    return bytes(out)


def with_durations(data: bytes, durations: list[int]) -> bytes:
    """The MP4 with one ``stts`` entry per frame: each frame's own duration (time units)."""

    def edit(kind: bytes, payload: bytes) -> bytes:
        if kind != b"stts":
            return payload
        entries = b"".join(struct.pack(">II", 1, d) for d in durations)
        return struct.pack(">II", 0, len(durations)) + entries

    out = rewrite_boxes(data, edit)
    assert out != data
    return out


def read_all(path: Path) -> tuple[list[int], list[int], list[int]]:
    with open_source(str(path)) as source:
        frames = list(source)
    return (
        [frame_number(f.image) for f in frames],
        [f.info.timestamp_us for f in frames],
        [f.info.index for f in frames],
    )


def strictly_increasing(values: list[int]) -> bool:
    return all(b > a for a, b in itertools.pairwise(values))


def test_variable_frame_rate_keeps_the_container_times(tmp_path: Path) -> None:
    # mp4v at 25 fps uses a 12800 Hz timescale: 512 units = 40 ms.
    data = write_video(tmp_path / "cfr.mp4", 6)
    path = tmp_path / "vfr.mp4"
    # Same total as the original (the edit list cuts frames beyond the old duration).
    path.write_bytes(with_durations(data, [512, 1024, 256, 768, 256, 256]))
    numbers, ts, index = read_all(path)
    assert numbers == [0, 1, 2, 3, 4, 5]
    assert index == [0, 1, 2, 3, 4, 5]
    # Presentation times: 0, 40, 120, 140, 200, 220 ms (the actual, uneven spacing).
    assert ts == [0, 40_000, 120_000, 140_000, 200_000, 220_000]


def test_repeated_container_times_still_give_increasing_timestamps(tmp_path: Path) -> None:
    # Zero durations make three frames share one presentation time.
    data = write_video(tmp_path / "cfr.mp4", 8)
    path = tmp_path / "dup.mp4"
    path.write_bytes(with_durations(data, [512, 512, 0, 0, 1024, 512, 512, 1024]))
    numbers, ts, _ = read_all(path)
    assert len(numbers) >= 6  # FFmpeg may merge the last zero-length frame
    assert numbers[:3] == [0, 1, 2]
    assert strictly_increasing(ts), ts
    assert ts[:2] == [0, 40_000]


def test_garbled_bytes_mid_file_skip_those_frames_and_read_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bytearray(write_video(tmp_path / "ok.mp4", 10))
    mdat = data.index(b"mdat")
    # Damage frames 3-5 (each mp4v frame of a flat picture is ~45 bytes).
    for i in range(mdat + 170, mdat + 290):
        data[i] = (data[i] * 7 + 13) & 0xFF
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(data))
    capsys.readouterr()
    source = open_source(str(path))
    assert isinstance(source, VideoFile)
    frames = list(source)
    numbers = [frame_number(f.image) for f in frames]
    # Before the fix the iteration ended at the first undecodable frame (4 of 10 frames).
    assert numbers[-4:] == [6, 7, 8, 9], numbers
    assert numbers[:2] == [0, 1]
    assert source.undecodable >= 1
    assert strictly_increasing([f.info.timestamp_us for f in frames])
    assert [f.info.index for f in frames] == list(range(len(frames)))
    err = [line for line in capsys.readouterr().err.splitlines() if "corrupt.mp4" in line]
    assert len(err) == 1 and "could not be decoded" in err[0], err


def test_unknown_fourcc_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    data = write_video(tmp_path / "ok.avi", 5, fourcc="MJPG")
    assert data.count(b"MJPG") >= 1
    path = tmp_path / "unknown_codec.avi"
    path.write_bytes(data.replace(b"MJPG", b"ZZZZ"))
    with pytest.raises(SourceError, match=r"cannot open video .*unknown_codec\.avi.*codec"):
        open_source(str(path))


def test_zero_frame_video_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    write_video(path, 0)
    assert path.stat().st_size > 0
    with pytest.raises(SourceError, match=r"empty\.mp4"):
        open_source(str(path))


def test_video_with_its_index_cut_off_is_a_clear_error(tmp_path: Path) -> None:
    data = write_video(tmp_path / "ok.mp4", 10)
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])  # moov (the index) is at the end: lost
    with pytest.raises(SourceError, match=r"truncated\.mp4"):
        open_source(str(path))


def test_video_cut_mid_stream_gives_the_frames_before_the_cut(tmp_path: Path) -> None:
    # An AVI's index is at the end too, but FFmpeg can read it without one.
    data = write_video(tmp_path / "ok.avi", 10, fourcc="MJPG")
    path = tmp_path / "cut.avi"
    path.write_bytes(data[: int(len(data) * 0.6)])
    try:
        source = open_source(str(path))
    except SourceError as exc:
        assert "cut.avi" in str(exc)
        return
    numbers, ts, _ = read_all(path)
    source.close()
    assert numbers == list(range(len(numbers)))
    assert 1 <= len(numbers) < 10
    assert strictly_increasing(ts)


@pytest.mark.parametrize("mode", ["threads", "deterministic"])
def test_media_source_node_on_a_corrupt_video_ends_the_graph_normally(
    tmp_path: Path, mode: str
) -> None:
    data = bytearray(write_video(tmp_path / "ok.mp4", 10))
    mdat = data.index(b"mdat")
    for i in range(mdat + 170, mdat + 290):
        data[i] ^= 0x5A
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(data))
    spec = graph_from_yaml(
        "outputs: [image]\n"
        "nodes:\n"
        "  - calculator: MediaSource\n"
        "    outputs: {IMAGE: image}\n"
        f"    options: {{input: '{path}'}}\n"
    )
    graph = Graph(spec, mode=mode)  # type: ignore[arg-type]
    seen: list[int] = []
    graph.observe("image", lambda p: seen.append(p.timestamp))
    graph.start()
    graph.wait_until_done(timeout=30)
    assert len(seen) >= 6
    assert strictly_increasing(seen)
