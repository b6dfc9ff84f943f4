"""``facegraph run GRAPH``: load a graph, start it, run its sources to completion.

The skeleton later commands extend (``--input``/``--output``): side packets from
``--side NAME=VALUE`` (values parsed as YAML scalars: ``3`` is an int, ``0.5`` a
float, ``true`` a bool, anything else a string), ``--trace FILE`` for a
Chrome-trace JSON, ``--profile`` for the per-node timing table, ``--max-frames N``
to stop the sources after N timestamps, ``--deterministic`` to run everything on
one thread. Graph input streams are closed at once (nothing feeds them yet).
Errors print a clear message and exit non-zero, without a Python traceback.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from .graph import Graph, Mode
    from .spec import GraphSpec

_ALLOW_IMPORTS_HELP = (
    "Allow 'module:Class' calculator names in the graph to import Python code "
    "(off by default: a graph file from elsewhere must not run code by itself)."
)


def parse_side_packets(items: list[str]) -> dict[str, Any]:
    """``["num_faces=2", "name=cam"]`` → ``{"num_faces": 2, "name": "cam"}``.

    Raises ValueError naming the bad item.
    """
    import yaml

    result: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--side expects NAME=VALUE, got {item!r}")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        if not isinstance(value, (int, float, bool, str)) or value is None:
            value = text  # lists, maps, null: keep the literal text
        result[name] = value
    return result


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _frame_limiter(graph: Graph, spec: GraphSpec, max_frames: int) -> dict[str, int]:
    """Observe the sources' outputs; after ``max_frames`` distinct timestamps, stop them."""
    state = {"frames": 0, "last": -(2**63)}
    streams = [b.stream for n in spec.nodes if not n.inputs for b in n.outputs]

    def on_packet(packet: Any) -> None:
        if packet.timestamp > state["last"]:
            state["last"] = packet.timestamp
            state["frames"] += 1
            if state["frames"] >= max_frames:
                graph.stop_sources()

    for stream in streams:
        graph.observe(stream, on_packet)
    return state


def run_command(
    graph_source: Annotated[
        str, typer.Argument(metavar="GRAPH", help="Graph file (.yaml) or shipped graph name.")
    ],
    side: Annotated[
        list[str] | None,
        typer.Option("--side", "-s", metavar="NAME=VALUE", help="Input side packet (repeatable)."),
    ] = None,
    trace: Annotated[
        Path | None,
        typer.Option("--trace", metavar="FILE", help="Write a Chrome-trace/Perfetto JSON."),
    ] = None,
    profile: Annotated[
        bool, typer.Option("--profile", help="Print per-node timings and queue stats.")
    ] = False,
    max_frames: Annotated[
        int | None,
        typer.Option(
            "--max-frames", metavar="N", min=1, help="Stop the sources after N timestamps."
        ),
    ] = None,
    deterministic: Annotated[
        bool,
        typer.Option("--deterministic", help="Run every node on this thread, in a fixed order."),
    ] = False,
    allow_imports: Annotated[
        bool, typer.Option("--allow-imports", help=_ALLOW_IMPORTS_HELP)
    ] = False,
) -> None:
    """Run a graph: start it with side packets, run its sources to completion, summarize."""
    from .config import load_graph
    from .errors import FacegraphError, GraphConfigError
    from .graph import Graph
    from .profiler import stats_table

    out = _console()
    err = _console(stderr=True)
    try:
        side_packets = parse_side_packets(side or [])
    except ValueError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    try:
        spec = load_graph(graph_source, allow_imports=allow_imports)
    except GraphConfigError as exc:
        err.print(f"FAIL {graph_source}: {len(exc.problems)} problem(s)", markup=False)
        for problem in exc.problems:
            err.print(f"  - {problem}", markup=False)
        raise typer.Exit(1) from None
    except FacegraphError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None

    mode: Mode = "deterministic" if deterministic else "threads"
    counts: dict[str, int] = {s: 0 for s in spec.output_streams}
    graph: Graph | None = None
    frames: dict[str, int] | None = None
    t0 = time.perf_counter()
    try:
        graph = Graph(spec, mode=mode, profile=profile, trace=trace)
        for stream in spec.output_streams:

            def count(_: Any, stream: str = stream) -> None:
                counts[stream] += 1

            graph.observe(stream, count)
        if max_frames is not None:
            frames = _frame_limiter(graph, spec, max_frames)
        graph.start(side_packets)
        graph.close_all_inputs()
        graph.wait_until_done()
    except KeyboardInterrupt:
        if graph is not None:
            graph.cancel()
        err.print("interrupted", markup=False)
        raise typer.Exit(130) from None
    except FacegraphError as exc:
        err.print(f"error: {exc}", markup=False)
        if graph is not None and graph.close_errors:
            err.print("also while closing:", markup=False)
            for extra in graph.close_errors:
                err.print(f"  - {str(extra).splitlines()[0]}", markup=False)
        raise typer.Exit(1) from None
    elapsed = time.perf_counter() - t0

    out.print(
        f"ran graph '{spec.name}' ({len(spec.nodes)} nodes, {mode}) in {elapsed:.3f} s",
        markup=False,
    )
    if frames is not None:
        out.print(f"  frames: {frames['frames']}", markup=False)
    for stream, n in counts.items():
        out.print(f"  output '{stream}': {n} packet{'s' if n != 1 else ''}", markup=False)
    if profile:
        out.print(stats_table(graph.stats()))
    if trace is not None:
        out.print(f"  trace written to {trace}", markup=False)


def register(app: typer.Typer) -> None:
    """Add the ``run`` command to the ``facegraph`` app."""
    app.command("run")(run_command)
