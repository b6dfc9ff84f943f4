"""Frame sources: image files, video files and cameras, as Python iterators and as graph nodes.

::

    from facegraph.vision.media import open_source

    with open_source("clips/*.jpg") as source:        # or "video.mp4", "photos/", "0"
        for frame in source:
            frame.image      # HxWx3 uint8 RGB, C-contiguous, read-only
            frame.info       # FrameInfo(index, timestamp_us, source, width, height)

Every source yields :class:`Frame` values with strictly increasing ``timestamp_us``:

- **Images** (one file, a directory, or a glob): one frame per file, in natural sort order
  (``img2`` before ``img10``). Timestamps are ``index * 1e6 / fps`` (``fps`` defaults to
  30, so a folder of frames behaves like a 30 fps video). A file that cannot be read or
  decoded is reported on stderr as one line naming it and the reason, then skipped;
  ``index`` counts the frames actually produced.
- **Video files** (OpenCV ``VideoCapture``): a frame's timestamp is the container's
  presentation time (``CAP_PROP_POS_MSEC``) when it is later than the previous frame's,
  otherwise ``index * 1e6 / fps`` (kept above the previous timestamp), so broken or
  missing container times never yield a non-increasing timestamp. ``fps`` is the
  container's, or 30 when it reports none. Frames that cannot be decoded (corrupt data
  mid-file) are skipped and reported in one line on stderr; the rest are still read.
- **Cameras** (an integer index): a background thread reads continuously and keeps only
  the newest frame, so a slow consumer always gets the latest picture (older ones are
  dropped and counted). Timestamps are microseconds of the monotonic clock since the
  first frame. A camera that cannot be opened is a :class:`SourceError`; one that stops
  delivering frames mid-run ends the iteration with a message on stderr.

Inputs must be regular files: a FIFO, socket or device is refused by name (reading
it would block). Before decoding, an image's size is read from its header (PNG and
JPEG here, other formats through Pillow's header-only ``Image.open``) and the file is
skipped when it declares more than :func:`max_image_pixels` pixels
(``$FACEGRAPH_MAX_IMAGE_PIXELS``, default 250 MP) or a side of :data:`MAX_IMAGE_SIDE`
px or more (OpenCV's geometric transforms cannot take it). Globs with ``**`` never loop
through symbolic links and are bounded (:func:`expand_glob`).

Decoding of images uses ``cv2.imdecode(..., IMREAD_COLOR)``, which already does what a
face pipeline wants: grayscale becomes 3 channels, alpha is dropped (as MediaPipe's
RGBA→RGB), 16-bit samples become 8-bit (value / 256) and the JPEG EXIF orientation is
applied (``IMREAD_UNCHANGED`` would do none of these). Reading the bytes ourselves
(instead of ``cv2.imread``) tells "cannot read the file" from "cannot decode it" and
works with any path on every OS. Sample types ``IMREAD_COLOR`` refuses (32-bit float
TIFF, EXR) are decoded unchanged and converted to 8 bits (floats in [0, 1] × 255).

The graph node :class:`MediaSource` wraps the same classes; it emits ``IMAGE`` and
``FRAME_INFO`` at each frame's timestamp.
"""

from __future__ import annotations

import glob as globlib
import math
import os
import re
import struct
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from facegraph import (
    Closeable,
    FacegraphError,
)
from facegraph.condition_wait import wait_holding_lock
from facegraph.vision.opencv_threads import serial_opencv

__all__ = [
    "IMAGE_EXTENSIONS",
    "CameraSource",
    "Frame",
    "FrameInfo",
    "FrameSource",
    "ImageFiles",
    "SourceError",
    "VideoFile",
    "open_source",
]

#: File name extensions treated as images (lower case, with the dot).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".bmp",
        ".dib",
        ".tif",
        ".tiff",
        ".webp",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
        ".jp2",
        ".sr",
        ".ras",
        ".exr",
        ".hdr",
        ".pic",
        ".avif",
        ".gif",  # the first frame (OpenCV >= 4.11 decodes GIF)
    }
)

DEFAULT_FPS = 30.0


class SourceError(FacegraphError):
    """An input could not be opened (missing path, no images, camera unavailable)."""


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """Where a frame comes from; travels beside the image so writers can name the source.

    ``source`` is the image file's path, the video file's path, or ``camera:N``.
    """

    index: int
    timestamp_us: int
    source: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame: an HxWx3 uint8 RGB image (read-only) and its :class:`FrameInfo`."""

    image: np.ndarray
    info: FrameInfo


def _rgb_frame(bgr: np.ndarray, index: int, timestamp_us: int, source: str) -> Frame:
    import cv2

    code = (
        cv2.COLOR_GRAY2RGB
        if bgr.ndim == 2
        else cv2.COLOR_BGRA2RGB
        if bgr.shape[2] == 4
        else cv2.COLOR_BGR2RGB
    )
    # Serial: on 640x480, OpenCV's pool makes this slower (165 vs 85 µs) and its worker
    # then spins ~0.5 ms beside the graph (vision/opencv_threads.py).
    with serial_opencv():
        rgb = cv2.cvtColor(bgr, code)
    if rgb.dtype == np.uint16:  # only unusual capture backends; IMREAD_COLOR gives 8-bit
        rgb = (rgb.astype(np.uint32) >> 8).astype(np.uint8)
    elif rgb.dtype != np.uint8:
        rgb = np.clip(np.asarray(rgb, np.float64) * 255.0, 0, 255).round().astype(np.uint8)
    rgb = np.ascontiguousarray(rgb)
    rgb.flags.writeable = False
    h, w = rgb.shape[:2]
    return Frame(rgb, FrameInfo(index, timestamp_us, source, w, h))


class FrameSource(Closeable):
    """Base of the sources: an iterator of :class:`Frame` and a context manager.

    Attributes: ``name`` (for messages), ``fps`` (frames per second, when known),
    ``frame_count`` (total frames when known in advance: for progress bars), ``live``
    (a camera: no progress bar, newest-frame semantics).
    """

    name: str = ""
    fps: float | None = None
    frame_count: int | None = None
    live: bool = False

    def __init__(self, *, stderr: TextIO | None = None) -> None:
        self._stderr = stderr

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def frames(self) -> Iterator[Frame]:
        """Yield the frames (a new pass each call for files; a camera can be read once)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file handles (idempotent)."""

    def input_files(self) -> list[str]:
        """The files this source reads (none for a camera): outputs must not overwrite them."""
        return []

    def warn(self, message: str) -> None:
        """One line on stderr (the stream given at construction, else ``sys.stderr``)."""
        stream = self._stderr if self._stderr is not None else sys.stderr
        print(message, file=stream, flush=True)


def _natural_key(path: str) -> list[Any]:
    # "img2" < "img10": compare digit runs as numbers, the rest case-sensitively.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


class ImageFiles(FrameSource):
    """Image files as frames: one path, a directory (its image files), or a glob pattern."""

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        fps: float = DEFAULT_FPS,
        name: str = "",
        stderr: TextIO | None = None,
        max_pixels: int | None = None,
    ) -> None:
        super().__init__(stderr=stderr)
        if fps <= 0:
            raise SourceError(f"fps must be positive, got {fps}")
        #: Images declaring more pixels are skipped (default :func:`max_image_pixels`).
        self.max_pixels = max_pixels if max_pixels is not None else max_image_pixels()
        self.paths: list[str] = [os.fspath(p) for p in paths]
        self.fps = float(fps)
        self.frame_count = len(self.paths)
        self.name = name or (self.paths[0] if len(self.paths) == 1 else f"{len(self.paths)} images")
        #: (path, reason) of every file skipped so far.
        self.skipped: list[tuple[str, str]] = []

    @classmethod
    def from_directory(cls, directory: str | os.PathLike[str], **kwargs: Any) -> ImageFiles:
        """The image files (by extension) directly inside ``directory``, naturally sorted."""
        d = Path(directory)
        if not d.is_dir():
            raise SourceError(f"input directory not found: {d}")
        files = [
            str(p)
            for p in d.iterdir()
            if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
        ]
        if not files:
            exts = ", ".join(sorted(e for e in IMAGE_EXTENSIONS if len(e) <= 4)[:6])
            raise SourceError(f"no image files ({exts}, ...) in directory {d}")
        ordered: list[str] = sorted(files, key=_natural_key)
        return cls(ordered, name=str(d), **kwargs)

    @classmethod
    def from_glob(
        cls, pattern: str, *, stop: threading.Event | None = None, **kwargs: Any
    ) -> ImageFiles:
        """The regular files matching ``pattern`` (``**`` recurses), naturally sorted.

        Each file counts once (paths are resolved: links to the same file, or a ``**``
        walk around a symbolic-link loop, give one input); the walk stops with a
        :class:`SourceError` after :data:`MAX_DISCOVERED` matches, or when ``stop`` is set.
        """
        files: dict[str, str] = {}
        for p in expand_glob(pattern, stop=stop):
            if os.path.isfile(p):
                files.setdefault(os.path.realpath(p), p)
        if not files:
            raise SourceError(f"no files match {pattern!r}")
        ordered: list[str] = sorted(files.values(), key=_natural_key)
        return cls(ordered, name=pattern, **kwargs)

    def input_files(self) -> list[str]:
        return list(self.paths)

    def frames(self) -> Iterator[Frame]:
        index = 0
        step = 1e6 / (self.fps or DEFAULT_FPS)
        for path in self.paths:
            image, reason = read_image_bgr(path, max_pixels=self.max_pixels)
            if image is None:
                self.skipped.append((path, reason))
                self.warn(f"warning: skipping {path}: {reason}")
                continue
            yield _rgb_frame(image, index, round(index * step), path)
            index += 1


#: Images declaring more pixels are skipped before decoding: a few-MB PNG of zeros can
#: declare 30000x30000 and would take 2.7 GB (and again as much for the RGB copy).
#: 250 megapixels leaves room for any camera (a 10000x10000 image is 100 MP). The
#: environment variable ``FACEGRAPH_MAX_IMAGE_PIXELS`` overrides it (see
#: :func:`max_image_pixels`); ``ImageFiles(max_pixels=...)`` per source.
MAX_IMAGE_PIXELS = 250_000_000

#: Frames with a side this long or longer are skipped: OpenCV's geometric transforms
#: (``warpAffine``, ``remap``: the crop of every face pipeline) assert sides < SHRT_MAX.
MAX_IMAGE_SIDE = 32767

#: A glob or folder walk stops (with an error) after this many paths: a ``**`` over a
#: symbolic-link loop would otherwise never end.
MAX_DISCOVERED = 1_000_000


def expand_glob(pattern: str, *, stop: threading.Event | None = None) -> Iterator[str]:
    """The paths matching ``pattern`` (``**`` matches any number of folders), bounded.

    Unlike :func:`glob.iglob`, a ``**`` walk follows a symbolic link into a folder only
    if that folder has not been visited (a link back to an ancestor, or two links that
    make a loop, would otherwise multiply the paths without end). Hidden names match only
    a pattern part that starts with a dot, as with :mod:`glob`. Raises
    :class:`SourceError` after :data:`MAX_DISCOVERED` paths, or once ``stop`` is set.
    """
    count = 0

    def tick() -> None:
        nonlocal count
        count += 1
        if stop is not None and stop.is_set():
            raise SourceError(f"stopped while listing {pattern!r}")
        if count > MAX_DISCOVERED:
            raise SourceError(
                f"{pattern!r} matches more than {MAX_DISCOVERED:,} paths; narrow the pattern"
            )

    if "**" not in pattern:
        for path in globlib.iglob(pattern):
            tick()
            yield path
        return
    parts = Path(pattern).parts
    first = next(i for i, part in enumerate(parts) if _GLOB_CHARS.search(part))
    root = str(Path(*parts[:first])) if first else "."
    regex = re.compile(_translate_parts(parts[first:]))
    for folder, dirs, names in walk_once(root):
        for name in sorted([*dirs, *names]):
            tick()
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            if regex.fullmatch(rel):
                yield path


def walk_once(root: str | os.PathLike[str]) -> Iterator[tuple[str, list[str], list[str]]]:
    """:func:`os.walk` that follows symbolic links, but into each real folder only once.

    A link back to an ancestor, or two links that make a loop, would otherwise walk
    forever. Yields ``(folder, dirs, files)`` with ``dirs`` sorted; the caller may prune
    ``dirs`` in place, as with ``os.walk``.
    """
    visited: set[str] = set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in visited:
            dirs[:] = []
            continue
        visited.add(real)
        dirs.sort()
        yield folder, dirs, names


def _translate_parts(parts: Sequence[str]) -> str:
    """A regex for a relative POSIX path, from glob pattern parts (``**`` = any folders)."""
    out = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append("(?:[^/.][^/]*/)*" if not last else "(?:[^/.][^/]*/?)*")
            continue
        body = _translate_part(part)
        if not part.startswith("."):
            body = f"(?![.]){body}"
        out.append(body + ("" if last else "/"))
    return "".join(out)


def _translate_part(part: str) -> str:
    """One path component's glob (``*``, ``?``, ``[seq]``, ``[!seq]``) as a regex that
    never crosses a ``/``."""
    out = []
    i = 0
    while i < len(part):
        c = part[i]
        i += 1
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif (
            c == "[" and (end := part.find("]", i + 1 if part[i : i + 1] in ("!", "]") else i)) > 0
        ):
            body = part[i:end]
            i = end + 1
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append(f"[{'^/' if negate else ''}{body.replace(chr(92), chr(92) * 2)}]")
        else:
            out.append(re.escape(c))
    return "".join(out)


def max_image_pixels() -> int:
    """The pixel limit: ``$FACEGRAPH_MAX_IMAGE_PIXELS`` if set (an integer), else the default."""
    text = os.environ.get("FACEGRAPH_MAX_IMAGE_PIXELS", "").strip().replace("_", "")
    if not text:
        return MAX_IMAGE_PIXELS
    try:
        value = int(text)
    except ValueError:
        raise SourceError(
            f"FACEGRAPH_MAX_IMAGE_PIXELS must be a whole number of pixels, got {text!r}"
        ) from None
    if value <= 0:
        raise SourceError(f"FACEGRAPH_MAX_IMAGE_PIXELS must be positive, got {value}")
    return value


_JPEG_SOF = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)


def declared_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header, without decoding; None if not found."""
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) >= 24:
        w, h = struct.unpack(">II", head[16:24])
        return int(w), int(h)
    if head[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_SOF:
            if i + 9 > len(head):
                return None
            h, w = struct.unpack(">HH", head[i + 5 : i + 9])
            return int(w), int(h)
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        i += 2 + struct.unpack(">H", head[i + 2 : i + 4])[0]
    return None


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) an image file declares, read from its header only.

    PNG and JPEG are parsed here; every other format Pillow knows (TIFF, WebP, BMP, GIF,
    PNM, JPEG 2000, ...) through Pillow's lazy ``Image.open``, which reads the header and
    decodes nothing. None when neither recognises the data.
    """
    size = declared_size(data[: 1 << 18])
    if size is not None:
        return size
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's own bomb warning: we decide here
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                with Image.open(io.BytesIO(data)) as image:
                    return int(image.size[0]), int(image.size[1])
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, struct.error):
        return None


def _too_big(width: int, height: int, max_pixels: int) -> str:
    if width * height > max_pixels:
        return (
            f"the image declares {width}x{height} pixels ({width * height / 1e6:.0f} MP), "
            f"over the {max_pixels / 1e6:g} MP limit (FACEGRAPH_MAX_IMAGE_PIXELS; a "
            "decompression bomb?)"
        )
    if max(width, height) >= MAX_IMAGE_SIDE:
        return (
            f"the image is {width}x{height} pixels: a side of {MAX_IMAGE_SIDE} px or more is "
            "beyond OpenCV's geometric transforms (downscale it first)"
        )
    return ""


def read_image_bgr(
    path: str | os.PathLike[str], *, max_pixels: int | None = None
) -> tuple[np.ndarray | None, str]:
    """Read and decode one image file as OpenCV BGR (8-bit); ``(None, reason)`` when it fails.

    The header's size is checked against ``max_pixels`` (default
    :func:`max_image_pixels`) and :data:`MAX_IMAGE_SIDE` before anything is decoded.
    """
    import stat

    import cv2

    limit = max_pixels if max_pixels is not None else max_image_pixels()
    text = os.fspath(path)
    try:
        mode = os.stat(text).st_mode
        if not stat.S_ISREG(mode):
            return None, f"not a regular file ({_file_kind(mode)})"
        data = np.fromfile(text, dtype=np.uint8)
    except OSError as exc:
        return None, f"cannot read the file ({exc.strerror or exc})"
    if data.size == 0:
        return None, "the file is empty"
    size = header_size(data.tobytes())
    if size is not None and (reason := _too_big(*size, limit)):
        return None, reason
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if image is None:
            # 32-bit float or other sample types IMREAD_COLOR refuses (float TIFF, EXR).
            image = _to_8bit(cv2.imdecode(data, cv2.IMREAD_UNCHANGED))
    except cv2.error as exc:  # some codecs raise instead of returning None
        return None, f"not a decodable image ({str(exc).strip().splitlines()[-1]})"
    if image is None or image.size == 0:
        return None, "not a decodable image (unknown format or corrupt data)"
    if reason := _too_big(image.shape[1], image.shape[0], limit):
        return None, reason
    return image, ""


def _to_8bit(image: np.ndarray | None) -> np.ndarray | None:
    """A decoded image of any sample type as 8-bit BGR: floats in [0, 1] scale to 0-255
    (values outside are clipped), 16-bit is divided by 256; gray and alpha are converted."""
    import cv2

    if image is None or image.size == 0:
        return None
    if image.dtype.kind == "f":
        image = np.clip(np.nan_to_num(image.astype(np.float32)) * 255.0, 0, 255)
        image = image.round().astype(np.uint8)
    elif image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        return None
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image if image.shape[2] == 3 else None


def _file_kind(mode: int) -> str:
    import stat

    for test, kind in (
        (stat.S_ISFIFO, "a FIFO / named pipe"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def check_regular_file(path: str | os.PathLike[str]) -> None:
    """Raise :class:`SourceError` unless ``path`` is a regular file (or a link to one).

    Reading a FIFO or a device would block forever or never end.
    """
    import stat

    text = os.fspath(path)
    try:
        mode = os.stat(text).st_mode
    except FileNotFoundError:
        raise SourceError(f"input not found: {text}") from None
    except OSError as exc:
        raise SourceError(f"cannot read {text}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise SourceError(
            f"cannot read {text}: it is {_file_kind(mode)}, not a regular file (facegraph "
            "reads image and video files, folders, globs and camera indexes)"
        )


class VideoFile(FrameSource):
    """A video file decoded with OpenCV's ``VideoCapture`` (FFmpeg backend).

    A frame that cannot be decoded (damaged data in the middle of the file) is skipped
    and counted in ``undecodable``; the reading goes on, and one warning line names the
    file at the end. ``max_failed_reads`` failed reads in a row end the video.
    """

    #: Failed reads in a row taken as the end of the file (a damaged stretch is shorter).
    max_failed_reads: int = 25

    def __init__(self, path: str | os.PathLike[str], *, stderr: TextIO | None = None) -> None:
        import cv2

        super().__init__(stderr=stderr)
        self.path = os.fspath(path)
        self.name = self.path
        check_regular_file(self.path)
        self._cap: Any = cv2.VideoCapture(self.path)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(
                f"cannot open video {self.path}: OpenCV found no decoder for it "
                "(not a video, corrupt, or an unsupported codec)"
            )
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        # Containers without a rate report 0 (or nonsense such as 90000): use 30.
        self.fps = fps if 0.0 < fps <= 1000.0 else DEFAULT_FPS
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 else None
        self._used = False
        #: Frames skipped because they could not be decoded (corrupt data mid-file).
        self.undecodable = 0

    def frames(self) -> Iterator[Frame]:
        import cv2

        if self._used:
            raise SourceError(f"video {self.path} can be read once per VideoFile")
        self._used = True
        step = 1e6 / (self.fps or DEFAULT_FPS)
        last = -1
        index = 0
        failures = 0  # failed reads in a row
        try:
            while True:
                try:
                    ok, image = self._cap.read()
                except cv2.error:  # a backend error is a failed read, not a crash
                    ok, image = False, None
                if not ok or image is None:
                    # FFmpeg fails a read on a damaged packet and then decodes the next
                    # ones; only a run of failures means the end of the file.
                    failures += 1
                    if failures >= self.max_failed_reads:
                        break
                    continue
                self.undecodable += failures
                failures = 0
                ts = video_timestamp_us(self._cap.get(cv2.CAP_PROP_POS_MSEC), index, step, last)
                last = ts
                yield _rgb_frame(image, index, ts, self.path)
                index += 1
        finally:
            self.close()
        if self.undecodable:
            self.warn(
                f"warning: {self.path}: skipped {self.undecodable} frame(s) that could not "
                f"be decoded (corrupt data); {index} frame(s) read"
            )

    def close(self) -> None:
        self._cap.release()

    def input_files(self) -> list[str]:
        return [self.path]


def video_timestamp_us(pos_ms: float, index: int, step_us: float, last_us: int) -> int:
    """A video frame's timestamp: the container's time if it moves forward, else by index.

    ``pos_ms`` is OpenCV's ``CAP_PROP_POS_MSEC`` after reading frame ``index``; a NaN,
    negative or non-increasing value (missing or broken container times) falls back to
    ``index * step_us``, kept above ``last_us`` so timestamps always strictly increase.
    """
    ts = round(pos_ms * 1000.0) if math.isfinite(pos_ms) and pos_ms >= 0 else -1
    if ts <= last_us:
        ts = max(round(index * step_us), last_us + 1)
    return ts


class CameraSource(FrameSource):
    """A live camera with newest-frame semantics (older frames are dropped, not queued).

    A reader thread grabs frames as fast as the camera delivers them and keeps only the
    newest; iteration returns each new frame once. ``dropped`` counts frames that were
    replaced before anyone took them. When the camera fails ``max_failures`` reads in a
    row (unplugged, driver error) the iteration ends with a message on stderr.
    """

    live = True

    def __init__(
        self,
        index: int = 0,
        *,
        width: int | None = None,
        height: int | None = None,
        max_failures: int = 30,
        stderr: TextIO | None = None,
    ) -> None:
        import cv2

        super().__init__(stderr=stderr)
        cap = cv2.VideoCapture(index)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"cannot open camera {index}: no such device, or it is in use by another "
                "program, or this user may not access it (try another index, or --input FILE)"
            )
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._init(cap, f"camera:{index}", max_failures)

    @classmethod
    def from_capture(
        cls, capture: Any, name: str, *, max_failures: int = 30, stderr: TextIO | None = None
    ) -> CameraSource:
        """Wrap an opened ``cv2.VideoCapture`` (any backend: a device, a stream URL, a file)."""
        self = cls.__new__(cls)
        FrameSource.__init__(self, stderr=stderr)
        if not capture.isOpened():
            raise SourceError(f"cannot open {name}")
        self._init(capture, name, max_failures)
        return self

    def _init(self, cap: Any, name: str, max_failures: int) -> None:
        import cv2

        self._cap = cap
        self.name = name
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.0 < fps <= 1000.0 else None
        self.frame_count = None
        self.max_failures = max(1, max_failures)
        #: Frames replaced by a newer one before they were taken.
        self.dropped = 0
        #: Frames read from the device.
        self.grabbed = 0
        self._cond = threading.Condition()
        self._latest: np.ndarray | None = None
        self._latest_time = 0.0
        self._ended = False
        self._end_reason = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _reader(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                ok, image = self._cap.read()
            except Exception as exc:  # a backend exception is a failed read, not a crash
                ok, image = False, None
                self._end_reason = str(exc)
            now = time.monotonic()
            if not ok or image is None:
                failures += 1
                if failures >= self.max_failures:
                    break
                time.sleep(0.01)
                continue
            failures = 0
            with self._cond:
                if self._latest is not None:
                    self.dropped += 1
                self._latest = image
                self._latest_time = now
                self.grabbed += 1
                self._cond.notify_all()
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def frames(self) -> Iterator[Frame]:
        if self._thread is not None:
            raise SourceError(f"{self.name} is already being read")
        self._thread = threading.Thread(target=self._reader, name=f"{self.name} reader")
        self._thread.daemon = True
        self._thread.start()
        index = 0
        t0: float | None = None
        last = -1
        try:
            while True:
                with self._cond:
                    while self._latest is None and not self._ended:
                        wait_holding_lock(self._cond, 0.5)
                    if self._latest is None:
                        break
                    image, taken_at = self._latest, self._latest_time
                    self._latest = None
                if t0 is None:
                    t0 = taken_at
                ts = max(round((taken_at - t0) * 1e6), last + 1)
                last = ts
                yield _rgb_frame(image, index, ts, self.name)
                index += 1
        finally:
            stopped_by_user = self._stop.is_set()
            self.close()
        if self._ended and not stopped_by_user:
            why = f" ({self._end_reason})" if self._end_reason else ""
            self.warn(
                f"{self.name} stopped delivering frames after {index} frame(s){why}; "
                "ending the run (everything written so far is kept)"
            )

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        self._cap.release()


_GLOB_CHARS = re.compile(r"[*?\[]")


#: Camera indexes above this are not devices (OpenCV takes an int; V4L2 has 64 minors).
MAX_CAMERA_INDEX = 9999


def open_source(
    spec: str,
    *,
    fps: float | None = None,
    stderr: TextIO | None = None,
    stop: threading.Event | None = None,
) -> FrameSource:
    """Open an input by its command-line spelling.

    - ``"0"``, ``"1"``, ...: that camera;
    - an existing directory: its image files;
    - a pattern with ``*``, ``?`` or ``[``: the matching files (as images);
    - an existing file with an image extension: that image;
    - any other existing file: a video.

    ``fps`` sets the frame rate of image inputs (timestamps); videos and cameras keep
    their own; ``stop`` (an event, set on Ctrl-C) ends a long glob listing. Files must be
    regular files (a FIFO or device would block). Raises :class:`SourceError` with a
    clear message when nothing can be opened.
    """
    text = spec.strip()
    if not text:
        raise SourceError(
            "empty input: give an image, a directory, a glob, a video or a camera index"
        )
    if text.isdigit():
        if int(text) > MAX_CAMERA_INDEX:
            raise SourceError(
                f"--input {text}: no such camera (indexes are 0-{MAX_CAMERA_INDEX}) and no "
                "such file"
            )
        return CameraSource(int(text), stderr=stderr)
    image_kwargs: dict[str, Any] = {"stderr": stderr}
    if fps is not None:
        image_kwargs["fps"] = fps
    path = Path(text).expanduser()
    if path.is_dir():
        return ImageFiles.from_directory(path, **image_kwargs)
    if not path.exists() and _GLOB_CHARS.search(text):
        return ImageFiles.from_glob(str(path), stop=stop, **image_kwargs)
    check_regular_file(path)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageFiles([str(path)], **image_kwargs)
    return VideoFile(path, stderr=stderr)
