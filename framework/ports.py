"""Port declarations: a calculator's inputs, outputs and side packets, declared once.

A calculator declares each port as a class attribute::

    class Scale(Calculator):
        VALUE = Input("VALUE", float, doc="number to scale")
        SCALED = Output("SCALED", float)
        FACTOR = SideInput("FACTOR", float, optional=True)
        ITEMS: Output[list[Detection]] = Output("ITEMS", list[Detection])

The type may be any class or a parametrised generic (``list[Detection]``,
``dict[str, np.ndarray]``, ``int | None``); the load-time check compares
connected ports element-wise, so ``list[Detection]`` into ``list[NormalizedRect]``
is a problem naming both nodes and the stream, while ``Any`` (or a bare ``list``
on either side) connects to anything of its kind.

The same declaration drives YAML validation (tags, required ports, type
checks between connected ports), the runtime (``ctx.get(self.VALUE)``), the
``facegraph calculators`` listing and the docs.

``multiple=True`` makes an indexed port: the YAML may connect ``TAG:0``,
``TAG:1``, ... (or a list under ``TAG``) and the calculator asks
``ctx.count(PORT)``.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any, ClassVar, Generic, Literal, TypeVar

T = TypeVar("T")

PortKind = Literal["input", "output", "side_input", "side_output"]

TAG_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]*$")


class Port(Generic[T]):
    """Base of the four port kinds. ``type`` is used for connection checks only."""

    kind: ClassVar[PortKind]
    __slots__ = ("attr", "doc", "multiple", "optional", "tag", "type")

    def __init__(
        self,
        tag: str,
        type: Any = Any,
        *,
        optional: bool = False,
        multiple: bool = False,
        doc: str = "",
    ) -> None:
        if not TAG_PATTERN.match(tag):
            raise ValueError(f"port tag {tag!r} must be UPPER_CASE letters, digits and '_'")
        self.tag = tag
        self.type = type
        self.optional = optional
        self.multiple = multiple
        self.doc = doc
        self.attr = ""  # the class attribute name, filled in by Calculator.__init_subclass__

    def type_name(self) -> str:
        return type_name(self.type)

    def __repr__(self) -> str:
        flags = "".join(
            [", optional" if self.optional else "", ", multiple" if self.multiple else ""]
        )
        return f"{type(self).__name__}({self.tag!r}, {self.type_name()}{flags})"


class Input(Port[T]):
    """An input stream port."""

    kind: ClassVar[PortKind] = "input"
    __slots__ = ()


class Output(Port[T]):
    """An output stream port."""

    kind: ClassVar[PortKind] = "output"
    __slots__ = ()


class SideInput(Port[T]):
    """An input side packet: a per-run constant, available from ``open`` on."""

    kind: ClassVar[PortKind] = "side_input"
    __slots__ = ()


class SideOutput(Port[T]):
    """An output side packet, set once (usually in ``open``)."""

    kind: ClassVar[PortKind] = "side_output"
    __slots__ = ()


def type_name(tp: Any) -> str:
    """Readable name of a port type: ``int``, ``list[Detection]``, ``Any``, ``int | None``."""
    if tp is Any or tp is object:
        return "Any"
    if tp is None or tp is type(None):
        return "None"
    if tp is Ellipsis:
        return "..."
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None and args:
        base = origin.__name__ if isinstance(origin, type) else repr(origin)
        return f"{base}[{', '.join(type_name(a) for a in args)}]"
    if isinstance(tp, type):
        return tp.__name__
    return repr(tp).replace("typing.", "")


def types_compatible(produced: Any, consumed: Any) -> bool:
    """Whether packets of type ``produced`` may flow into a port typed ``consumed``.

    ``Any``/``object`` on either side always connects (dynamic ports). Plain
    classes follow subclassing; generic aliases (``list[X]``) compare their origin
    and then their arguments the same way; unions accept any compatible member.
    """
    if produced is Any or consumed is Any or produced is object or consumed is object:
        return True
    if produced == consumed:
        return True
    consumed_origin = typing.get_origin(consumed)
    produced_origin = typing.get_origin(produced)
    if consumed_origin in (typing.Union, types.UnionType):
        return any(types_compatible(produced, c) for c in typing.get_args(consumed))
    if produced_origin in (typing.Union, types.UnionType):
        return all(types_compatible(p, consumed) for p in typing.get_args(produced))
    if consumed_origin is not None or produced_origin is not None:
        p_base = produced_origin or produced
        c_base = consumed_origin or consumed
        if not (isinstance(p_base, type) and isinstance(c_base, type)):
            return False
        if not issubclass(p_base, c_base):
            return False
        p_args, c_args = typing.get_args(produced), typing.get_args(consumed)
        if not p_args or not c_args:
            return True  # bare ``list`` on one side: element type unknown, accept
        if len(p_args) != len(c_args):
            return False
        return all(types_compatible(p, c) for p, c in zip(p_args, c_args, strict=True))
    if isinstance(produced, type) and isinstance(consumed, type):
        return issubclass(produced, consumed)
    return False
