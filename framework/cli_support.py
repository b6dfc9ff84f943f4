"""Pieces shared by every ``facegraph`` command module (engine and calculator commands).

Kept apart from :mod:`facegraph.cli`, which imports the command modules, so that they
can import these without a cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

ALLOW_IMPORTS_HELP = (
    "Allow 'module:Class' calculator names in the graph to import Python code "
    "(off by default: a graph file from elsewhere must not run code by itself)."
)

#: The ``--allow-imports`` option, the same in every command that loads a graph.
AllowImportsOption = Annotated[bool, typer.Option("--allow-imports", help=ALLOW_IMPORTS_HELP)]


def console(stderr: bool = False) -> Console:
    """A rich console for command output: no syntax highlighting, long lines kept whole."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)
