"""The calculator API: a node's declared contract and its ``open``/``process``/``close``.

A calculator is an ordinary Python class::

    from pydantic import BaseModel
    from facegraph import Calculator, CalculatorContext, Input, Output, register

    @register("Scale")
    class Scale(Calculator):
        \"\"\"Multiplies each number by a constant.\"\"\"

        class Options(BaseModel):
            factor: float = 2.0

        VALUE = Input("VALUE", float)
        SCALED = Output("SCALED", float)

        def process(self, ctx: CalculatorContext) -> None:
            value = ctx.get(self.VALUE)
            if value is not None:
                ctx.emit(self.SCALED, value * self.options.factor)

Timing model (MediaPipe's): ``process`` runs once per settled input timestamp;
``ctx.emit`` stamps outputs with the input timestamp; and after ``process``
the runtime advances every output's timestamp bound past the input
timestamp, so downstream nodes learn "nothing at t" even when this node emitted
nothing. A calculator that emits at other timestamps sets
``timestamp_offset = None`` and manages its output bounds itself
(``ctx.emit(..., timestamp=t)``, ``ctx.set_bound``).

A source calculator (no input streams) has ``process`` called repeatedly until
it returns :data:`STOP`.
"""

from __future__ import annotations

import abc
import enum
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, overload

from pydantic import BaseModel, ConfigDict
from typing_extensions import TypeVar

from .packet import Packet

if typing.TYPE_CHECKING:
    from .profiler import TraceSink
from .ports import Input, Output, Port, SideInput, SideOutput
from .profiler import NodeStats
from .timestamp import Timestamp

T = TypeVar("T")
D = TypeVar("D")
#: The options model of a calculator; ``Calculator`` alone leaves ``self.options`` untyped.
OptionsT = TypeVar("OptionsT", bound=BaseModel, default=Any)

#: The input policies a graph may name (facegraph.scheduling.INPUT_POLICIES implements them).
InputPolicy = Literal["sync", "immediate", "keep_latest"]


class Signal(enum.Enum):
    """Special return values of ``process``."""

    STOP = "stop"


#: Returned by a source calculator's ``process`` when it has nothing more to produce.
STOP = Signal.STOP


class StrictOptions(BaseModel):
    """Base for options models: unknown keys are errors (typos in YAML must show).

    Attribute docstrings become field descriptions (shown by ``facegraph calculators``).
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class NoOptions(BaseModel):
    """Options model of calculators that take none (rejects any key)."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Contract:
    """Everything a calculator class declares, collected from its class attributes."""

    inputs: dict[str, Input[Any]] = field(default_factory=dict)
    outputs: dict[str, Output[Any]] = field(default_factory=dict)
    side_inputs: dict[str, SideInput[Any]] = field(default_factory=dict)
    side_outputs: dict[str, SideOutput[Any]] = field(default_factory=dict)

    def ports(self, kind: str) -> dict[str, Port[Any]]:
        table: dict[str, dict[str, Any]] = {
            "input": self.inputs,
            "output": self.outputs,
            "side_input": self.side_inputs,
            "side_output": self.side_outputs,
        }
        return table[kind]


class CalculatorContext(abc.ABC):
    """What a calculator sees during ``open``, ``process`` and ``close``.

    The runtime provides the implementation; calculators only call these methods.
    Ports are passed as the declared attributes (``self.IMAGE``), never as strings,
    so a typo is an AttributeError at the first run rather than a silent miss.
    """

    #: The node's name in the graph (for messages).
    node_name: str
    #: Whether the graph records call timings (``profile=True`` or a trace): a node that
    #: runs graphs of its own profiles them too and reports them in ``inner_stats``.
    profiling: bool = False
    #: Set when the graph writes a Chrome trace: a node that runs graphs of its own passes
    #: it as their ``trace``, so their calls appear in the same file as ``{node}/{inner}``.
    trace_sink: TraceSink | None = None

    @property
    @abc.abstractmethod
    def timestamp(self) -> Timestamp:
        """The input timestamp of this call (PRE_STREAM in open, POST_STREAM in close)."""

    @abc.abstractmethod
    def packet(self, port: Input[T], index: int = 0) -> Packet[T] | None:
        """The packet on ``port`` (``index`` for indexed ports) at this timestamp, or None."""

    def get(self, port: Input[T], index: int = 0) -> T | None:
        """The value on ``port`` at this timestamp, or None when the input set has no packet."""
        p = self.packet(port, index)
        return None if p is None else p.value

    def has(self, port: Input[Any], index: int = 0) -> bool:
        """Whether ``port`` carries a packet at this timestamp."""
        return self.packet(port, index) is not None

    @abc.abstractmethod
    def count(self, port: Port[Any]) -> int:
        """How many streams (or side packets) are connected to a port's tag."""

    @abc.abstractmethod
    def emit(
        self, port: Output[T], value: T, index: int = 0, timestamp: Timestamp | None = None
    ) -> None:
        """Send ``value`` on ``port``, at the input timestamp unless ``timestamp`` is given.

        Giving a timestamp other than the input timestamp is only allowed for
        calculators that declare ``timestamp_offset = None``.
        """

    @abc.abstractmethod
    def set_bound(self, port: Output[Any], bound: Timestamp, index: int = 0) -> None:
        """Promise that ``port`` will carry no packet below ``bound``."""

    @abc.abstractmethod
    def close_output(self, port: Output[Any], index: int = 0) -> None:
        """Promise that ``port`` will carry no more packets at all."""

    @abc.abstractmethod
    def input_bound(self, port: Input[Any], index: int = 0) -> Timestamp:
        """The current timestamp bound of an input stream (lowest timestamp still to come)."""

    @overload
    def side(self, port: SideInput[T], index: int = 0) -> T | None: ...

    @overload
    def side(self, port: SideInput[T], index: int = 0, *, default: D) -> T | D: ...

    @abc.abstractmethod
    def side(self, port: SideInput[T], index: int = 0, *, default: Any = None) -> Any:
        """The value of an input side packet; ``default`` when it is not given.

        "Not given" is an unconnected optional port, or a side packet whose value is
        None (a graph side input declared ``{default: null}`` the caller did not set),
        so ``ctx.side(self.MIN_SCORE, default=self.options.min_score)`` is the whole
        side-packet-overrides-option idiom.
        """

    @abc.abstractmethod
    def set_side(self, port: SideOutput[T], value: T, index: int = 0) -> None:
        """Set an output side packet (once per run)."""


def _options_from_type_argument(cls: type[Calculator[Any]]) -> None:
    """``class X(Calculator[M])``: ``Options`` defaults to ``M`` and must agree with it.

    A string argument (``Calculator["X.Options"]``, the nested-class idiom) names the
    class's own ``Options``; it is for the type checker and needs nothing here.
    """
    for base in getattr(cls, "__orig_bases__", ()):
        origin = typing.get_origin(base)
        if not (isinstance(origin, type) and issubclass(origin, Calculator)):
            continue
        args = typing.get_args(base)
        model = args[0] if args else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        if "Options" not in vars(cls):
            cls.Options = model
        elif not issubclass(cls.Options, model):
            raise TypeError(
                f"{cls.__name__}: Options ({cls.Options.__qualname__}) is not the options "
                f"model of its base Calculator[{model.__qualname__}]"
            )


class Calculator(Generic[OptionsT]):
    """Base class of every node. Subclasses declare ports as class attributes.

    Generic over its options model, so that ``self.options`` is typed::

        class Scale(Calculator["Scale.Options"]):
            class Options(StrictOptions):
                factor: float = 2.0

    (``Calculator[ScaleOptions]`` with a module-level model works too, and then needs no
    ``Options`` attribute: it is taken from the type argument.)

    Class attributes a subclass may override:

    - ``Options``: a pydantic model of the node's options (default: none allowed).
    - ``timestamp_offset``: 0 (default) propagates the input timestamp to every
      output bound after each ``process``; ``None`` means the calculator changes
      timestamps and sets its own bounds.
    - ``input_policy``: the default input policy ("sync", "immediate" or
      "keep_latest"); a graph may override it per node.
    - ``process_on_bounds``: also call ``process`` (with an empty input set) when an
      input's timestamp bound advances without a packet. Nodes that must react to
      "no packet at t" (PreviousLoopback, FlowLimiter) need it; ``ctx.input_bound``
      tells them how far each input has settled.
    """

    Options: ClassVar[type[BaseModel]] = NoOptions
    timestamp_offset: ClassVar[int | None] = 0
    input_policy: ClassVar[InputPolicy] = "sync"
    process_on_bounds: ClassVar[bool] = False

    #: Filled in for every subclass from its port attributes.
    contract: ClassVar[Contract] = Contract()
    #: The name it was registered under (set by :func:`facegraph.register`).
    registered_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _options_from_type_argument(cls)
        tables: dict[str, dict[str, Any]] = {
            "input": {},
            "output": {},
            "side_input": {},
            "side_output": {},
        }
        # Walk the MRO base-first so subclasses can redeclare a port.
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, Port):
                    value.attr = attr
                    table = tables[value.kind]
                    previous = table.get(value.tag)
                    if previous is not None and previous is not value and previous.attr != attr:
                        raise TypeError(
                            f"{cls.__name__}: {value.kind.replace('_', ' ')} tag "
                            f"{value.tag!r} declared twice ({previous.attr} and {attr})"
                        )
                    table[value.tag] = value
        cls.contract = Contract(
            inputs=tables["input"],
            outputs=tables["output"],
            side_inputs=tables["side_input"],
            side_outputs=tables["side_output"],
        )

    def __init__(self, options: OptionsT) -> None:
        self.options: OptionsT = options

    def open(self, ctx: CalculatorContext) -> None:
        """Called once before the first ``process``; side packets are available."""

    def process(self, ctx: CalculatorContext) -> Signal | None:
        """Called once per settled input timestamp (for sources: until it returns STOP)."""
        return None

    def close(self, ctx: CalculatorContext) -> None:
        """Called once at the end of the run, also after an error elsewhere in the graph."""

    def inner_stats(self) -> Sequence[NodeStats]:
        """Timings of the nodes this calculator runs inside itself (graphs of its own).

        :meth:`facegraph.Graph.stats` lists them after the node, each with ``inside`` set
        to its name (their time is part of the node's own). Default: none.
        """
        return ()

    @classmethod
    def is_source(cls) -> bool:
        return not cls.contract.inputs

    @classmethod
    def summary(cls) -> str:
        """First line of the class docstring."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""
