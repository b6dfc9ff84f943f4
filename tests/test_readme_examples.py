"""The README's walkthrough code is real: run every block marked ``<!-- readme-test -->``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from facegraph import registry

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"<!-- readme-test -->\s*```python\n(.*?)```", re.S)


def _blocks() -> list[str]:
    return BLOCK.findall(README.read_text())


@pytest.fixture
def clean_registry() -> Iterator[None]:
    before = set(registry.names())
    yield
    for name in set(registry.names()) - before:
        registry.unregister(name)


def test_readme_has_runnable_examples() -> None:
    assert len(_blocks()) >= 1


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_readme_example_runs(index: int, clean_registry: None) -> None:
    code = _blocks()[index]
    exec(compile(code, f"README.md block {index}", "exec"), {"__name__": "readme_example"})
