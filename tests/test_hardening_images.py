"""Hardening: awkward and broken image files through ``open_source`` and ``FaceMesh``.

Every file is either decoded correctly or skipped with one stderr line naming it; the
rest of the directory is still processed. Inputs are generated here: OpenCV writes the
ordinary ones, and the CMYK JPEG and the EXIF-rotated JPEG are assembled byte by byte
(OpenCV cannot write either and Pillow is not a dependency).
"""

from __future__ import annotations

import itertools
import resource
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from facegraph.vision.media import ImageFiles, open_source, read_image_bgr

FACES = Path(__file__).parent / "fixtures" / "faces"

# -- hand-made JPEGs -----------------------------------------------------------------------------


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", marker, len(payload) + 2) + payload


def flat_cmyk_jpeg(cmyk: tuple[int, int, int, int], size: int = 16) -> bytes:
    """A baseline 4-component (Adobe CMYK) JPEG of one flat colour, ``size`` x ``size``.

    Adobe stores CMYK inverted (255 = no ink), as Photoshop does, and marks it with an
    APP14 segment whose transform is 0. Each 8x8 block of a flat image has only a DC
    coefficient, so the entropy-coded data is just DC differences and end-of-block codes.
    Huffman tables are minimal: DC categories 0..11 as 4-bit codes; AC has only EOB ("0").
    """
    stored = [255 - v for v in cmyk]  # Adobe's inverted convention
    out = bytearray(b"\xff\xd8")
    out += _segment(0xFFEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 0))
    out += _segment(0xFFDB, b"\x00" + bytes([1] * 64))  # quantisation: all ones
    sof = struct.pack(">BHHB", 8, size, size, 4)
    for cid in range(1, 5):
        sof += bytes([cid, 0x11, 0])
    out += _segment(0xFFC0, sof)
    dht_dc = b"\x00" + bytes([0, 0, 0, 12] + [0] * 12) + bytes(range(12))
    dht_ac = b"\x10" + bytes([1] + [0] * 15) + b"\x00"
    out += _segment(0xFFC4, dht_dc) + _segment(0xFFC4, dht_ac)
    sos = bytes([4]) + b"".join(bytes([cid, 0x00]) for cid in range(1, 5)) + b"\x00\x3f\x00"
    out += _segment(0xFFDA, sos)

    bits: list[int] = []

    def put(value: int, n: int) -> None:
        bits.extend((value >> (n - 1 - i)) & 1 for i in range(n))

    previous = [0, 0, 0, 0]
    for _ in range((size // 8) ** 2):
        for c in range(4):
            dc = 8 * (stored[c] - 128)  # flat block: DC = 8 x level-shifted value
            diff, previous[c] = dc - previous[c], dc
            cat = 0 if diff == 0 else abs(diff).bit_length()
            put(cat, 4)
            if cat:
                put(diff if diff > 0 else diff + (1 << cat) - 1, cat)
            put(0, 1)  # EOB
    bits.extend([1] * (-len(bits) % 8))
    for i in range(0, len(bits), 8):
        byte = int("".join(map(str, bits[i : i + 8])), 2)
        out.append(byte)
        if byte == 0xFF:
            out.append(0)  # byte stuffing
    out += b"\xff\xd9"
    return bytes(out)


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """``jpeg`` with an APP1 Exif segment (big-endian TIFF, one IFD0 entry: Orientation)."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8)
    tiff += struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff += struct.pack(">I", 0)
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + _segment(0xFFE1, b"Exif\x00\x00" + tiff) + jpeg[2:]


def encode(ext: str, image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


def quadrants(h: int = 40, w: int = 80) -> np.ndarray:
    """BGR image: top-left red, top-right green, bottom-left blue, bottom-right white."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = (0, 0, 255)
    img[: h // 2, w // 2 :] = (0, 255, 0)
    img[h // 2 :, : w // 2] = (255, 0, 0)
    img[h // 2 :, w // 2 :] = (255, 255, 255)
    return img


# -- one directory with every kind of file -------------------------------------------------------


@pytest.fixture
def zoo(tmp_path: Path) -> Path:
    d = tmp_path / "zoo"
    d.mkdir()
    png = encode(".png", quadrants())
    jpg = encode(".jpg", quadrants())
    (d / "01_zero.jpg").write_bytes(b"")
    (d / "02_truncated.jpg").write_bytes(jpg[:200])
    (d / "03_truncated.png").write_bytes(png[: len(png) // 2])
    (d / "04_text.png").write_text("this is a text file, not an image\n")
    (d / "05_one.png").write_bytes(encode(".png", np.full((1, 1, 3), 77, np.uint8)))
    sixteen = np.full((10, 12, 3), 0, np.uint16)
    sixteen[..., 2] = 40000  # red in BGR order, 16-bit
    (d / "06_sixteen.png").write_bytes(encode(".png", sixteen))
    (d / "07_gray.png").write_bytes(encode(".png", np.full((6, 9), 90, np.uint8)))
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[...] = (10, 20, 30, 0)  # fully transparent: alpha is dropped, colour kept
    (d / "08_rgba.png").write_bytes(encode(".png", rgba))
    (d / "09_cmyk.jpg").write_bytes(flat_cmyk_jpeg((0, 255, 255, 0)))  # pure red ink
    (d / "10_exif6.jpg").write_bytes(with_exif_orientation(jpg, 6))
    (d / "11_good.png").write_bytes(png)
    return d


def test_every_bad_file_is_skipped_with_one_line_and_the_rest_are_decoded(
    zoo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = open_source(str(zoo))
    assert isinstance(source, ImageFiles)
    frames = {Path(f.info.source).name: f for f in source}
    err = capsys.readouterr().err.strip().splitlines()

    bad = ["01_zero.jpg", "02_truncated.jpg", "03_truncated.png", "04_text.png"]
    # One line per bad file, naming it, with the reason; nothing else on stderr.
    assert len(err) == len(bad), err
    for name, line in zip(bad, err, strict=True):
        assert name in line and line.startswith("warning: skipping ")
    assert "empty" in err[0]
    assert all("not a decodable image" in line for line in err[1:])
    assert [Path(p).name for p, _ in source.skipped] == bad

    assert sorted(frames) == [
        "05_one.png",
        "06_sixteen.png",
        "07_gray.png",
        "08_rgba.png",
        "09_cmyk.jpg",
        "10_exif6.jpg",
        "11_good.png",
    ]
    for f in frames.values():
        assert f.image.dtype == np.uint8 and f.image.ndim == 3 and f.image.shape[2] == 3
        assert f.image.flags.c_contiguous and not f.image.flags.writeable
        assert (f.info.height, f.info.width) == f.image.shape[:2]
    # Indices stay dense and timestamps increase although four files were skipped.
    ordered = sorted(frames.values(), key=lambda f: f.info.index)
    assert [f.info.index for f in ordered] == list(range(7))
    ts = [f.info.timestamp_us for f in ordered]
    assert all(b > a for a, b in itertools.pairwise(ts))

    assert frames["05_one.png"].image.tolist() == [[[77, 77, 77]]]
    # 16-bit: scaled to 8 bits (40000 / 256 = 156), red stays red (RGB order).
    assert frames["06_sixteen.png"].image[0, 0].tolist() == [156, 0, 0]
    assert frames["07_gray.png"].image.shape == (6, 9, 3)
    assert frames["07_gray.png"].image[0, 0].tolist() == [90, 90, 90]
    assert frames["08_rgba.png"].image[0, 0].tolist() == [30, 20, 10]
    # CMYK (0, 255, 255, 0) is red; allow a few levels for the CMYK->RGB conversion.
    r, g, b = frames["09_cmyk.jpg"].image[4, 4].tolist()
    assert r >= 250 and g <= 5 and b <= 5, (r, g, b)
    assert frames["09_cmyk.jpg"].image.shape == (16, 16, 3)


def test_exif_orientation_is_applied(zoo: Path) -> None:
    # Orientation 6 = the camera was turned 90 degrees clockwise: the 40x80 picture is
    # shown 80x40 with its top-left (red) quadrant at the top right.
    image, reason = read_image_bgr(zoo / "10_exif6.jpg")
    assert image is not None, reason
    assert image.shape == (80, 40, 3)
    frame = next(iter(open_source(str(zoo / "10_exif6.jpg"))))
    rgb = frame.image.astype(int)
    top_right, top_left = rgb[10, 30], rgb[10, 10]
    bottom_left = rgb[70, 10]
    assert top_right[0] > 200 and top_right[1] < 60  # red
    assert top_left[2] > 200 and top_left[0] < 60  # blue (was bottom-left)
    assert bottom_left.min() > 200  # white (was bottom-right)


def test_facemesh_processes_every_decodable_file_of_the_directory(zoo: Path) -> None:
    from facegraph import FaceMesh

    # A real face among the odd files: the odd ones give no face and no error.
    (zoo / "12_face.png").write_bytes((FACES / "astronaut.png").read_bytes())
    results: dict[str, int] = {}
    with FaceMesh(static_image_mode=True) as mesh:
        for frame in open_source(str(zoo)):
            results[Path(frame.info.source).name] = len(mesh.process(frame.image))
    assert results["12_face.png"] == 1
    assert len(results) == 8
    assert sum(results.values()) == 1


@pytest.mark.slow
def test_a_10000x10000_image_is_processed_in_bounded_time_and_memory(tmp_path: Path) -> None:
    """A 100-megapixel photo: decoded once (300 MB), detector input still 128x128.

    Bounds: at most 1.2 GB more peak RSS than before (decode 300 MB + RGB copy 300 MB +
    slack) and 60 s on a 2-core CI machine (measured ~4 s here).
    """
    from facegraph import FaceMesh

    face = cv2.imread(str(FACES / "astronaut.png"))
    big = cv2.resize(face, (10000, 10000), interpolation=cv2.INTER_LINEAR)
    path = tmp_path / "huge.jpg"
    path.write_bytes(encode(".jpg", big))
    del big, face

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with FaceMesh(static_image_mode=True) as mesh:
        frames = list(open_source(str(path)))
        assert frames[0].image.shape == (10000, 10000, 3)
        faces = mesh.process(frames[0].image)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert peak - before < 1.2e9, (peak - before) / 1e6
    assert len(faces) == 1
    # Same face as at the original 512x512 size, in normalised coordinates.
    with FaceMesh(static_image_mode=True) as mesh:
        small = cv2.cvtColor(cv2.imread(str(FACES / "astronaut.png")), cv2.COLOR_BGR2RGB)
        ref = mesh.process(small)
    diff = np.abs(faces[0].landmarks[:, :2] - ref[0].landmarks[:, :2]).max()
    assert diff < 0.01, diff  # 1% of the image side: resampling changes pixels slightly


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((1, 1, 3), np.uint8),
        np.zeros((1, 300, 3), np.uint8),
        np.zeros((2, 2), np.uint8),
        np.zeros((3, 3, 4), np.uint8),
    ],
    ids=["1x1", "1x300", "2x2-gray", "3x3-rgba"],
)
@pytest.mark.parametrize("static", [True, False], ids=["static", "tracking"])
def test_facemesh_tiny_images_give_no_face_not_an_error(image: np.ndarray, static: bool) -> None:
    from facegraph import FaceMesh

    with FaceMesh(static_image_mode=static) as mesh:
        assert mesh.process(image) == []
        assert mesh.process(image) == []


def test_facemesh_rejects_16bit_arrays_with_a_clear_message() -> None:
    from facegraph import FaceMesh

    with FaceMesh(static_image_mode=True) as mesh, pytest.raises(TypeError, match=r"uint8.*uint16"):
        mesh.process(np.zeros((8, 8, 3), np.uint16))


def png_bomb(width: int, height: int) -> bytes:
    """A valid 8-bit grayscale PNG of zeros: a few hundred kB declaring width x height."""
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    comp = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0 + zeros
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bombs_are_skipped_before_decoding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from facegraph.vision.media import declared_size

    bomb = png_bomb(20000, 20000)  # 400 MP, 1.2 GB once decoded as BGR
    assert len(bomb) < 2_000_000
    (tmp_path / "a_bomb.png").write_bytes(bomb)
    jpg = bytearray(with_exif_orientation(encode(".jpg", quadrants()), 6))
    sof = jpg.index(b"\xff\xc0")
    jpg[sof + 5 : sof + 9] = struct.pack(">HH", 30000, 30000)  # header claims 900 MP
    (tmp_path / "b_bomb.jpg").write_bytes(bytes(jpg))
    (tmp_path / "c_ok.png").write_bytes(encode(".png", quadrants()))

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    frames = list(open_source(str(tmp_path)))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before < 300e6
    assert [Path(f.info.source).name for f in frames] == ["c_ok.png"]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert "a_bomb.png" in err[0] and "20000x20000" in err[0] and "limit" in err[0]
    assert "b_bomb.jpg" in err[1] and "30000x30000" in err[1]
    # The header reader agrees with OpenCV on ordinary files (with an EXIF segment too).
    assert declared_size(encode(".png", quadrants(40, 80))) == (80, 40)
    assert declared_size(with_exif_orientation(encode(".jpg", quadrants(40, 80)), 1)) == (80, 40)
    assert declared_size(b"GIF89a") is None


@pytest.mark.parametrize("output", ["out.mp4", "out.avi", "rendered/"])
def test_the_odd_directory_renders_to_a_video_or_a_folder(zoo: Path, output: str) -> None:
    """Every decodable file of the directory is rendered, whatever its size (the 1x1
    image comes first: a video used to fail to open at that size)."""
    from facegraph.vision.render import open_renderer

    target = zoo.parent / output
    with open_source(str(zoo)) as source, open_renderer(str(target), fps=source.fps) as out:
        frames = list(source)
        for frame in frames:
            out.write(frame.image, frame.info)
    assert len(frames) == 7
    if output.endswith("/"):
        written = sorted(p.name for p in target.iterdir())
        assert written == sorted(Path(f.info.source).stem + ".png" for f in frames)
    else:
        cap = cv2.VideoCapture(str(target))
        count = 0
        while cap.read()[0]:
            count += 1
        cap.release()
        assert count == len(frames)
