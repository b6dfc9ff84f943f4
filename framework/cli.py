"""The ``facegraph`` command line.

Each command group lives in its own module and adds itself to the one Typer
app via a ``register(app)`` function, so that ``facegraph --help`` stays fast:
heavy imports (OpenCV, LiteRT) happen inside the commands, not here.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="facegraph",
    help="Dataflow graphs of Python calculators; MediaPipe's face mesh from Python.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules that contribute commands, in the order they appear in --help.
_COMMAND_MODULES = (
    "facegraph.calculators.cli",  # run
    "facegraph.cli_graph",  # validate, show, calculators
    "facegraph.models.cli",  # models list|fetch|verify|path
    "facegraph.calculators.face.cli",  # eval, compare
    "facegraph.calculators.batch_cli",  # batch
    "facegraph.calculators.face.bench_cli",  # bench
)


def _register_commands() -> None:
    for name in _COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(app)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    app()
