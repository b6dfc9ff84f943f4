"""Helpers for the graph-config tests: load YAML text and collect its problems."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from facegraph import GraphConfigError, GraphSpec, Problem, graph_from_yaml, load_graph


def yaml_text(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def load(text: str, **kwargs: object) -> GraphSpec:
    return graph_from_yaml(yaml_text(text), **kwargs)  # type: ignore[arg-type]


def problems(text: str, **kwargs: object) -> list[Problem]:
    """Every problem of a graph that must be invalid."""
    with pytest.raises(GraphConfigError) as info:
        graph_from_yaml(yaml_text(text), **kwargs)  # type: ignore[arg-type]
    return info.value.problems


def file_problems(path: Path, **kwargs: object) -> list[Problem]:
    with pytest.raises(GraphConfigError) as info:
        load_graph(path, **kwargs)  # type: ignore[arg-type]
    return info.value.problems


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line of (dedented) ``text`` containing ``needle``."""
    seen = 0
    for number, line in enumerate(yaml_text(text).splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not in text")


def only(found: list[Problem], fragment: str) -> Problem:
    """The one problem whose message contains ``fragment``."""
    matching = [p for p in found if fragment in p.message]
    assert len(matching) == 1, f"expected one problem with {fragment!r}, got {found}"
    return matching[0]
