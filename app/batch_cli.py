"""``facegraph batch GRAPH --inputs DIR|GLOB|LIST --output-dir DIR``: a collection, in parallel.

Registered through ``register(app)`` like the other command modules. The work is
:func:`facegraph.app.batch.run_batch`; this module parses options, shows the
progress bars and prints the summary. Exit status: 0 when every input is complete, 1
when some failed (listed in ``OUTPUT_DIR/failures.jsonl``), 2 for bad options, 130 on
Ctrl-C.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer
from facegraph.cli_support import AllowImportsOption
from facegraph.cli_support import console as _console

if TYPE_CHECKING:
    from facegraph.app.batch import BatchSummary
    from rich.console import Console


# "\b" (a paragraph of its own): click prints the next paragraph as written, unwrapped.
EPILOG = """\
Examples:

\b
  facegraph batch face_mesh --inputs videos/ --output-dir landmarks/
      every video under videos/ (and every folder of images) -> landmarks/<same path>.jsonl

\b
  facegraph batch face_mesh --inputs 'clips/**/*.mp4' --output-dir out/ --workers 2
  facegraph batch face_mesh --inputs list.txt --output-dir out/ --side num_faces=2
  facegraph batch face_mesh --inputs /data/videos --output-dir /data/out --ray
      on a local Ray instance (pip install "facegraph[ray]")
  facegraph batch face_mesh --inputs /shared/videos --output-dir /shared/out --ray-address auto
      on the Ray cluster this machine belongs to (ray start --head / --address=...)

Rerunning the same command skips the inputs whose output is complete and up to date.
"""


def _print_summary(out: Console, summary: BatchSummary, output_dir: str) -> None:
    parts = [f"{summary.done} done", f"{summary.failed} failed", f"{summary.skipped} skipped"]
    out.print(f"inputs: {summary.total} ({', '.join(parts)})", markup=False)
    if summary.done:
        out.print(
            f"frames: {summary.frames}, faces: {summary.faces}, "
            f"{summary.fps:.1f} frames/s over {summary.elapsed:.1f} s on {summary.executor}",
            markup=False,
        )
        out.print(
            f"models: loaded {summary.model_loads} time(s) in "
            f"{len(summary.worker_processes)} worker(s), reused {summary.model_reuses} time(s)",
            markup=False,
        )
    if summary.failures:
        out.print(f"failed inputs (see {output_dir}/failures.jsonl):", markup=False)
        for failure in summary.failures:
            out.print(
                f"  {failure.input}: {failure.error} ({failure.attempts} attempts)", markup=False
            )
    if summary.interrupted:
        out.print("interrupted: rerun the same command to finish the rest", markup=False)


def batch_command(
    graph_source: Annotated[
        str, typer.Argument(metavar="GRAPH", help="Graph file (.yaml) or shipped graph name.")
    ],
    inputs: Annotated[
        str,
        typer.Option(
            "--inputs",
            "-i",
            metavar="DIR|GLOB|LIST",
            help="A directory (its videos and image folders, recursively), a quoted glob "
            "pattern, or a text file with one path per line.",
        ),
    ],
    output_dir: Annotated[
        str,
        typer.Option(
            "--output-dir",
            "-o",
            metavar="DIR",
            help="Where the JSONL files go, one per input, at the input's relative path.",
        ),
    ],
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            metavar="N",
            min=1,
            help="Worker processes (default: one per CPU; with Ray: the cluster's CPUs).",
        ),
    ] = None,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="Run the workers as Ray actors on a local Ray instance (or on the cluster "
            "named by $RAY_ADDRESS).",
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            metavar="ADDRESS",
            help="Join an existing Ray cluster instead ('auto', HOST:PORT or ray://HOST:PORT); "
            "implies --ray.",
        ),
    ] = None,
    side: Annotated[
        list[str] | None,
        typer.Option("--side", "-s", metavar="NAME=VALUE", help="Input side packet (repeatable)."),
    ] = None,
    retries: Annotated[
        int,
        typer.Option("--retries", metavar="N", min=0, help="Further attempts for a failed input."),
    ] = 2,
    allow_imports: AllowImportsOption = False,
) -> None:
    """Run a graph over every video / image folder of a collection, in parallel; resumable."""

    from facegraph.app.batch import run_batch
    from facegraph.app.run_cli import exit_on_graph_errors, side_packets_or_exit

    side_packets = side_packets_or_exit(side)
    address = ray_address if ray_address is not None else ("local" if ray else None)
    with exit_on_graph_errors(graph_source), _interruptible():
        summary = run_batch(
            graph_source,
            inputs,
            output_dir,
            workers=workers,
            ray_address=address,
            side_packets=side_packets,
            retries=retries,
            allow_imports=allow_imports,
            progress=True,
        )
    _print_summary(_console(), summary, output_dir)
    if summary.interrupted:
        raise typer.Exit(130)
    if summary.failed:
        raise typer.Exit(1)


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C before the workers start (a long folder scan): one line and exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        _console(stderr=True).print("interrupted before any input was processed", markup=False)
        raise typer.Exit(130) from None


def register(app: typer.Typer) -> None:
    """Add the ``batch`` command to the ``facegraph`` app."""
    app.command("batch", epilog=EPILOG)(batch_command)
