"""Landmark output files: JSON Lines (one object per frame), a JSON array, or stdout.

::

    from facegraph.vision.writers import LandmarksWriter

    with LandmarksWriter("out.jsonl") as writer:      # "out.json", or "-" for stdout
        writer.write(frame.info, faces)               # faces: FaceLandmarks or Detection

One record per frame::

    {"frame": 0, "timestamp_us": 0, "source": "clip.mp4", "width": 640, "height": 480,
     "faces": [{"score": 0.99,
                "box": {"xMin": .., "xMax": .., "yMin": .., "yMax": .., "width": .., "height": ..},
                "keypoints": [{"x": .., "y": .., "z": .., "name": "lips"}, ...]}]}

Faces use the seed's format (the JavaScript ``face-landmarks-detection`` result) in
pixels; a frame without a face has ``"faces": []``. Detections (from a detector-only
graph) have the same shape with their 6 keypoints named ``rightEye``, ``leftEye``,
``noseTip``, ``mouthCenter``, ``rightEarTragion``, ``leftEarTragion`` and no ``z``.

Durability: a file output is written to a hidden temporary beside the target
(:mod:`facegraph.atomic_files`) and moved over it with ``os.replace`` on
:meth:`LandmarksWriter.close`, so readers never see half a file and an earlier file is
replaced only by a complete one. ``.jsonl`` lines (and ``-``) are flushed one by one:
a full disk is reported at the frame it hits. Every write and the close are checked.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import orjson
from facegraph import Closeable, FacegraphError
from facegraph.atomic_files import (
    clean_stale_temps_of,
    describe_os_error,
    replace_into_place,
    temp_path,
)
from facegraph.vision.face.indices import region_names
from facegraph.vision.face.types import KEYPOINT_NAMES, Detection, FaceLandmarks
from facegraph.vision.media import FrameInfo

__all__ = [
    "FACES_OMITTED",
    "FACE_EXTRA_STREAMS",
    "LandmarksWriter",
    "OutputError",
    "detection_to_dict",
    "dumps_record",
    "face_extras",
    "face_to_dict",
    "faces_to_dicts",
    "frame_record",
]

Format = Literal["jsonl", "json"]


class OutputError(FacegraphError):
    """An output file cannot be written (bad extension, missing folder, no permission)."""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


#: BlazeFace keypoint names in the JavaScript ``face-detection`` spelling.
DETECTION_KEYPOINT_NAMES: tuple[str, ...] = tuple(_camel(n) for n in KEYPOINT_NAMES)


def _round(value: float, digits: int | None) -> float:
    return value if digits is None else round(value, digits)


def face_to_dict(
    face: FaceLandmarks, width: int, height: int, *, digits: int | None = 3
) -> dict[str, Any]:
    """One face in the seed format, in pixels, with its presence ``score`` first.

    The same keys and names as ``FaceLandmarks.to_dict``; ``digits`` rounds every
    coordinate (3 = 0.001 px, far below the model's accuracy, and it halves the file
    size; ``None`` keeps the float32 values exactly).
    """
    px = face.pixels(width, height).astype(np.float64)
    if digits is not None:
        px = np.round(px, digits)  # vectorised: Python's round() per value is 5x slower
    names = _region_names(len(px))
    # One comprehension, no per-point appends: a quarter faster (this runs per face and frame).
    keypoints: list[dict[str, Any]] = [
        {"x": x, "y": y, "z": z} if name is None else {"x": x, "y": y, "z": z, "name": name}
        for (x, y, z), name in zip(px.tolist(), names, strict=True)
    ]
    lo, hi = px[:, :2].min(axis=0), px[:, :2].max(axis=0)
    box = {
        "xMin": float(lo[0]),
        "xMax": float(hi[0]),
        "yMin": float(lo[1]),
        "yMax": float(hi[1]),
        "width": _round(float(hi[0] - lo[0]), digits),
        "height": _round(float(hi[1] - lo[1]), digits),
    }
    score = _round(float(face.score), 6 if digits is not None else None)
    out: dict[str, Any] = {"score": score, "box": box, "keypoints": keypoints}
    if face.track_id is not None:
        out = {"trackId": face.track_id, **out}
    return out


@functools.lru_cache(maxsize=4)
def _region_names(n: int) -> tuple[str | None, ...]:
    return tuple(region_names(n))


def detection_to_dict(
    detection: Detection, width: int, height: int, *, digits: int | None = 3
) -> dict[str, Any]:
    """One detection in the seed format (box and named keypoints, no z), in pixels."""
    x, y, w, h = detection.box_pixels(width, height)
    box = {"xMin": x, "xMax": x + w, "yMin": y, "yMax": y + h, "width": w, "height": h}
    keypoints: list[dict[str, Any]] = []
    for i, (kx, ky) in enumerate(detection.keypoints.tolist()):
        kp: dict[str, Any] = {"x": _round(kx * width, digits), "y": _round(ky * height, digits)}
        if len(detection.keypoints) == len(DETECTION_KEYPOINT_NAMES):
            kp["name"] = DETECTION_KEYPOINT_NAMES[i]
        keypoints.append(kp)
    return {
        "score": _round(float(detection.score), 6 if digits is not None else None),
        "box": {k: _round(float(v), digits) for k, v in box.items()},
        "keypoints": keypoints,
    }


def faces_to_dicts(
    faces: Iterable[Any] | None, width: int, height: int, *, digits: int | None = 3
) -> list[dict[str, Any]]:
    """Faces (``FaceLandmarks`` or the façade's ``Face``), detections or ready dicts, as dicts.

    ``None`` (no packet) is an empty list; a single face is accepted as well as a list.
    """
    if faces is None:
        return []
    if isinstance(faces, (FaceLandmarks, Detection, Mapping)):
        faces = [faces]
    out: list[dict[str, Any]] = []
    for face in faces:
        if isinstance(face, FaceLandmarks):
            out.append(face_to_dict(face, width, height, digits=digits))
        elif isinstance(face, Detection):
            out.append(detection_to_dict(face, width, height, digits=digits))
        elif isinstance(face, Mapping):
            out.append(dict(face))
        elif isinstance(getattr(face, "raw", None), FaceLandmarks):  # facegraph.FaceMesh's Face
            out.append(face_to_dict(face.raw, width, height, digits=digits))
        else:
            raise TypeError(
                f"cannot write {type(face).__name__} as a face: expected FaceLandmarks, "
                "Detection or a dict"
            )
    return out


def frame_record(
    info: FrameInfo,
    faces: Iterable[Any] | None,
    *,
    streams: Mapping[str, Any] | None = None,
    digits: int | None = 3,
    extras: Sequence[Mapping[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """The output object for one frame.

    ``faces`` go under ``"faces"`` (pass ``FACES_OMITTED`` to leave the key out);
    ``extras[i]`` (when given) adds keys to face i's object, e.g. ``blendshapes``,
    ``transform``, ``head_pose`` (see :func:`face_extras`); each of ``streams`` (other graph
    outputs, ``None`` where the stream had no packet) goes under its name, encoded by
    :mod:`facegraph.vision.encoders`.
    """
    record: dict[str, Any] = {
        "frame": info.index,
        "timestamp_us": info.timestamp_us,
        "source": info.source,
        "width": info.width,
        "height": info.height,
    }
    if faces is not FACES_OMITTED:
        dicts = faces_to_dicts(faces, info.width, info.height, digits=digits)
        for face, extra in zip(dicts, extras or (), strict=False):
            if extra:
                face.update(extra)
        record["faces"] = dicts
    if streams:
        from facegraph.vision.encoders import EncodeContext, encode

        for name, value in streams.items():
            if name in record:
                raise OutputError(
                    f"output stream '{name}' has the name of a record field; rename the stream"
                )
            record[name] = encode(value, EncodeContext(info.width, info.height, digits, name))
    return record


#: ``frame_record(info, FACES_OMITTED, streams=...)``: a record without the ``faces`` key.
FACES_OMITTED: Any = type("FacesOmitted", (), {"__repr__": lambda self: "FACES_OMITTED"})()


#: Graph outputs that :func:`face_extras` folds into each face's object (so they are not
#: written a second time under their own names).
FACE_EXTRA_STREAMS: tuple[str, ...] = ("blendshapes", "geometry")


def face_extras(outputs: Mapping[str, Any], count: int) -> list[dict[str, Any]] | None:
    """Per-face extra keys from a frame's graph outputs ``blendshapes`` (name → score) and
    ``geometry`` (``transform`` 4×4, ``head_pose`` {yaw, pitch, roll} degrees): anything
    with a ``to_dict()``, one per face in face order. None when neither stream has data."""
    extras: list[dict[str, Any]] = [{} for _ in range(count)]
    found = False
    for stream, key in zip(FACE_EXTRA_STREAMS, ("blendshapes", None), strict=True):
        values = outputs.get(stream)
        if not values:
            continue
        for extra, value in zip(extras, values, strict=False):
            if value is None:  # e.g. a face too small for the geometry fit
                continue
            found = True
            data = value.to_dict()
            if key is None:
                extra.update(data)
            else:
                extra[key] = data
    return extras if found else None


def _has_negative_exponent(data: bytes) -> bool:
    """Whether ``data`` holds a digit followed by "e-" (found with bytes.find: a regex over
    a 20 kB line costs more than orjson's encoding of it, and "e-" is rare: a file name)."""
    at = data.find(b"e-")
    while at > 0:
        if 0x30 <= data[at - 1] <= 0x39:
            return True
        at = data.find(b"e-", at + 2)
    return False


def _top_level_nones(record: Any) -> int:
    """None values directly in ``record`` (a dict or a list): streams without a packet."""
    if isinstance(record, dict):
        return sum(value is None for value in record.values())
    if isinstance(record, list):
        return sum(value is None for value in record)
    return 0


def _maybe_different(data: bytes, record: Any) -> bool:
    """Whether json.dumps could spell orjson's ``data`` (of ``record``) differently: a
    float below 1e-4 (orjson writes "0.00001" or "1e-7" where Python writes "1e-05",
    "1e-07"), a null that may be a NaN or an infinity (orjson writes them as null where
    json.dumps(allow_nan=False) refuses them; a null is certainly a None when there are
    no more of them than the record's own top-level Nones, e.g. ``"detections":null``),
    or beyond ASCII (json.dumps escapes it, and DEL)."""
    if not data.isascii() or b"\x7f" in data or b"0.0000" in data:
        return True
    nulls = data.count(b"null")
    if nulls and nulls != _top_level_nones(record):
        return True
    return _has_negative_exponent(data)


#: Dataclasses and datetimes go to ``default`` (which refuses them, as json.dumps does)
#: instead of being written by orjson. (It still writes UUIDs and plain Enum members,
#: which json.dumps refuses; records hold what the encoders return, never those.)
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def _not_json(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is left to json.dumps")


def dumps_record(record: Any) -> str:
    """``json.dumps(record, separators=(",", ":"), allow_nan=False)``, the same text, faster.

    orjson encodes a 478-point face ~10x faster than the json module (0.04 ms against
    0.5 ms a frame: a fifth of ``facegraph run``'s time per frame). Its text is taken only
    when it is certainly identical: none of the spellings where the two can differ (see
    ``_maybe_different``; coordinates rounded to 0.001 px never hit them), and no type
    orjson does not take (non-string keys, numpy scalars, huge ints). Anything else goes
    to json.dumps, which also raises exactly as before (ValueError on NaN, TypeError on
    an unknown type).
    """
    try:
        data = orjson.dumps(record, default=_not_json, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        pass
    else:
        if not _maybe_different(data, record):
            return data.decode("ascii")
    return json.dumps(record, separators=(",", ":"), allow_nan=False)


def _format_for(path: str, fmt: Format | None) -> Format:
    if fmt is not None:
        return fmt
    if path == "-":
        return "jsonl"
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "json"
    raise OutputError(
        f"cannot tell the output format of {path!r}: use a .jsonl (one object per frame), "
        ".json (one array) or '-' (stdout) name"
    )


class LandmarksWriter(Closeable):
    """Writes one record per frame to ``.jsonl``, ``.json`` or ``-`` (stdout).

    ``format`` overrides the choice by extension. Use as a context manager or call
    :meth:`close`. A file output is written to a hidden temporary beside ``path`` and
    moved over it by :meth:`close` (:meth:`discard` drops it instead), so an existing
    file keeps its content until the new one is complete. A failed write or close (a
    full disk, an I/O error) removes the temporary and raises :class:`OutputError`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        format: Format | None = None,
        digits: int | None = 3,
        stdout: IO[str] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.format: Format = _format_for(self.path, format)
        self.digits = digits
        #: Frames written so far.
        self.count = 0
        self._closed = False
        #: The output failed or was discarded (an earlier file under the name is unchanged).
        self.failed = False
        self._tmp: str | None = None
        self._own = self.path != "-"
        if not self._own:
            self._file: IO[str] = stdout if stdout is not None else sys.stdout
            return
        target = Path(self.path)
        if not target.parent.is_dir():
            raise OutputError(f"cannot write {self.path}: folder {target.parent} does not exist")
        if target.is_dir():
            raise OutputError(f"cannot write {self.path}: it is a folder")
        try:
            clean_stale_temps_of(target)
        except OSError as exc:  # a loop of symbolic links
            raise OutputError(f"cannot write {self.path}: {describe_os_error(exc)}") from None
        tmp = temp_path(target)
        try:
            # Not mkstemp: its 0600 mode would survive os.replace; "x" mode gets the
            # umask's permissions like any other output and never clobbers a file.
            self._file = open(tmp, "x", encoding="utf-8")  # noqa: SIM115 - kept open
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {describe_os_error(exc)}") from None
        self._tmp = str(tmp)
        if self.format == "json":
            self._checked(lambda: self._file.write("["))

    def _checked(self, action: Callable[[], object]) -> None:
        """Run one write; on an OS error drop the temporary and raise one clear line."""
        try:
            action()
        except OSError as exc:
            self._drop()
            raise OutputError(
                f"cannot write {self.path}: {describe_os_error(exc)}; "
                + ("the earlier file is unchanged" if self._own else "output stopped")
            ) from None

    def _drop(self) -> None:
        self._closed = True
        self.failed = True
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
            self._tmp = None

    def write(
        self,
        info: FrameInfo,
        faces: Iterable[Any] | None,
        streams: Mapping[str, Any] | None = None,
        extras: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> dict[str, Any]:
        """Write one frame's record (and return it); ``streams``: other outputs by name;
        ``extras``: per-face keys (see :func:`frame_record`)."""
        record = frame_record(info, faces, streams=streams, digits=self.digits, extras=extras)
        self.write_record(record)
        return record

    def write_record(self, record: Mapping[str, Any]) -> None:
        """Write an already-built record."""
        if self._closed:
            raise OutputError(f"{self.path}: writer is closed")
        text = dumps_record(record)
        if self.format == "jsonl":
            line = text + "\n"
        else:
            line = ("\n" if self.count == 0 else ",\n") + text

        def write() -> None:
            self._file.write(line)
            if self.format == "jsonl":
                self._file.flush()  # a failed write shows now, naming its frame

        self._checked(write)
        self.count += 1

    def close(self) -> None:
        """Finish the file and move it into place (for ``.json``: close the array first)."""
        if self._closed:
            return
        if self.format == "json":
            self._checked(lambda: self._file.write("\n]\n" if self.count else "]\n"))
        if not self._own:
            self._closed = True
            self._checked(self._file.flush)
            return
        self._checked(self._file.close)
        tmp = self._tmp
        assert tmp is not None
        self._checked(lambda: replace_into_place(tmp, self.path))
        self._tmp = None
        self._closed = True

    def discard(self) -> None:
        """Abandon the output: remove the temporary (an earlier file stays as it was)."""
        if self._own:
            self._drop()
        else:
            self.close()
