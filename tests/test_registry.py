"""Calculator registration, lookup, did-you-mean, and gated imports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from facegraph import Calculator, Input, RegistryError, register, registry


@pytest.fixture
def registered() -> Iterator[type[Calculator]]:
    @register("RegistryProbeScale")
    class Scale(Calculator):
        """Scales numbers."""

        VALUE = Input("VALUE", float)

    yield Scale
    registry.unregister("RegistryProbeScale")


def test_lookup_finds_registered_class(registered: type[Calculator]) -> None:
    assert registry.lookup("RegistryProbeScale") is registered
    assert registered.registered_name == "RegistryProbeScale"
    assert "RegistryProbeScale" in registry.names()


def test_unknown_name_suggests_the_closest(registered: type[Calculator]) -> None:
    with pytest.raises(RegistryError, match="did you mean 'RegistryProbeScale'"):
        registry.lookup("RegistryProbeScal")


def test_a_taken_name_cannot_be_stolen(registered: type[Calculator]) -> None:
    with pytest.raises(RegistryError, match="already registered"):

        @register("RegistryProbeScale")
        class Other(Calculator):
            pass


def test_import_paths_are_refused_unless_allowed() -> None:
    path = "tests.plugin_example:Doubler"
    with pytest.raises(RegistryError, match="off by default"):
        registry.lookup(path)
    cls = registry.lookup(path, allow_imports=True)
    assert cls.__name__ == "Doubler"


def test_import_path_must_name_a_calculator() -> None:
    with pytest.raises(RegistryError, match="not a Calculator"):
        registry.lookup("tests.plugin_example:NOT_A_CALCULATOR", allow_imports=True)
    with pytest.raises(RegistryError, match="cannot import module"):
        registry.lookup("no_such_module_xyz:Thing", allow_imports=True)


def test_entry_point_plugins_are_discovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pip-installed package exposing ``facegraph.calculators`` entry points is found."""
    pkg = tmp_path / "fg_plugin_demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from facegraph import Calculator, Input\n"
        "class Hello(Calculator):\n"
        "    '''Says hello.'''\n"
        "    IN = Input('IN')\n"
    )
    dist = tmp_path / "fg_plugin_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fg-plugin-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[facegraph.calculators]\nPluginHello = fg_plugin_demo:Hello\nBroken = fg_missing_mod:X\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        registry.load_plugins(force=True)
        assert registry.lookup("PluginHello").__name__ == "Hello"
        assert any("Broken" in e for e in registry.plugin_errors())
    finally:
        registry.unregister("PluginHello")
