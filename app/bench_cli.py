"""``facegraph bench``: per-frame time, CPU, memory, per-node breakdown and inference floor of
a face graph, optionally against MediaPipe's FaceMesh on the same frames; ``--scaling`` for
the faces × frame size × threads table. The work is in :mod:`facegraph.app.bench`.
"""

from __future__ import annotations

import json
import signal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from facegraph.cli_support import write_or_exit

if TYPE_CHECKING:
    from rich.console import Console


def _console(stderr: bool = False) -> Console:
    import os
    import sys

    from rich.console import Console

    # Piped output: wide enough for the per-node table's names (rich defaults to 80).
    stream = sys.stderr if stderr else sys.stdout
    wide = None if stream.isatty() or "COLUMNS" in os.environ else 160
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=wide)


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) < 16 or int(h) < 16:
        raise typer.BadParameter(f"expected WIDTHxHEIGHT (e.g. 640x480), got {text!r}")
    return int(w), int(h)


def _check_outputs(source: str | None, json_out: Path | None, plot: Path | None) -> None:
    """Before any timing: --json and --plot must not overwrite the input or each other,
    and their folders must exist (BenchError, one line)."""
    from facegraph.app.bench import BenchError
    from facegraph.app.output_guard import OutputConflictError, check_outputs

    given = source.strip() if source else None
    files = [given] if given and Path(given).is_file() else []
    try:
        check_outputs(given, files, {"--json": json_out, "--plot": plot})
    except OutputConflictError as exc:
        raise BenchError(str(exc)) from None
    for path in (json_out, plot):
        if path is not None and not path.parent.is_dir():
            raise BenchError(f"cannot write {path}: folder {path.parent} does not exist")


def _pace_note(result: dict[str, Any]) -> str:
    interval = result.get("interval_ms")
    if interval is None:
        return ""
    return f"; frames started {interval:g} ms apart ({1e3 / interval:.0f} fps, idle between)"


def _stat_row(label: str, s: dict[str, Any], extra: str = "") -> tuple[str, ...]:
    return (
        label,
        f"{s['mean_ms']:.2f}",
        f"{s['p50_ms']:.2f}",
        f"{s['p99_ms']:.2f}",
        f"{s.get('fps', 0.0):.1f}",
        extra,
    )


def print_report(result: dict[str, Any], console: Console) -> None:
    """The human-readable report of :func:`~facegraph.app.bench.run_bench`."""
    from rich.table import Table

    w, h = result["frame_size"]
    load = ", ".join(f"{x:.2f}" for x in result["load_average"])
    console.print(
        f"[b]{result['graph']}[/b] on {result['input']} ({w}x{h}): {result['frames']} frames "
        f"after {result['warmup']} warm-up; mode {result['mode']}; LiteRT threads "
        f"{result['threads']}; load average {load} on {result['cpu_count']} CPUs"
        + _pace_note(result)
    )
    o, b, fl = result["ours"], result["baseline"], result["floor"]
    table = Table(title="per-frame time (ms, wall clock)")
    for col in ("", "mean", "p50", "p99", "FPS", "CPU ms/frame"):
        table.add_column(col, justify="left" if not col else "right")
    table.add_row(*_stat_row("facegraph", o, f"{o['cpu_ms_per_frame']:.2f}"))
    if b is not None:
        table.add_row(*_stat_row(f"MediaPipe {b['version']}", b, f"{b['cpu_ms_per_frame']:.2f}"))
    table.add_row(*_stat_row("LiteRT floor", fl, ""))
    console.print(table)
    if b is not None and o.get("in_block") and b.get("in_block"):
        oi, bi = o["in_block"], b["in_block"]
        console.print(
            f"p50 by position in the {result['block']}-frame blocks (each starts after "
            f"idling): first frame facegraph {oi['first_p50_ms']:.2f}, MediaPipe "
            f"{bi['first_p50_ms']:.2f} ({bi['first_p50_ms'] / oi['first_p50_ms']:.2f}x); "
            f"second half facegraph {oi['late_p50_ms']:.2f}, MediaPipe "
            f"{bi['late_p50_ms']:.2f} ({bi['late_p50_ms'] / oi['late_p50_ms']:.2f}x)"
        )
    console.print(
        f"faces/frame {o['faces_per_frame']:.2f}; detector ran on {o['detector_frames']}/"
        f"{result['frames']} frames"
        + (f"; MediaPipe faces/frame {b['faces_per_frame']:.2f}" if b is not None else "")
    )
    mem = (
        "peak RSS (VmHWM, whole process incl. models and decoded frames): "
        f"facegraph {o['peak_rss_mb']:.0f} MiB"
    )
    if b is not None and b.get("peak_rss_mb") is not None:
        mem += f", MediaPipe worker {b['peak_rss_mb']:.0f} MiB"
    console.print(mem)
    share = fl.get("share_of_ours_p50")
    det_threads = fl.get("detector_threads", fl["model_threads"])
    console.print(
        f"inference floor ({fl['landmark_model']}"
        + (f" + {fl['detector']} detector" if fl["detector"] else "")
        + (f" + {fl['blendshapes_model']}" if fl.get("blendshapes_model") else "")
        + f", {fl['model_threads']} thread(s)"
        + (
            f", detector {det_threads}"
            if fl["detector"] and det_threads != fl["model_threads"]
            else ""
        )
        + f"): p50 {fl['p50_ms']:.2f} ms"
        + (f" = {100 * share:.0f}% of facegraph's p50" if share else "")
    )
    for note in fl["notes"]:
        console.print(f"  note: {note}")
    if result["nodes"]:
        nodes = Table(title="per node (separate profiled pass, ms)")
        for col in ("node", "calculator", "calls", "mean", "p50", "p99", "ms/frame"):
            nodes.add_column(col, justify="left" if col in ("node", "calculator") else "right")
        for n in result["nodes"]:
            nodes.add_row(
                n["node"],
                n["calculator"],
                str(n["calls"]),
                f"{n['mean_ms']:.3f}",
                f"{n['p50_ms']:.3f}",
                f"{n['p99_ms']:.3f}",
                f"{n['ms_per_frame']:.3f}",
            )
        console.print(nodes)
        if result.get("engine_ms_per_frame") is not None:
            console.print(
                f"engine overhead (profiled pass, time outside the nodes): "
                f"{result['engine_ms_per_frame']:.3f} ms/frame"
            )
    r = result["ratio"]
    if r is not None:
        console.print(
            f"[b]facegraph / MediaPipe[/b] (same frames, alternating blocks of "
            f"{result['block']}): p50 {r['p50']:.2f}x, mean {r['mean']:.2f}x, "
            f"p99 {r['p99']:.2f}x"
            + (f", CPU {r['cpu']:.2f}x" if r["cpu"] else "")
            + "  (< 1: facegraph is faster)"
        )


def print_scaling(rows: list[dict[str, Any]], graph: str, console: Console) -> None:
    """The scaling rows as a table: one line per (faces, size), one column per thread count."""
    from rich.table import Table

    threads = list(dict.fromkeys(r["threads"] for r in rows))
    table = Table(title=f"{graph}: p50 ms/frame (mean in brackets) on synthetic frames")
    for col in ("faces", "size", "found", *(f"{t} thread(s)" for t in threads)):
        table.add_column(col, justify="right")
    keys: dict[tuple[int, int, int], dict[int, dict[str, Any]]] = {}
    for r in rows:
        keys.setdefault((r["faces"], r["width"], r["height"]), {})[r["threads"]] = r
    for (k, w, h), by_t in keys.items():
        found = min(r["faces_found"] for r in by_t.values())
        cells = [
            f"{by_t[t]['p50_ms']:.2f} ({by_t[t]['mean_ms']:.2f})" if t in by_t else "-"
            for t in threads
        ]
        table.add_row(str(k), f"{w}x{h}", f"{found:.2f}", *cells)
    console.print(table)


def print_table_summary(summary: list[dict[str, Any]], console: Console) -> None:
    """:func:`~facegraph.app.bench.summarize_table_runs` as a table: medians (ranges)."""
    from rich.table import Table

    def cell(figure: dict[str, float] | None, unit: str) -> str:
        if figure is None:
            return "-"
        m, lo, hi = figure["median"], figure["min"], figure["max"]
        return f"{m:.2f}{unit} ({lo:.2f}-{hi:.2f})"

    runs = summary[0]["runs"] if summary else 0
    table = Table(title=f"median (min-max) over {runs} runs of the table")
    for col in ("row", "p50 ms", "CPU ms", "MP/ours p50", "MP/ours CPU", "MP/ours late p50"):
        table.add_column(col, justify="left" if col == "row" else "right")
    for r in summary:
        table.add_row(
            r["row"],
            cell(r["p50_ms"], ""),
            cell(r["cpu_ms_per_frame"], ""),
            cell(r["mp_over_ours_p50"], "x"),
            cell(r["mp_over_ours_cpu"], "x"),
            cell(r["mp_over_ours_late_p50"], "x"),
        )
    console.print(table)


def print_table(rows: list[dict[str, Any]], console: Console) -> None:
    """The standard rows: ours and MediaPipe's p50/p99/CPU, the ratios and the floor share."""
    from rich.table import Table

    loads = [r["load_average"][0] for r in rows]
    table = Table(
        title="facegraph vs MediaPipe 0.10.14, same frames, alternating blocks (ms per frame)"
        + _pace_note(rows[0])
    )
    cols = ("row", "p50", "p99", "CPU", "MP p50", "MP p99", "MP CPU", "MP/ours p50", "MP/ours CPU")
    for col in (*cols, "MP/ours late p50", "floor share"):
        table.add_column(col, justify="left" if col == "row" else "right")
    for r in rows:
        o, b, fl = r["ours"], r["baseline"], r["floor"]
        theirs = ["-"] * 6
        if b is not None:
            late = (r["ratio"] or {}).get("late_in_block_p50")
            theirs = [
                f"{b['p50_ms']:.2f}",
                f"{b['p99_ms']:.2f}",
                f"{b['cpu_ms_per_frame']:.2f}",
                f"{b['p50_ms'] / o['p50_ms']:.2f}x",
                f"{b['cpu_ms_per_frame'] / o['cpu_ms_per_frame']:.2f}x",
                f"{1 / late:.2f}x" if late else "-",
            ]
        share = fl.get("share_of_ours_p50")
        table.add_row(
            r["row"],
            f"{o['p50_ms']:.2f}",
            f"{o['p99_ms']:.2f}",
            f"{o['cpu_ms_per_frame']:.2f}",
            *theirs,
            f"{100 * share:.0f}%" if share else "-",
        )
    console.print(table)
    late = (
        "every frame starts after idling, as from a camera"
        if rows[0].get("interval_ms") is not None
        else "after the first frames' slowdown from idling"
    )
    console.print(
        f"1-min load average {min(loads):.2f}..{max(loads):.2f} on {rows[0]['cpu_count']} CPUs "
        "(MP/ours > 1: facegraph is faster; late p50: the second half of each "
        f"{rows[0]['block']}-frame block, {late}; floor share = LiteRT alone / our p50)"
    )


def bench_command(
    graph_source: Annotated[
        str, typer.Argument(metavar="GRAPH", help="Face graph file (.yaml) or shipped graph name.")
    ] = "face_mesh",
    input: Annotated[
        str | None,
        typer.Option(
            "--input",
            "-i",
            metavar="SRC",
            help="Video, image(s), directory, glob, camera index, synthetic[:FACES], or "
            "sample (the bundled clip, the default).",
        ),
    ] = None,
    faces: Annotated[
        int | None,
        typer.Option(
            "--faces",
            min=1,
            help="Synthetic frames with this many faces (num_faces too); with --size.",
        ),
    ] = None,
    frames: Annotated[int, typer.Option("--frames", "-n", min=1, help="Timed frames.")] = 100,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed frames first.")] = 10,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="'mediapipe': MediaPipe 0.10.14 FaceMesh; 'mediapipe-tasks': MediaPipe's Tasks "
            "FaceLandmarker (blendshapes, matrices on); same frames ('none' with --table).",
        ),
    ] = None,
    baseline_python: Annotated[
        str | None,
        typer.Option(
            "--baseline-python",
            metavar="PYTHON",
            help="Python of a venv with the baseline's mediapipe (default: "
            "$FACEGRAPH_MEDIAPIPE_PYTHON, for mediapipe-tasks $FACEGRAPH_MEDIAPIPE_TASKS_PYTHON; "
            "else mediapipe imported here).",
        ),
    ] = None,
    block: Annotated[
        int,
        typer.Option(
            "--block", min=1, help="Frames per alternating block (ours, floor, baseline)."
        ),
    ] = 10,
    interval: Annotated[
        float | None,
        typer.Option(
            "--interval",
            metavar="MS",
            min=0.1,
            help="Start frames MS apart, as a camera delivers them (33.3: 30 frames/s); "
            "each contender idles between frames. Default: back to back.",
        ),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", metavar="FILE.png", help="Latency-over-time PNG.")
    ] = None,
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json",
            metavar="FILE",
            help="Write all figures as JSON (keys: bench.run_bench docstring; README).",
        ),
    ] = None,
    side: Annotated[
        list[str] | None,
        typer.Option("--side", "-s", metavar="NAME=VALUE", help="Input side packet (repeatable)."),
    ] = None,
    threads: Annotated[
        str | None,
        typer.Option(
            "--threads",
            metavar="N|auto",
            help="LiteRT threads of the graph's model nodes, the face detectors' included "
            "(default: the graph's, 'auto').",
        ),
    ] = None,
    custom_ops: Annotated[
        str | None,
        typer.Option(
            "--custom-ops",
            help="Landmark model's custom ops: 'lower' (default, one interpreter) or 'split'.",
        ),
    ] = None,
    size: Annotated[
        str | None, typer.Option("--size", metavar="WxH", help="Resize input frames first.")
    ] = None,
    mode: Annotated[
        str, typer.Option("--mode", help="Scheduler: deterministic (FaceMesh's) or threads.")
    ] = "deterministic",
    no_profile: Annotated[
        bool, typer.Option("--no-profile", help="Skip the per-node (profiled) pass.")
    ] = False,
    table: Annotated[
        bool,
        typer.Option(
            "--table",
            help="Instead: the four standard rows (640x480 1 face, 960x540 2 faces; "
            "face_mesh and face_mesh_static), each against MediaPipe.",
        ),
    ] = False,
    repeat: Annotated[
        int,
        typer.Option(
            "--repeat",
            min=1,
            metavar="N",
            help="With --table: run the four rows N times, one run after another, and "
            "print each ratio's median and range over the runs.",
        ),
    ] = 1,
    scaling: Annotated[
        bool,
        typer.Option(
            "--scaling",
            help="Instead: table over 1-4 synthetic faces, 320x240..1920x1080, threads 1, 2, auto.",
        ),
    ] = False,
    allow_imports: Annotated[
        bool, typer.Option("--allow-imports", help="Allow 'module:Class' calculator names.")
    ] = False,
) -> None:
    """Time a face graph per frame: mean/p50/p99, FPS, CPU per frame, peak RSS, per-node
    breakdown and the pure LiteRT floor; with --baseline mediapipe, MediaPipe's FaceMesh on
    the same frames in alternating blocks, and the ratio.

    Examples:

    \b
      facegraph bench face_mesh --frames 100           (the bundled sample clip)

    \b
      facegraph bench face_mesh_static --input clip.mp4 --baseline mediapipe
      --baseline-python "$FACEGRAPH_MEDIAPIPE_PYTHON" --plot latency.png --json bench.json

    \b
      facegraph bench face_mesh --faces 2 --size 960x540 --baseline mediapipe

      facegraph bench --table   (MediaPipe from $FACEGRAPH_MEDIAPIPE_PYTHON)

      facegraph bench --table --interval 33.3   (frames at a 30 fps camera's pace)

      facegraph bench --table --repeat 10 --frames 300   (the figures to judge on a
      shared machine: each ratio's median over ten runs)

      facegraph bench face_mesh --scaling --frames 30
    """
    from facegraph.app.bench import (
        BenchConfig,
        BenchError,
        run_bench,
        run_scaling,
        run_table,
        summarize_table_runs,
        write_plot,
    )
    from facegraph.app.run_cli import exit_on_graph_errors, parse_side_packets
    from facegraph.atomic_files import write_whole

    err = _console(stderr=True)
    out = _console()
    if mode not in ("deterministic", "threads"):
        raise typer.BadParameter("--mode must be deterministic or threads")
    model_threads = _thread_setting(threads)
    from facegraph.app.runner import stop_on_signals

    # exit_on_graph_errors: a graph that fails to load or start (a node's open) is one
    # line and exit 1, as in run, batch and eval; a bad option or --side is exit 2 below.
    with stop_on_signals(on_stop=_stop_at_once), exit_on_graph_errors(graph_source):
        try:
            _check_outputs(None if table or scaling else input, json_out, plot)
            if repeat > 1 and not table:
                raise BenchError("--repeat applies to --table")
            if table:
                runs = []
                for k in range(repeat):
                    tag = f"run {k + 1}/{repeat}: " if repeat > 1 else ""

                    def say(message: str, tag: str = tag) -> None:
                        err.print(f"[dim]{tag}{message}[/dim]")

                    runs.append(
                        run_table(
                            frames=frames,
                            warmup=warmup,
                            block=block,
                            interval_ms=interval,
                            baseline_python=baseline_python,
                            with_baseline=baseline != "none",
                            threads=model_threads,
                            custom_ops=custom_ops,
                            mode=mode,
                            progress=say,
                        )
                    )
                    print_table(runs[-1], out)
                    document: dict[str, Any] = {"rows": runs[-1]}
                    if repeat > 1:
                        document.update(runs=runs, summary=summarize_table_runs(runs))
                    if json_out is not None:
                        # After every run: a long --repeat that fails or is stopped keeps
                        # the runs it finished.
                        write_or_exit(
                            err,
                            json_out,
                            partial(write_whole, json_out, json.dumps(document, indent=1)),
                            code=2,
                        )
                if repeat > 1:
                    print_table_summary(document["summary"], out)
                return
            if scaling:
                if interval is not None:
                    raise BenchError("--interval applies to a benchmark or --table, not --scaling")
                rows = run_scaling(
                    graph_source,
                    frames=frames,
                    warmup=min(warmup, 5),
                    block=block,
                    mode=mode,
                    progress=lambda m: err.print(f"[dim]{m}[/dim]"),
                )
                print_scaling(rows, graph_source, out)
                if json_out is not None:
                    text = json.dumps({"graph": graph_source, "rows": rows}, indent=1)
                    write_or_exit(err, json_out, lambda: write_whole(json_out, text), code=2)
                return
            side_packets = parse_side_packets(side or [])
            if faces is not None:
                if input is not None:
                    raise BenchError("give --input or --faces, not both")
                input = f"synthetic:{faces}"
                side_packets.setdefault("num_faces", faces)
            if input is None or (input.strip() == "sample" and not Path("sample").exists()):
                from facegraph.app.runner import sample_video

                with sample_video() as path:  # a plain file inside the installed package
                    input = str(path)
            config = BenchConfig(
                graph=graph_source,
                input=input,
                frames=frames,
                warmup=warmup,
                side_packets=side_packets,
                threads=model_threads,
                custom_ops=custom_ops,
                mode=mode,
                baseline=baseline,
                baseline_python=baseline_python,
                block=block,
                interval_ms=interval,
                size=_parse_size(size),
                profile_pass=not no_profile,
                allow_imports=allow_imports,
            )
            result = run_bench(config, progress=lambda m: err.print(f"[dim]{m}[/dim]"))
        except (BenchError, ValueError) as exc:
            from rich.markup import escape

            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            # Ctrl-C: no traceback; a --table --repeat --json keeps the runs it finished.
            err.print("interrupted", markup=False)
            raise typer.Exit(130) from None
        except Terminated:
            # SIGTERM: the same, and the with-blocks on the way out remove the frame file in
            # the temporary folder (hundreds of MB) and stop the MediaPipe worker.
            err.print("terminated", markup=False)
            raise typer.Exit(128 + signal.SIGTERM) from None
    print_report(result, out)
    if json_out is not None:
        text = json.dumps(result, indent=1)
        write_or_exit(err, json_out, lambda: write_whole(json_out, text), code=2)
        out.print(f"JSON: {json_out}")
    if plot is not None:
        write_or_exit(err, plot, lambda: write_plot(result, plot), code=2)
        out.print(f"plot: {plot}")


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM while ``facegraph bench`` runs (a
    BaseException, like KeyboardInterrupt, so that no ``except Exception`` stops it)."""


def _stop_at_once(signal_name: str) -> None:
    """``stop_on_signals``' ``on_stop`` for the bench, which has no frame loop to end
    cleanly: stop now, Ctrl-C as ``KeyboardInterrupt`` and SIGTERM as :class:`Terminated`,
    so that the with-blocks on the way out still run."""
    raise KeyboardInterrupt if signal_name == "SIGINT" else Terminated


def register(app: typer.Typer) -> None:
    """Add ``bench`` to the ``facegraph`` app."""
    app.command("bench")(bench_command)


def _thread_setting(value: str | None) -> int | Literal["auto"] | None:
    """``--threads``: a count ≥ 1 or "auto" (BadParameter otherwise)."""
    if value is None:
        return None
    if value == "auto":
        return "auto"
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise typer.BadParameter(f"--threads must be an integer >= 1 or 'auto', got {value!r}")
    return count
