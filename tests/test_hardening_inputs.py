"""Hardening: inputs that never end, huge or odd frames, and a façade that must survive them.

Files are made here: FIFOs, symbolic-link loops, a TIFF header declaring 3.6 gigapixels,
a 32768-pixel-wide PNG, a GIF, a 32-bit float TIFF, images of two sizes. Each is either
processed or skipped with one line naming it, and the run goes on and ends.
"""

from __future__ import annotations

import os
import resource
import shutil
import struct
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from facegraph import Graph, TimestampError
from facegraph.vision.media import (
    ImageFiles,
    SourceError,
    expand_glob,
    open_source,
    read_image_bgr,
)

from tests.cli_helpers import (
    FACES,
    facegraph,
    models_cached,  # noqa: F401 - the module's autouse fixture
)


def astronaut_rgb() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(FACES / "astronaut.png")), cv2.COLOR_BGR2RGB)


def tiff_declaring(width: int, height: int) -> bytes:
    """A classic little-endian 8-bit gray TIFF header declaring ``width`` x ``height``,
    with one byte of pixel data: a decoder that trusts it allocates width*height bytes."""
    entries = [
        (256, 4, width),  # ImageWidth
        (257, 4, height),  # ImageLength
        (258, 3, 8),  # BitsPerSample
        (259, 3, 1),  # Compression: none
        (262, 3, 1),  # PhotometricInterpretation: black is zero
        (273, 4, 0),  # StripOffsets (patched below)
        (277, 3, 1),  # SamplesPerPixel
        (278, 4, height),  # RowsPerStrip
        (279, 4, min(width * height, 2**32 - 1)),  # StripByteCounts
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    data_offset = 8 + ifd_size
    out = bytearray(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)))
    for tag, kind, declared in entries:
        value = data_offset if tag == 273 else declared
        if kind == 3:
            out += struct.pack("<HHIHH", tag, kind, 1, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, 1, value)
    out += struct.pack("<I", 0) + b"\x00"
    return bytes(out)


# -- 7. inputs that never end ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["stream.mp4", "photo.png", "noext"])
def test_a_fifo_as_input_is_refused_at_once_with_what_it_is(tmp_path: Path, name: str) -> None:
    fifo = tmp_path / name
    os.mkfifo(fifo)
    result = facegraph("run", "face_mesh", "--input", str(fifo))  # would block on open
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "FIFO" in result.stderr and str(fifo) in result.stderr
    assert "not found" not in result.stderr


def test_a_fifo_among_listed_images_is_skipped_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    shutil.copy(FACES / "astronaut.png", tmp_path / "a.png")
    source = ImageFiles([str(fifo), str(tmp_path / "a.png")])
    frames = list(source)
    assert len(frames) == 1
    assert source.skipped == [(str(fifo), "not a regular file (a FIFO / named pipe)")]


def test_a_recursive_glob_over_symlink_loops_ends_and_counts_each_file_once(
    tmp_path: Path,
) -> None:
    root = tmp_path / "shots"
    (root / "day1").mkdir(parents=True)
    shutil.copy(FACES / "astronaut.png", root / "a.png")
    shutil.copy(FACES / "astronaut.png", root / "day1" / "b.png")
    # Two loops: with glob.glob each level doubles the paths (2**40 before ELOOP).
    (root / "day1" / "up").symlink_to("..")
    (root / "self").symlink_to(".")
    (root / "also_b.png").symlink_to(root / "day1" / "b.png")  # one file, two names
    result = facegraph(
        "run", "face_mesh_static", "--input", str(root / "**" / "*.png"), "--output", "-"
    )
    assert result.returncode == 0, result.stderr
    records = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(records) == 2
    assert "2 frames" in result.stderr


def test_discovery_stops_when_the_stop_event_is_set_and_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(30):
        (tmp_path / f"{i}.png").write_bytes(b"")
    stop = threading.Event()
    stop.set()  # as after SIGTERM: the listing ends at the next path
    with pytest.raises(SourceError, match="stopped"):
        list(expand_glob(str(tmp_path / "**" / "*.png"), stop=stop))
    with pytest.raises(SourceError, match="stopped"):
        open_source(str(tmp_path / "*.png"), stop=stop)
    from facegraph.vision import media

    monkeypatch.setattr(media, "MAX_DISCOVERED", 10)
    with pytest.raises(SourceError, match="more than 10 paths"):
        list(expand_glob(str(tmp_path / "**" / "*.png")))


# -- 8. decompression bombs in every format ----------------------------------------------------


def test_a_tiff_declaring_gigapixels_is_skipped_before_decoding(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.tif"
    bomb.write_bytes(tiff_declaring(60000, 60000))  # 3.6 GP in 130 bytes
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    image, reason = read_image_bgr(bomb)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert image is None
    assert "60000x60000" in reason and "limit" in reason
    assert grown_mb < 200  # the header was read, nothing was allocated for the pixels


@pytest.mark.parametrize("ext", [".tif", ".webp", ".bmp", ".gif", ".ppm", ".png", ".jpg"])
def test_the_pixel_limit_is_an_option_and_holds_for_every_format(tmp_path: Path, ext: str) -> None:
    from PIL import Image

    path = tmp_path / f"photo{ext}"
    Image.fromarray(astronaut_rgb()).save(path)  # 512x512 = 0.26 MP
    result = facegraph(
        "run",
        "face_mesh_static",
        "--input",
        str(tmp_path),
        "--output",
        "-",
        env={"FACEGRAPH_MAX_IMAGE_PIXELS": "100000"},
    )
    assert "512x512" in result.stderr and "0.1 MP limit" in result.stderr
    assert "FACEGRAPH_MAX_IMAGE_PIXELS" in result.stderr
    allowed = facegraph("run", "face_mesh_static", "--input", str(path), "--output", "-")
    assert allowed.returncode == 0, allowed.stderr
    assert '"faces":[{' in allowed.stdout  # decoded, face found (GIF: 256 colours suffice)


# -- 5. frames too large for OpenCV's transforms --------------------------------------------------


def test_an_image_32767_pixels_wide_is_skipped_naming_it_and_the_rest_runs(
    tmp_path: Path,
) -> None:
    wide = np.zeros((8, 32767, 3), np.uint8)
    assert cv2.imwrite(str(tmp_path / "a_panorama.png"), wide)
    shutil.copy(FACES / "astronaut.png", tmp_path / "b_face.png")
    result = facegraph("run", "face_mesh_static", "--input", str(tmp_path), "--output", "-")
    assert result.returncode == 0, result.stderr
    assert "a_panorama.png" in result.stderr and "32767" in result.stderr
    records = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(records) == 1 and "b_face.png" in records[0]


# -- 11. odd formats are decoded, not called undecodable ------------------------------------------


def test_a_gif_and_a_float_tiff_in_a_folder_are_decoded(tmp_path: Path) -> None:
    from PIL import Image

    rgb = astronaut_rgb()
    Image.fromarray(rgb).save(tmp_path / "a.gif")
    as_float = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).astype(np.float32) / 255.0
    assert cv2.imwrite(str(tmp_path / "b.tiff"), as_float)
    result = facegraph("run", "face_mesh_static", "--input", str(tmp_path), "--output", "-")
    assert result.returncode == 0, result.stderr
    records = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(records) == 2
    assert all('"faces":[{' in r for r in records)
    image, _ = read_image_bgr(tmp_path / "b.tiff")
    assert image is not None and image.dtype == np.uint8
    assert np.abs(image.astype(int) - cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)).max() <= 1


def test_a_rendered_video_says_when_the_input_changes_size(tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    photo = cv2.imread(str(FACES / "astronaut.png"))
    cv2.imwrite(str(frames / "1.png"), photo)
    cv2.imwrite(str(frames / "2.png"), cv2.resize(photo, (256, 200)))
    out = tmp_path / "overlay.avi"
    result = facegraph("run", "face_mesh", "--input", str(frames), "--render", str(out))
    assert result.returncode == 0, result.stderr
    assert "frame 1 is 256x200 but the video is 512x512" in result.stderr
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 2


# -- 6. FaceMesh is not poisoned by one bad call ---------------------------------------------------


def test_facemesh_stays_usable_after_a_failed_call() -> None:
    import facegraph

    rgb = astronaut_rgb()
    with facegraph.FaceMesh() as mesh:
        assert len(mesh.process(rgb)) == 1
        with pytest.raises(ValueError, match="32767 px or more"):
            mesh.process(np.zeros((4, 40000, 3), np.uint8))
        assert len(mesh.process(rgb)) == 1
        # A failure inside the graph itself (here: its run ended underneath the façade).
        mesh._graph.cancel()
        with pytest.raises(facegraph.FacegraphError):
            mesh.process(rgb)
        faces = mesh.process(rgb)
        assert len(faces) == 1 and faces[0].landmarks.shape == (478, 3)
    # close() after the failures finished cleanly (the with block raised nothing).


# -- 10/11. timestamps must be integers -------------------------------------------------------


@pytest.mark.parametrize("bad", ["7", 1.5, 7.0, True, None])
def test_add_packet_refuses_a_timestamp_that_is_not_an_integer(bad: object) -> None:
    from tests.helpers import Pass, graph, node

    g = Graph(graph(node("p", Pass, inputs={"IN": "a"}, outputs={"OUT": "b"}), inputs=("a",)))
    g.start()
    with pytest.raises(TimestampError, match=r"graph input stream 'a'.*not an integer"):
        g.add_packet("a", 1, bad)  # type: ignore[arg-type]
    g.add_packet("a", 1, np.int64(7))  # numpy integers are integers
    g.close_all_inputs()
    g.wait_until_done()
