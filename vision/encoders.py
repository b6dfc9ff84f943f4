"""JSON encoders for graph output values: what ``facegraph run --output`` writes per stream.

Every graph output stream lands in each frame's record under the stream's name; its
value is turned into JSON by the first encoder registered for its type (or a base
class)::

    from facegraph.vision.encoders import json_encoder

    @json_encoder(MouthState)
    def _mouth(value: MouthState, ctx: EncodeContext) -> object:
        return {"open": value.open, "ratio": value.ratio}

Built in: ``None``, bools, numbers, strings, lists/tuples/sets, dicts (string keys),
numpy arrays and scalars, :class:`~facegraph.vision.face.types.FaceLandmarks` and
:class:`~facegraph.vision.face.types.Detection` (in pixels, the ``faces`` format),
:class:`~facegraph.vision.face.types.NormalizedRect`, and — as a fallback — any object
with a ``to_dict()`` method taking no argument. A value nothing can encode raises
:class:`EncodeError` naming the stream and the type, and how to register an encoder.

Encoders receive an :class:`EncodeContext` with the frame size (for pixel
coordinates), the rounding and :meth:`EncodeContext.encode` for nested values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from facegraph import FacegraphError, Registry
from facegraph.vision.face.types import Detection, FaceLandmarks, NormalizedRect

__all__ = [
    "ENCODERS",
    "EncodeContext",
    "EncodeError",
    "Encoder",
    "encode",
    "json_encoder",
]

Encoder = Callable[[Any, "EncodeContext"], Any]
T = TypeVar("T")

#: Encoders by the ``module.qualname`` of the type they encode.
ENCODERS: Registry[Encoder] = Registry("JSON encoder")


class EncodeError(FacegraphError):
    """A graph output value has no JSON encoder."""


def _type_key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def json_encoder(cls: type, *, replace: bool = False) -> Callable[[T], T]:
    """Decorator: ``fn(value, ctx) -> JSON-able`` encodes values of ``cls`` (and subclasses)."""

    def decorate(fn: T) -> T:
        ENCODERS.add(_type_key(cls), fn, replace=replace)  # type: ignore[arg-type]
        return fn

    return decorate


@dataclass(frozen=True, slots=True)
class EncodeContext:
    """What an encoder may need besides the value."""

    width: int
    """Frame width in pixels (face types are written in pixels)."""
    height: int
    """Frame height in pixels."""
    digits: int | None = 3
    """Decimal places for coordinates (None keeps every bit of a float32)."""
    stream: str = ""
    """The output stream being encoded (for messages)."""

    def encode(self, value: Any) -> Any:
        """Encode a nested value with the registered encoders."""
        return encode(value, self)


def _encoder_for(cls: type) -> Encoder | None:
    for base in cls.__mro__:
        fn = ENCODERS.get(_type_key(base))
        if fn is not None:
            return fn
    return None


def encode(value: Any, ctx: EncodeContext) -> Any:
    """``value`` as JSON-able Python (dicts, lists, str, numbers, bools, None).

    Raises :class:`EncodeError` naming ``ctx.stream`` and the type when no encoder fits.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    fn = _encoder_for(type(value))
    if fn is not None:
        return fn(value, ctx)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        try:
            return encode(to_dict(), ctx)
        except TypeError as exc:
            if "argument" not in str(exc):
                raise
    where = f"output stream '{ctx.stream}'" if ctx.stream else "a value"
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    raise EncodeError(
        f"{where}: cannot write a {kind} as JSON; give it a to_dict() method or register "
        "an encoder with @facegraph.vision.encoders.json_encoder("
        f"{type(value).__qualname__}), or leave the stream out with --streams"
    )


# -- built-in encoders ---------------------------------------------------------------------


@json_encoder(float)
def _float(value: float, ctx: EncodeContext) -> float | None:
    # JSON has no NaN/inf: they become null (the writer refuses non-finite floats).
    return value if math.isfinite(value) else None


@json_encoder(list)
@json_encoder(tuple)
@json_encoder(set)
@json_encoder(frozenset)
def _sequence(value: Any, ctx: EncodeContext) -> list[Any]:
    return [encode(v, ctx) for v in value]


@json_encoder(dict)
def _mapping(value: Mapping[Any, Any], ctx: EncodeContext) -> dict[str, Any]:
    return {str(k): encode(v, ctx) for k, v in value.items()}


@json_encoder(np.ndarray)
def _array(value: np.ndarray, ctx: EncodeContext) -> Any:
    if value.dtype.kind == "f":
        a = value.astype(np.float64)
        a = np.round(a, ctx.digits) if ctx.digits is not None else a
        return [encode(v, ctx) for v in a.tolist()] if a.ndim else _float(float(a), ctx)
    if value.dtype.kind in "biu":
        return value.tolist()
    return encode(value.tolist(), ctx)


@json_encoder(np.generic)
def _scalar(value: np.generic, ctx: EncodeContext) -> Any:
    return encode(value.item(), ctx)


@json_encoder(FaceLandmarks)
def _face(value: FaceLandmarks, ctx: EncodeContext) -> dict[str, Any]:
    from facegraph.vision.writers import face_to_dict

    return face_to_dict(value, ctx.width, ctx.height, digits=ctx.digits)


@json_encoder(Detection)
def _detection(value: Detection, ctx: EncodeContext) -> dict[str, Any]:
    from facegraph.vision.writers import detection_to_dict

    return detection_to_dict(value, ctx.width, ctx.height, digits=ctx.digits)


@json_encoder(NormalizedRect)
def _rect(value: NormalizedRect, ctx: EncodeContext) -> dict[str, Any]:
    """Normalised, as MediaPipe's ``NormalizedRect`` (rotation in radians)."""
    d = 6 if ctx.digits is not None else None
    out: dict[str, Any] = {
        k: (round(v, d) if d is not None else v)
        for k, v in (
            ("xCenter", value.x_center),
            ("yCenter", value.y_center),
            ("width", value.width),
            ("height", value.height),
            ("rotation", value.rotation),
        )
    }
    if value.rect_id is not None:
        out["trackId"] = value.rect_id
    return out
