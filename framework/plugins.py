"""Entry-point discovery: how the engine finds what is built on it.

The engine imports no calculator, graph package, command or façade by name. Each
is declared as an entry point by the package that provides it (facegraph's own
``pyproject.toml`` declares the built-ins exactly as a third-party plugin would):

- ``facegraph.calculators``: a module to import (it registers its nodes) or a class;
- ``facegraph.graphs``: a package whose ``*.yaml`` files are graphs named without a path;
- ``facegraph.commands``: ``register(app)`` functions adding commands to the CLI;
- ``facegraph.api``: public names of ``facegraph`` that live outside the engine.
"""

from __future__ import annotations

import importlib.metadata
from functools import cache

CALCULATORS = "facegraph.calculators"
GRAPHS = "facegraph.graphs"
COMMANDS = "facegraph.commands"
API = "facegraph.api"


@cache
def entry_points(group: str) -> tuple[importlib.metadata.EntryPoint, ...]:
    """The entry points of ``group``, sorted by name (a stable order across installs)."""
    found = importlib.metadata.entry_points(group=group)
    unique = {ep.name: ep for ep in found}  # one distribution installed twice: keep one
    return tuple(unique[name] for name in sorted(unique))


def graph_packages() -> list[str]:
    """Packages whose ``*.yaml`` files are graphs that can be named without a path."""
    return [ep.value for ep in entry_points(GRAPHS)]


def api_target(name: str) -> importlib.metadata.EntryPoint | None:
    """The ``facegraph.api`` entry point for a public name, if one is declared."""
    for ep in entry_points(API):
        if ep.name == name:
            return ep
    return None
