"""Timestamps, packets, port declarations and calculator contracts."""

from __future__ import annotations

from typing import Any

import pytest
from facegraph import (
    STOP,
    Calculator,
    CalculatorContext,
    GraphConfigError,
    Input,
    Output,
    Packet,
    SideInput,
    StrictOptions,
    graph_from_yaml,
)
from facegraph import timestamp as ts
from facegraph.ports import types_compatible
from pydantic import BaseModel


def test_reserved_timestamps_sort_around_ordinary_ones() -> None:
    order = [ts.UNSET, ts.UNSTARTED, ts.PRE_STREAM, ts.MIN, 0, ts.MAX, ts.POST_STREAM, ts.DONE]
    assert order == sorted(order)
    assert ts.is_range_value(0) and not ts.is_range_value(ts.POST_STREAM)
    assert ts.is_allowed_in_stream(ts.PRE_STREAM) and not ts.is_allowed_in_stream(ts.DONE)


def test_next_allowed_after_special_timestamps_is_done() -> None:
    assert ts.next_allowed(41) == 42
    assert ts.next_allowed(ts.PRE_STREAM) == ts.DONE
    assert ts.next_allowed(ts.POST_STREAM) == ts.DONE


def test_describe_names_reserved_values_and_seconds() -> None:
    assert ts.describe(ts.DONE) == "Timestamp.DONE"
    assert ts.describe(1_500_000) == "1500000 (1.500000 s)"


def test_packet_is_immutable_and_restampable() -> None:
    p = Packet("face", 10)
    with pytest.raises(AttributeError):
        p.timestamp = 11  # type: ignore[misc]
    q = p.at(20)
    assert (q.value, q.timestamp) == ("face", 20)
    assert p.timestamp == 10
    assert "str @ 10" in repr(p)


def test_contract_collects_ports_by_tag_including_inherited() -> None:
    class Base(Calculator):
        IMAGE = Input("IMAGE", bytes)

    class Child(Base):
        class Options(BaseModel):
            factor: float = 2.0

        ROIS = Input("ROIS", list, optional=True, multiple=True)
        OUT = Output("OUT", int)
        NUM = SideInput("NUM", int)

        def process(self, ctx: CalculatorContext) -> None:
            return None

    assert set(Child.contract.inputs) == {"IMAGE", "ROIS"}
    assert Child.contract.inputs["ROIS"].multiple
    assert Child.contract.side_inputs["NUM"].attr == "NUM"
    assert not Child.is_source()
    assert Child(Child.Options()).options.factor == 2.0


def test_duplicate_tag_in_one_class_is_rejected() -> None:
    with pytest.raises(TypeError, match="declared twice"):

        class Bad(Calculator):
            A = Input("SAME", int)
            B = Input("SAME", int)


def test_port_tags_must_be_upper_case() -> None:
    with pytest.raises(ValueError, match="UPPER_CASE"):
        Input("image", int)


def test_source_is_a_calculator_without_inputs() -> None:
    class Source(Calculator):
        timestamp_offset = None
        OUT = Output("OUT", int)

        def process(self, ctx: CalculatorContext) -> Any:
            return STOP

    assert Source.is_source()


class _Shape:
    pass


class _Circle(_Shape):
    pass


@pytest.mark.parametrize(
    ("produced", "consumed", "ok"),
    [
        (int, int, True),
        (_Circle, _Shape, True),
        (_Shape, _Circle, False),
        (Any, _Circle, True),
        (list[_Circle], list[_Shape], True),
        (list[_Shape], list[_Circle], False),
        (list[int], list, True),
        (int, int | str, True),
        (float, int | str, False),
        (dict[str, int], list[int], False),
        (list[_Circle], list[Any], True),
        (list[Any], list[_Circle], True),
        (tuple[float, float], tuple[float, float, float], False),
        (dict[str, _Circle], dict[str, _Shape], True),
        (dict[str, _Shape], dict[str, _Circle], False),
    ],
)
def test_port_type_compatibility(produced: Any, consumed: Any, ok: bool) -> None:
    assert types_compatible(produced, consumed) is ok


class _Gain(StrictOptions):
    gain: float = 2.0


class _Amplify(Calculator[_Gain]):
    """Options come from the type argument: no ``Options`` attribute needed."""

    IN = Input("IN", float)
    OUT = Output("OUT", float)


def test_calculator_options_model_comes_from_its_type_argument() -> None:
    assert _Amplify.Options is _Gain
    spec = graph_from_yaml(
        "inputs: [x]\nnodes:\n  - calculator: 'tests.test_core_types:_Amplify'\n"
        "    inputs: {IN: x}\n    outputs: {OUT: y}\n    options: {gain: 3}\n",
        allow_imports=True,
    )
    assert spec.nodes[0].options == _Gain(gain=3)
    with pytest.raises(GraphConfigError, match="unknown option 'gian'"):
        graph_from_yaml(
            "inputs: [x]\nnodes:\n  - calculator: 'tests.test_core_types:_Amplify'\n"
            "    inputs: {IN: x}\n    outputs: {OUT: y}\n    options: {gian: 3}\n",
            allow_imports=True,
        )


def test_an_options_attribute_that_contradicts_the_type_argument_is_refused() -> None:
    class Other(StrictOptions):
        pass

    with pytest.raises(TypeError, match=r"Options \(.*Other\) is not the options model"):

        class Confused(Calculator[_Gain]):
            Options = Other
