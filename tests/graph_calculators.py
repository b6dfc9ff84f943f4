"""Small calculators for the graph-config tests (registered only while a test runs).

They are independent of the built-in nodes so that these tests check the
configuration layer alone. ``tests.graph_calculators:Scale`` also serves as an
import path for the ``allow_imports`` tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import pytest
from facegraph import Calculator, Input, Output, SideInput, SideOutput, register, registry
from pydantic import BaseModel, ConfigDict, Field


class Source(Calculator):
    """Emits numbers."""

    OUT = Output("OUT", int)


class Scale(Calculator):
    """Multiplies each number by a factor.

    Second paragraph of the docstring, shown by ``facegraph calculators TgScale``.
    """

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        factor: float = Field(default=2.0, description="multiplier")
        mode: Literal["fast", "exact"] = "fast"

    IN = Input("IN", int, doc="numbers to scale")
    OUT = Output("OUT", float)
    FACTOR = SideInput("FACTOR", float, optional=True)


class Merge(Calculator):
    """Merges any number of streams."""

    input_policy = "immediate"
    IN = Input("IN", Any, multiple=True)
    OUT = Output("OUT", Any)


class Loop(Calculator):
    """Loopback-like: MAIN and LOOP in, PREV_LOOP out."""

    MAIN = Input("MAIN", Any)
    LOOP = Input("LOOP", Any)
    PREV = Output("PREV_LOOP", Any)


class Text(Calculator):
    """Consumes strings."""

    IN = Input("IN", str)
    OUT = Output("OUT", str, optional=True)


class Animal:
    pass


class Dog(Animal):
    pass


class MakeDog(Calculator):
    """Produces dogs."""

    IN = Input("IN", Any)
    OUT = Output("OUT", Dog)


class Feed(Calculator):
    """Consumes animals."""

    IN = Input("IN", Animal)


class LoadModel(Calculator):
    """Side packet producer."""

    PATH = SideInput("PATH", str)
    MODEL = SideOutput("MODEL", bytes)


class UseModel(Calculator):
    """Side packet consumer."""

    IN = Input("IN", Any)
    OUT = Output("OUT", Any)
    MODEL = SideInput("MODEL", bytes)


class Sized(Calculator):
    """Has a required option."""

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        size: int = Field(ge=1)

    IN = Input("IN", Any)
    OUT = Output("OUT", Any)


CALCULATORS: dict[str, type[Calculator]] = {
    "TgSource": Source,
    "TgScale": Scale,
    "TgMerge": Merge,
    "TgLoop": Loop,
    "TgText": Text,
    "TgMakeDog": MakeDog,
    "TgFeed": Feed,
    "TgLoadModel": LoadModel,
    "TgUseModel": UseModel,
    "TgSized": Sized,
}


@pytest.fixture
def calcs() -> Iterator[dict[str, type[Calculator]]]:
    """Register the test calculators for one test."""
    for name, cls in CALCULATORS.items():
        register(name)(cls)
    yield CALCULATORS
    for name in CALCULATORS:
        registry.unregister(name)
