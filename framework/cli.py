"""The ``facegraph`` command line.

Each command group lives in its own module and adds itself to the one Typer
app via a ``register(app)`` function, found through the ``facegraph.commands``
entry points, so that ``facegraph --help`` stays fast: heavy imports (OpenCV,
LiteRT) happen inside the commands, not here.
"""

from __future__ import annotations

import sys

import typer

from .plugins import COMMANDS, entry_points

app = typer.Typer(
    name="facegraph",
    help="Dataflow graphs of Python calculators; MediaPipe's face mesh from Python.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Click's plain help: whole names when piped, "GRAPH" not "{GRAPH}", no "<bool>" on flags.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("facegraph")
        except PackageNotFoundError:  # running from a source tree that is not installed
            text = "unknown (not installed)"
        typer.echo(f"facegraph {text}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_version, is_eager=True
    ),
) -> None:
    """Dataflow graphs of Python calculators; MediaPipe's face mesh from Python."""


def _register_commands() -> None:
    # Every ``facegraph.commands`` entry point, in name order: the engine's own graph
    # commands and the application's run/batch/bench/eval/models alike. A broken
    # plugin must not take the whole tool down: say which, and go on.
    for ep in entry_points(COMMANDS):
        try:
            ep.load()(app)
        except Exception as exc:
            print(
                f"facegraph: command plugin {ep.name!r} ({ep.value}) failed: {exc}", file=sys.stderr
            )


_register_commands()


def main() -> None:
    """Console-script entry point."""
    app()
