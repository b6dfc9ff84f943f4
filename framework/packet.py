"""Packets: an immutable value with a timestamp."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from .timestamp import Timestamp, describe

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Packet(Generic[T]):
    """A value stamped with a timestamp in microseconds.

    The packet is immutable; the value is shared, not copied, between every
    consumer of a stream, so calculators must treat received values as read-only
    (numpy arrays delivered by the built-in nodes are marked non-writeable where
    that is cheap).
    """

    value: T
    timestamp: Timestamp

    def at(self, timestamp: Timestamp) -> Packet[T]:
        """The same value at another timestamp (what PreviousLoopback does)."""
        return Packet(self.value, timestamp)

    def __repr__(self) -> str:
        return f"Packet({type(self.value).__name__} @ {describe(self.timestamp)})"
