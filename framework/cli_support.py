"""Pieces shared by every ``facegraph`` command module (engine and calculator commands).

Kept apart from :mod:`facegraph.cli`, which imports the command modules, so that they
can import these without a cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from collections.abc import Callable

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


def write_or_exit(
    err: Console, path: str | Path, write: Callable[[], object], *, code: int
) -> None:
    """Run ``write``, which writes ``path`` whole or not at all
    (:mod:`facegraph.atomic_files`); a failed write (OSError) is one line naming the file
    it failed on, then exit ``code``."""
    from .atomic_files import describe_os_error

    try:
        write()
    except OSError as exc:
        where = exc.filename or path
        err.print(f"error: cannot write {where}: {describe_os_error(exc)}", markup=False)
        raise typer.Exit(code) from None
