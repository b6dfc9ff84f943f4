"""Timestamps: plain ``int`` microseconds, plus a few reserved values.

Timestamps sit on the hot path (every packet, every bound check), so they are
ints rather than objects. The reserved values mirror MediaPipe's special
timestamps and sort correctly against ordinary ones:

``UNSET < UNSTARTED < PRE_STREAM < MIN <= t <= MAX < POST_STREAM < DONE``

``DONE`` is the bound of a stream that will carry no more packets ("one over
post-stream" in MediaPipe).
"""

from __future__ import annotations

from typing import TypeAlias

Timestamp: TypeAlias = int

UNSET: Timestamp = -(2**63)
UNSTARTED: Timestamp = UNSET + 1
PRE_STREAM: Timestamp = UNSET + 2
MIN: Timestamp = UNSET + 3
MAX: Timestamp = 2**63 - 3
POST_STREAM: Timestamp = 2**63 - 2
DONE: Timestamp = 2**63 - 1

_NAMES = {
    UNSET: "Timestamp.UNSET",
    UNSTARTED: "Timestamp.UNSTARTED",
    PRE_STREAM: "Timestamp.PRE_STREAM",
    MIN: "Timestamp.MIN",
    MAX: "Timestamp.MAX",
    POST_STREAM: "Timestamp.POST_STREAM",
    DONE: "Timestamp.DONE",
}


def is_range_value(ts: Timestamp) -> bool:
    """True for an ordinary timestamp a packet in a regular stream may carry."""
    return MIN <= ts <= MAX


def is_allowed_in_stream(ts: Timestamp) -> bool:
    """True for any timestamp a packet may carry (range values, pre- and post-stream)."""
    return is_range_value(ts) or ts in (PRE_STREAM, POST_STREAM)


def next_allowed(ts: Timestamp) -> Timestamp:
    """The lowest timestamp a stream may carry after a packet at ``ts``.

    After pre-stream or post-stream packets nothing may follow (a stream with such
    a packet carries only that one), so the bound jumps to ``DONE``.
    """
    if ts in (PRE_STREAM, POST_STREAM) or ts >= MAX:
        return DONE
    return ts + 1


def describe(ts: Timestamp) -> str:
    """Human-readable form for error messages: ``1000000 (1.000000 s)`` or a reserved name."""
    name = _NAMES.get(ts)
    if name is not None:
        return name
    return f"{ts} ({ts / 1e6:.6f} s)"
