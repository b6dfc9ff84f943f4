"""Checking input side packets against what the graph declares, before anything runs.

A graph file may say what each of its side packets accepts::

    side_inputs:
      num_faces: {default: 1, type: int, min: 1}
      min_detection_confidence: {default: 0.5, type: float, min: 0, max: 1}
      detector: {default: short_range, type: str, choices_from: face_detectors}
      mode: {default: fast, choices: [fast, accurate]}

``type`` is one of ``int``, ``float`` (an int is accepted and made a float), ``bool``
and ``str``; ``min``/``max`` bound numbers (inclusive); ``choices`` lists the allowed
values; ``choices_from`` names a ``facegraph.choices`` entry point, a function returning
the allowed names at the time of the check (the registered face detectors, say), so that
a plugin's names are accepted without editing the graph.

:func:`check_side_packets` raises :class:`SidePacketError`, a one-line message naming
the side packet, what was given and what is accepted, with a did-you-mean for near-miss
names. It is a ``ValueError`` too, so Python callers can treat it as one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import FacegraphError
from .named_registry import did_you_mean
from .plugins import entry_points

__all__ = ["CHOICES", "SideInputRule", "SidePacketError", "check_side_packet", "check_side_packets"]

#: Entry-point group of ``choices_from`` sources: ``name = "module:function"``.
CHOICES = "facegraph.choices"

_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (float, int),
    "bool": (bool,),
    "str": (str,),
}


class SidePacketError(FacegraphError, ValueError):
    """A side packet's value is not one the graph accepts."""


@dataclass(frozen=True, slots=True)
class SideInputRule:
    """What a graph side packet accepts (any field None: not checked)."""

    type: str | None = None
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    choices_from: str | None = None

    def describe(self) -> str:
        """``an int >= 1``, ``a float in [0, 1]``, ``one of a, b``: the accepted values."""
        allowed = self.allowed()
        if allowed is not None:
            return "one of " + ", ".join(str(c) for c in allowed)
        article = {"int": "an int", "float": "a number", "bool": "true or false", "str": "a string"}
        text = article.get(self.type or "", "a value")
        if self.min is not None and self.max is not None:
            return f"{text} in [{_num(self.min)}, {_num(self.max)}]"
        if self.min is not None:
            return f"{text} >= {_num(self.min)}"
        if self.max is not None:
            return f"{text} <= {_num(self.max)}"
        return text

    def allowed(self) -> tuple[Any, ...] | None:
        """The allowed values (``choices``, or those of ``choices_from`` now), or None."""
        if self.choices is not None:
            return self.choices
        if self.choices_from is None:
            return None
        return tuple(choices_from(self.choices_from))


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def choices_from(source: str) -> list[str]:
    """The names a ``facegraph.choices`` entry point returns (sorted)."""
    for ep in entry_points(CHOICES):
        if ep.name == source:
            names = ep.load()()
            return sorted(str(n) for n in names)
    known = [ep.name for ep in entry_points(CHOICES)]
    raise SidePacketError(
        f"choices_from: no '{source}' in the {CHOICES} entry points{did_you_mean(source, known)}"
        f" (known: {', '.join(known) or 'none'})"
    )


def check_side_packet(name: str, value: Any, rule: SideInputRule) -> Any:
    """``value`` if ``rule`` accepts it (an int made a float for ``type: float``); else
    :class:`SidePacketError` in one line."""

    given = value

    def fail(extra: str = "") -> SidePacketError:
        return SidePacketError(
            f"side packet '{name}' must be {rule.describe()}, got {given!r}{extra}"
        )

    if rule.type is not None:
        types = _TYPES.get(rule.type)
        if types is None:
            raise SidePacketError(
                f"side packet '{name}': unknown type '{rule.type}' in the graph "
                f"(use {', '.join(_TYPES)})"
            )
        if not isinstance(value, types) or (rule.type != "bool" and isinstance(value, bool)):
            raise fail()
        if rule.type == "float":
            value = float(value)  # type: ignore[arg-type]  # an int or float: checked above
            if not math.isfinite(value):
                raise fail()
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and (
        (rule.min is not None and value < rule.min) or (rule.max is not None and value > rule.max)
    ):
        raise fail()
    allowed = rule.allowed()
    if allowed is not None and value not in allowed:
        hint = did_you_mean(value, [str(a) for a in allowed]) if isinstance(value, str) else ""
        raise fail(f"{hint.replace(' (', '; ').rstrip(')')}" if hint else "")
    return value


def check_side_packets(
    given: Mapping[str, Any], rules: Mapping[str, SideInputRule | None]
) -> dict[str, Any]:
    """Check every given side packet that has a rule; return the (coerced) values."""
    out = dict(given)
    for name, value in given.items():
        rule = rules.get(name)
        if rule is not None:
            out[name] = check_side_packet(name, value, rule)
    return out
