"""Registry[T] and Closeable: the one collision rule and the one context-manager base."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from facegraph import Closeable, Registry, RegistryError, plugins


def test_a_different_value_under_a_taken_name_is_refused_naming_both() -> None:
    reg: Registry[object] = Registry("widget")

    def first() -> None: ...

    def second() -> None: ...

    reg.add("w", first)
    reg.add("w", first)  # the same object again is harmless
    with pytest.raises(RegistryError, match=r"widget name 'w' is already registered by .*first"):
        reg.add("w", second)
    reg.add("w", second, replace=True)
    assert reg.lookup("w") is second


def test_unknown_name_suggests_the_close_one() -> None:
    reg: Registry[int] = Registry("encoder")
    reg.add("ndarray", 1)
    with pytest.raises(
        RegistryError, match=r"unknown encoder 'ndaray' \(did you mean 'ndarray'\?\)"
    ):
        reg.lookup("ndaray")
    assert "ndarray" in reg and "nope" not in reg
    assert reg.names() == ["ndarray"] and list(reg.items()) == [("ndarray", 1)]


def test_entry_points_are_loaded_on_first_lookup_and_bad_ones_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fg_widgets.py").write_text("GOOD = 42\nBAD = 'not an int'\n")
    dist = tmp_path / "fg_widgets-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fg-widgets\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[test.widgets]\ngood = fg_widgets:GOOD\nbad = fg_widgets:BAD\nmissing = fg_nope:X\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.entry_points.cache_clear()
    try:
        reg: Registry[int] = Registry(
            "widget", entry_point_group="test.widgets", accept=lambda v: isinstance(v, int)
        )
        assert reg.lookup("good") == 42
        errors = reg.load_errors()
        assert any("'bad'" in e and "is not a widget" in e for e in errors)
        assert any("'missing'" in e and "failed to load" in e for e in errors)
    finally:
        sys.modules.pop("fg_widgets", None)
        monkeypatch.undo()
        plugins.entry_points.cache_clear()


def test_closeable_closes_on_exception_and_on_normal_exit() -> None:
    class Resource(Closeable):
        def __init__(self) -> None:
            self.closed = 0

        def close(self) -> None:
            self.closed += 1

    with Resource() as r:
        pass
    assert r.closed == 1
    r2 = Resource()
    with pytest.raises(KeyboardInterrupt), r2:
        raise KeyboardInterrupt
    assert r2.closed == 1
