"""Rendered output (``facegraph run --render``): a video file, an image file or a folder.

::

    from facegraph.vision.render import open_renderer

    with open_renderer("out.mp4", fps=source.fps) as renderer:
        renderer.write(drawn_rgb, frame.info)

- ``.mp4`` / ``.avi`` / ``.mkv`` / ``.mov`` / ``.m4v``: :class:`VideoRenderer`. MP4, MOV
  and M4V are H.264 (yuv420p, ``+faststart``), which browsers play, written with PyAV
  (FFmpeg's libraries with libx264, inside its wheel); without PyAV, or if its encoder
  fails to open, OpenCV's ``VideoWriter`` writes ``mp4v`` instead, with a one-line notice
  on stderr (browsers do not play mp4v). AVI and MKV are ``MJPG`` through OpenCV, which
  every OpenCV build can write. The size is taken from the first frame (H.264 needs even
  sides: an odd last row/column is repeated); later frames of another size are resized
  to it. ``fps`` is the source's, else 30.
- an image extension (``out.png``): :class:`ImageRenderer` writes the one frame there
  (a second frame is an error that suggests a folder).
- anything else (an existing folder, or a path ending in ``/`` or without extension):
  :class:`ImageRenderer` writes one image per frame into that folder, named after the
  frame's source file (``photo.jpg`` → ``photo.png``), or ``frame_000001.png`` for
  frames of a video or camera.

Images are RGB in and converted to OpenCV's BGR on write. The graph node :class:`Render`
wraps the same classes.

Durability (:mod:`facegraph.atomic_files`): a video is written to a hidden
temporary beside its name, read back on :meth:`Renderer.close` (``VideoWriter`` reports
no write errors, so a full disk shows as a file OpenCV cannot open) and only then moved
into place; :meth:`Renderer.discard` drops it. Each image is written to a temporary and
moved into place whole. Failures raise :class:`RenderError` with one line.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from facegraph import Closeable, FacegraphError
from facegraph.atomic_files import (
    clean_stale_temps,
    clean_stale_temps_of,
    describe_os_error,
    final_path,
    replace_into_place,
    temp_path,
)
from facegraph.vision.media import DEFAULT_FPS, IMAGE_EXTENSIONS, FrameInfo
from facegraph.vision.opencv_threads import serial_opencv

__all__ = [
    "H264_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "ImageRenderer",
    "RenderError",
    "Renderer",
    "VideoRenderer",
    "open_renderer",
]

#: Video container extensions and the FourCC used for each.
VIDEO_EXTENSIONS: dict[str, str] = {
    ".mp4": "mp4v",
    ".m4v": "mp4v",
    ".mov": "mp4v",
    ".avi": "MJPG",
    ".mkv": "MJPG",
}


class RenderError(FacegraphError):
    """A rendered output cannot be written."""


class Renderer(Closeable):
    """Base: ``write(image, info)`` per frame, ``close()`` at the end; a context manager."""

    path: str = ""
    #: Frames written so far.
    count: int = 0

    def write(self, image: np.ndarray, info: FrameInfo | None = None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the output and move it into place (idempotent)."""

    def discard(self) -> None:
        """Abandon an unfinished output (an earlier file under the name stays as it was)."""
        self.close()


def _warn_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _bgr(image: np.ndarray) -> np.ndarray:
    import cv2

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise RenderError(
            f"can only render HxWx3 uint8 RGB images, got {image.shape} {image.dtype}"
        )
    with serial_opencv():  # per frame: no spinning OpenCV worker (vision/opencv_threads.py)
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)


#: Containers written as H.264 through PyAV when it is installed.
H264_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov"})


class _H264Writer:
    """H.264 in MP4/MOV through PyAV: RGB frames in, libx264 (CRF 20, preset veryfast)."""

    def __init__(self, path: str, fps: float, width: int, height: int) -> None:
        from fractions import Fraction

        import av

        self._container = av.open(path, mode="w", options={"movflags": "+faststart"})
        try:
            stream = self._container.add_stream(
                "libx264", rate=Fraction(fps).limit_denominator(1001)
            )
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": "20", "preset": "veryfast"}
            stream.codec_context.open()  # fail here, not at the first frame
        except Exception:
            self._container.close()
            raise
        self._stream = stream
        self._frame_type = av.VideoFrame

    def write(self, rgb: np.ndarray) -> None:
        frame = self._frame_type.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        try:
            for packet in self._stream.encode():  # flush the encoder's delayed frames
                self._container.mux(packet)
        finally:
            self._container.close()


def _open_h264(path: str, fps: float, size: tuple[int, int]) -> str | _H264Writer:
    """An opened H.264 writer, or why there is none (for the mp4v notice)."""
    try:
        import av  # noqa: F401
    except ImportError:
        return "PyAV is not installed (pip install av)"
    try:
        return _H264Writer(path, fps, *size)
    except Exception as exc:
        return f"PyAV could not open an H.264 encoder ({str(exc).splitlines()[0]})"


class VideoRenderer(Renderer):
    """Writes frames to a video file: H.264 via PyAV for MP4/MOV/M4V, else OpenCV."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float | None = None,
        fourcc: str | None = None,
        *,
        warn: Callable[[str], object] = _warn_stderr,
    ) -> None:
        self.path = os.fspath(path)
        suffix = Path(self.path).suffix.lower()
        #: ``h264`` (PyAV) or the FourCC OpenCV writes; an explicit ``fourcc`` means OpenCV.
        self.fourcc = (
            fourcc
            or ("h264" if suffix in H264_EXTENSIONS else None)
            or (VIDEO_EXTENSIONS.get(suffix, "mp4v"))
        )
        self.fps = float(fps) if fps and fps > 0 else DEFAULT_FPS
        parent = Path(self.path).parent
        if not parent.is_dir():
            raise RenderError(f"cannot write {self.path}: folder {parent} does not exist")
        if Path(self.path).is_dir():
            raise RenderError(f"cannot write video {self.path}: it is a folder")
        try:
            clean_stale_temps_of(self.path)
        except OSError as exc:  # a loop of symbolic links
            raise RenderError(f"cannot write {self.path}: {describe_os_error(exc)}") from None
        self._tmp = temp_path(self.path, keep_suffix=True)  # FFmpeg picks the container by name
        self._check_writable()
        self.count = 0
        self.size: tuple[int, int] | None = None
        self._writer: Any = None
        self._closed = False
        self._warn = warn
        self._resized = 0
        #: The output failed and was dropped (nothing replaces an earlier file).
        self.failed = False

    def _check_writable(self) -> None:
        """Fail now, not at the first frame, when the folder refuses new files."""
        try:
            with open(self._tmp, "x"):
                pass
        except OSError as exc:
            raise RenderError(f"cannot write {self.path}: {describe_os_error(exc)}") from None
        os.unlink(self._tmp)

    def _open(self, width: int, height: int) -> None:
        import cv2

        if self.fourcc == "h264":
            opened = _open_h264(str(self._tmp), self.fps, (width, height))
            if isinstance(opened, _H264Writer):
                self._writer = opened
                self.size = (width, height)
                return
            self.fourcc = "mp4v"
            print(
                f"note: {self.path} is written as mp4v, which browsers do not play: {opened}",
                file=sys.stderr,
            )
        writer = cv2.VideoWriter(
            str(self._tmp), cv2.VideoWriter.fourcc(*self.fourcc), self.fps, (width, height)
        )
        if not writer.isOpened():
            raise RenderError(
                f"cannot write video {self.path} ({self.fourcc}, {width}x{height}): OpenCV's "
                "VideoWriter refused it (unwritable path or codec missing; try .avi)"
            )
        self._writer = writer
        self.size = (width, height)

    def write(self, image: np.ndarray, info: FrameInfo | None = None) -> None:
        import cv2

        if self._closed:
            raise RenderError(f"{self.path}: renderer is closed")
        _bgr(image)  # checks the shape and type
        h, w = image.shape[:2]
        if self._writer is None:
            # Encoders refuse a 1-pixel side (a 1x1 image first in a folder): use 2;
            # H.264's 4:2:0 chroma needs even sides: an odd side gets one more pixel.
            even = 2 if self.fourcc == "h264" else 1
            self._open(max(w + (-w % even), 2), max(h + (-h % even), 2))
        assert self.size is not None
        if (w, h) != self.size:
            tw, th = self.size
            if tw - w in (0, 1) and th - h in (0, 1):
                # the odd-side case: repeat the last column/row instead of scaling
                image = cv2.copyMakeBorder(image, 0, th - h, 0, tw - w, cv2.BORDER_REPLICATE)
            else:
                # A video has one frame size; later frames of another size are scaled to it.
                if not self._resized:
                    self._warn(
                        f"warning: {self.path}: frame {self.count} is {w}x{h} but the video "
                        f"is {tw}x{th} (the input changed size); frames of another size are "
                        "scaled to the first one"
                    )
                self._resized += 1
                image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        if isinstance(self._writer, _H264Writer):
            self._writer.write(image)
        else:
            with serial_opencv():
                bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            self._writer.write(bgr)
        self.count += 1

    def close(self) -> None:
        """Finalise the video, check it can be read back, and move it into place."""
        if self._closed:
            return
        self._closed = True
        if self._writer is None:
            return  # no frame: nothing replaces an earlier file
        try:
            self._release()
        except Exception as exc:  # PyAV raises on a failed flush (a full disk, say)
            self.failed = True
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
            raise RenderError(f"cannot write video {self.path}: {exc}") from None
        problem = self._verify()
        if problem is not None:
            self.failed = True
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
            raise RenderError(f"cannot write video {self.path}: {problem}")
        try:
            replace_into_place(self._tmp, self.path)
        except OSError as exc:
            self.failed = True
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
            raise RenderError(f"cannot write video {self.path}: {describe_os_error(exc)}") from None

    def _release(self) -> None:
        if isinstance(self._writer, _H264Writer):
            self._writer.close()
        else:
            self._writer.release()

    def _verify(self) -> str | None:
        """Why the finished temporary is not a complete video (None when it is).

        ``VideoWriter`` swallows write errors; a full disk leaves a file without its
        index or with a header that counts fewer frames than were written, which reading
        it back shows (a header read, not a decode).
        """
        import cv2

        try:
            free = os.statvfs(self._tmp.parent).f_bavail
        except OSError:
            free = 1
        if free == 0:  # the last write most likely failed; FFmpeg would only complain
            return "No space left on device (the disk is full)"
        if self._tmp.suffix.lower() in (".mp4", ".m4v", ".mov") and not _has_mp4_index(self._tmp):
            return "the finished file has no index ('moov' box): disk full or I/O error?"
        cap = cv2.VideoCapture(str(self._tmp))
        try:
            reported = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
            ok = reported > 0 and abs(reported - self.count) <= 1 and cap.grab()
        finally:
            cap.release()
        if ok:
            return None
        if free == 0:
            return "No space left on device (the disk is full)"
        return (
            f"the finished file holds {reported} of the {self.count} frames written "
            "(disk full or I/O error?)"
        )

    def discard(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.failed = True
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._release()
        with contextlib.suppress(OSError):
            os.unlink(self._tmp)


def _has_mp4_index(path: Path) -> bool:
    """Whether an MP4/MOV file has its top-level ``moov`` box (written last, on release)."""
    import struct

    try:
        with open(path, "rb") as f:
            while header := f.read(8):
                if len(header) < 8:
                    return False
                size, kind = struct.unpack(">I4s", header)
                if kind == b"moov":
                    return True
                if size == 1:  # 64-bit size follows
                    size = struct.unpack(">Q", f.read(8))[0] - 8
                elif size == 0:  # to the end of the file
                    return False
                f.seek(size - 8, os.SEEK_CUR)
    except (OSError, struct.error):
        return False
    return False


class ImageRenderer(Renderer):
    """Writes each frame as an image: into a folder, or (one frame) to an image path."""

    def __init__(self, path: str | os.PathLike[str], *, ext: str = ".png") -> None:
        text = os.fspath(path)
        self.path = text
        p = Path(text)
        self.single = p.suffix.lower() in IMAGE_EXTENSIONS and not text.endswith(("/", os.sep))
        self.ext = ext if ext.startswith(".") else f".{ext}"
        self.count = 0
        self.written: list[str] = []
        import cv2

        target_ext = p.suffix if self.single else self.ext
        if not cv2.haveImageWriter(f"x{target_ext}"):
            raise RenderError(
                f"cannot render to {text}: this OpenCV cannot write {target_ext} images "
                "(use .png, .jpg, a folder or a video such as .mp4)"
            )
        if self.single:
            if not p.parent.is_dir():
                raise RenderError(f"cannot write {text}: folder {p.parent} does not exist")
            if p.is_dir():
                raise RenderError(f"cannot write {text}: it is a folder")
            probe = temp_path(p)
            try:  # fail now, not after the models have loaded
                with open(probe, "x"):
                    pass
                os.unlink(probe)
            except OSError as exc:
                raise RenderError(f"cannot write {text}: {describe_os_error(exc)}") from None
        else:
            try:
                p.mkdir(parents=True, exist_ok=True)
            except FileExistsError:
                raise RenderError(f"cannot create folder {text}: a file has that name") from None
            except OSError as exc:
                reason = describe_os_error(exc)
                raise RenderError(f"cannot create folder {text}: {reason}") from None
        folder = p.parent if self.single else p
        clean_stale_temps(folder)
        self._pending: Path | None = None  # the single image, until close()
        self._names: set[str] = set()

    def _target(self, info: FrameInfo | None) -> Path:
        if self.single:
            if self.count:
                raise RenderError(
                    f"{self.path} is one image but the input has several frames; "
                    "render to a folder (a path ending in '/') or a video (.mp4)"
                )
            return Path(self.path)
        source = Path(info.source) if info is not None else None
        if source is not None and source.suffix.lower() in IMAGE_EXTENSIONS:
            name = source.stem + self.ext
            if name in self._names:  # the same stem twice (a glob over several folders)
                name = f"{source.stem}_{self.count:06d}{self.ext}"
        else:
            index = info.index if info is not None else self.count
            name = f"frame_{index:06d}{self.ext}"
        self._names.add(name)
        return Path(self.path) / name

    def write(self, image: np.ndarray, info: FrameInfo | None = None) -> None:
        import cv2

        target = self._target(info)
        bgr = _bgr(image)
        try:
            ok, data = cv2.imencode(target.suffix or self.ext, bgr)
        except cv2.error:
            ok = False
        if not ok:
            raise RenderError(f"cannot encode {target} (unsupported image extension?)")
        tmp: Path | None = None
        try:
            final = final_path(target)  # (OSError for a loop of symbolic links)
            tmp = temp_path(final)
            with open(tmp, "xb") as f:  # (numpy's tofile hides the errno of a short write)
                f.write(data.tobytes())
            if self.single:
                self._pending = tmp  # moved into place when the run ends
            else:
                # Whole or absent under its name; no fsync per frame (it would cost a
                # disk flush per image: the video and landmark files get theirs at close).
                os.replace(tmp, final)
        except OSError as exc:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise RenderError(f"cannot write {target}: {describe_os_error(exc)}") from None
        self.written.append(str(target))
        self.count += 1

    def close(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            replace_into_place(pending, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(pending)
            raise RenderError(f"cannot write {self.path}: {describe_os_error(exc)}") from None

    def discard(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            with contextlib.suppress(OSError):
                os.unlink(pending)


def open_renderer(path: str | os.PathLike[str], *, fps: float | None = None) -> Renderer:
    """The renderer for ``path`` by its extension (see the module docstring)."""
    text = os.fspath(path)
    suffix = Path(text).suffix.lower()
    if suffix in VIDEO_EXTENSIONS and not text.endswith(("/", os.sep)):
        return VideoRenderer(text, fps=fps)
    return ImageRenderer(text)
