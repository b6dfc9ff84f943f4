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
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from facegraph import Closeable, FacegraphError
from facegraph.vision.media import DEFAULT_FPS, IMAGE_EXTENSIONS, FrameInfo

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
        """Finish the output (idempotent)."""


def _bgr(image: np.ndarray) -> np.ndarray:
    import cv2

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise RenderError(
            f"can only render HxWx3 uint8 RGB images, got {image.shape} {image.dtype}"
        )
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
        self, path: str | os.PathLike[str], fps: float | None = None, fourcc: str | None = None
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
        self.count = 0
        self.size: tuple[int, int] | None = None
        self._writer: Any = None
        self._closed = False

    def _open(self, width: int, height: int) -> None:
        import cv2

        if self.fourcc == "h264":
            opened = _open_h264(self.path, self.fps, (width, height))
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
            self.path, cv2.VideoWriter.fourcc(*self.fourcc), self.fps, (width, height)
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
                image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        if isinstance(self._writer, _H264Writer):
            self._writer.write(image)
        else:
            self._writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        self.count += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if isinstance(self._writer, _H264Writer):
            self._writer.close()
        elif self._writer is not None:
            self._writer.release()


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
        if self.single:
            if not p.parent.is_dir():
                raise RenderError(f"cannot write {text}: folder {p.parent} does not exist")
        else:
            try:
                p.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RenderError(f"cannot create folder {text}: {exc.strerror or exc}") from None
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
        ok, data = cv2.imencode(target.suffix or self.ext, bgr)
        if not ok:
            raise RenderError(f"cannot encode {target} (unsupported image extension?)")
        try:
            data.tofile(str(target))
        except OSError as exc:
            raise RenderError(f"cannot write {target}: {exc.strerror or exc}") from None
        self.written.append(str(target))
        self.count += 1


def open_renderer(path: str | os.PathLike[str], *, fps: float | None = None) -> Renderer:
    """The renderer for ``path`` by its extension (see the module docstring)."""
    text = os.fspath(path)
    suffix = Path(text).suffix.lower()
    if suffix in VIDEO_EXTENSIONS and not text.endswith(("/", os.sep)):
        return VideoRenderer(text, fps=fps)
    return ImageRenderer(text)
