"""``facegraph eval`` and ``facegraph compare``: the face-landmark yardsticks on the CLI.

Registered through ``register(app)`` like the other command modules (listed in
``facegraph.cli._COMMAND_MODULES``). Heavy imports (OpenCV, LiteRT, matplotlib) happen
inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from facegraph.cli_support import console as _console
from facegraph.cli_support import write_or_exit

if TYPE_CHECKING:
    from facegraph.app.evaluation import Evaluation
    from rich.console import Console


def _read_rgb(path: Path) -> Any:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f} %"


def eval_command(
    graph_source: Annotated[
        str, typer.Argument(metavar="GRAPH", help="Face graph file (.yaml) or shipped graph name.")
    ],
    images: Annotated[
        Path, typer.Option("--images", metavar="DIR", help="Image directory (or one image).")
    ],
    annotations: Annotated[
        Path,
        typer.Option(
            "--annotations",
            metavar="DIR|FILE",
            help="*.pts (iBUG 68) and/or run-output *.json/*.jsonl (468/478 points), "
            "matched to images by file stem.",
        ),
    ],
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="tracking: feed each image --frames times, measure the last; "
            "reacquisition: one frame, the detector finds the face.",
        ),
    ] = "tracking",
    frames: Annotated[
        int, typer.Option("--frames", min=1, help="Frames per image in tracking mode.")
    ] = 5,
    report: Annotated[
        Path | None,
        typer.Option("--report", metavar="DIR", help="Write report.json and PNG plots here."),
    ] = None,
    side: Annotated[
        list[str] | None,
        typer.Option("--side", "-s", metavar="NAME=VALUE", help="Input side packet (repeatable)."),
    ] = None,
    allow_imports: Annotated[
        bool, typer.Option("--allow-imports", help="Allow 'module:Class' calculator names.")
    ] = False,
) -> None:
    """Landmark error of a face graph against annotations: IOD MAE per image, mean, std,
    per region (lips, eyes, irises, face oval); NME over 68 points for .pts annotations."""
    from facegraph import FacegraphError, load_graph
    from facegraph.app.evaluation import (
        AnnotationError,
        Evaluation,
        annotation_files,
        evaluate_image,
        face_points_px,
        iter_images,
        load_annotations,
        predict_faces,
        write_report,
    )
    from facegraph.app.run_cli import exit_on_graph_errors, parse_side_packets
    from facegraph.calculators.face import nodes as _nodes  # registers the face nodes

    assert _nodes
    out, err = _console(), _console(stderr=True)
    run_mode: Literal["tracking", "reacquisition"]
    if mode == "tracking":
        run_mode = "tracking"
    elif mode == "reacquisition":
        run_mode = "reacquisition"
    else:
        err.print(f"error: --mode must be tracking or reacquisition, not {mode!r}", markup=False)
        raise typer.Exit(2)
    try:
        sides = parse_side_packets(side or [])
        ann = load_annotations(annotations)
    except (ValueError, AnnotationError) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    if not images.exists():
        err.print(f"error: {images}: no such file or directory", markup=False)
        raise typer.Exit(2)
    with exit_on_graph_errors(graph_source):
        spec = load_graph(graph_source, allow_imports=allow_imports)

    evaluation = Evaluation()
    files = list(iter_images(images))
    unannotated = [f.name for f in files if f.stem not in ann]
    files = [f for f in files if f.stem in ann]
    without_image = sorted(set(ann) - {f.stem for f in files})
    if unannotated:
        err.print(f"note: {len(unannotated)} image(s) without annotations skipped", markup=False)
    if without_image:
        err.print(
            f"warning: annotations without an image: {', '.join(without_image)}", markup=False
        )
    if not files:
        err.print(f"error: no annotated images in {images}", markup=False)
        raise typer.Exit(1)
    if report is not None:
        _check_report(report, [*iter_images(images), *annotation_files(annotations)], err)
    for f in files:
        rgb = _read_rgb(f)
        if rgb is None:
            err.print(f"warning: cannot read image {f}; skipped", markup=False)
            continue
        h, w = rgb.shape[:2]
        try:
            faces = predict_faces(spec, rgb, mode=run_mode, frames=frames, side_packets=sides)
        except FacegraphError as exc:
            err.print(f"error: {f}: {exc}", markup=False)
            raise typer.Exit(1) from None
        result = evaluate_image(f.name, [face_points_px(x, w, h) for x in faces], ann[f.stem])
        evaluation.images.append(result)
        miss = f"  missed {len(result.missed)}" if result.missed else ""
        extra = f"  extra {result.n_extra}" if result.n_extra else ""
        out.print(
            f"{f.name}: {_fmt(result.value)}  faces {len(result.faces)}/{result.n_annotated}"
            f"{miss}{extra}",
            markup=False,
        )
    _print_summary(out, evaluation)
    if report is not None:
        meta = {"graph": graph_source, "mode": mode, "frames": frames if mode == "tracking" else 1}
        try:  # a failed write replaces nothing: an earlier report there is as it was
            write_or_exit(err, report, lambda: write_report(evaluation, report, meta), code=2)
        except ImportError as exc:
            err.print(f"error: {exc}", markup=False)
            raise typer.Exit(1) from None
        out.print(f"report written to {report}/report.json (+ PNG plots)", markup=False)


def _check_report(report: Path, inputs: list[Path], err: Console) -> None:
    """Before any image runs: the --report folder's files must not overwrite an input
    (an image or an annotation file), and --report must not be a file (one line, exit 2)."""
    from facegraph.app.evaluation import REPORT_FILES
    from facegraph.app.output_guard import OutputConflictError, check_outputs

    if report.exists() and not report.is_dir():
        err.print(f"error: --report {report} is a file, not a folder", markup=False)
        raise typer.Exit(2)
    try:
        for name in REPORT_FILES:
            check_outputs(None, [str(f) for f in inputs], {"--report": report / name})
    except OutputConflictError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None


def _print_summary(out: Console, evaluation: Evaluation) -> None:
    s = evaluation.summary()
    out.print(
        f"images {s['n_images']}  faces matched {s['n_faces_matched']}/"
        f"{s['n_faces_annotated']}  missed {s['n_missed']}  extra {s['n_extra']}",
        markup=False,
    )
    out.print(
        f"IOD MAE mean {_fmt(s['iod_mae_mean'])}  std {_fmt(s['iod_mae_std'])}  "
        f"median {_fmt(s['iod_mae_median'])}",
        markup=False,
    )
    if s["per_region"]:
        regions = "  ".join(f"{k} {v:.3f} %" for k, v in s["per_region"].items())
        out.print(f"per region: {regions}", markup=False)
    for m in s["missed"]:
        out.print(f"missed: {m}", markup=False)


def compare_command(
    a: Annotated[Path, typer.Argument(metavar="A.jsonl", help="First run output (reference).")],
    b: Annotated[Path, typer.Argument(metavar="B.jsonl", help="Second run output.")],
    per_frame: Annotated[
        bool, typer.Option("--per-frame/--summary-only", help="Print one line per frame.")
    ] = True,
    json_out: Annotated[
        Path | None, typer.Option("--json", metavar="FILE", help="Write the summary as JSON.")
    ] = None,
) -> None:
    """Landmark differences between two runs, per frame, in px and % IOD (of A's faces)."""
    from facegraph.app.compare import compare_runs, read_run_output
    from facegraph.app.evaluation import AnnotationError
    from facegraph.app.output_guard import OutputConflictError, check_outputs

    out, err = _console(), _console(stderr=True)
    try:
        check_outputs(None, [str(a), str(b)], {"--json": json_out})
        ra, rb = read_run_output(a), read_run_output(b)
    except (AnnotationError, OutputConflictError) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    cmp = compare_runs(ra, rb)
    if per_frame:
        for f in cmp.frames:
            flag = "  FACE COUNT DIFFERS" if f.faces_a != f.faces_b else ""
            diffs = ", ".join(
                f"{m:.3f} px ({p:.3f} % IOD) max {x:.3f} px"
                for m, p, x in zip(f.mean_px, f.mean_iod_pct, f.max_px, strict=True)
            )
            out.print(
                f"frame {f.frame}: faces {f.faces_a}/{f.faces_b}  {diffs or '-'}{flag}",
                markup=False,
            )
    s = cmp.summary()

    def line(name: str, d: dict[str, float | None], unit: str) -> str:
        if d["mean"] is None:
            return f"{name}: no matched faces"
        return f"{name}: mean {d['mean']:.4f} {unit}  p50 {d['p50']:.4f}  max {d['max']:.4f}"

    out.print(f"frames compared {s['frames_compared']}, faces {s['faces_compared']}", markup=False)
    out.print(line("landmark difference", s["px"], "px"), markup=False)
    out.print(line("landmark difference", s["iod_pct"], "% IOD"), markup=False)
    mism = s["face_count_differs"]
    out.print(
        f"frames where face counts differ: {len(mism)}"
        + (
            f" ({', '.join(str(m['frame']) for m in mism[:20])}{'...' if len(mism) > 20 else ''})"
            if mism
            else ""
        ),
        markup=False,
    )
    if s["frames_only_in_a"] or s["frames_only_in_b"]:
        out.print(
            f"frames only in A: {len(s['frames_only_in_a'])}, only in B: "
            f"{len(s['frames_only_in_b'])}",
            markup=False,
        )
    if json_out is not None:
        from facegraph.atomic_files import write_whole

        text = json.dumps(s, indent=2) + "\n"
        write_or_exit(err, json_out, lambda: write_whole(json_out, text), code=2)


def register(app: typer.Typer) -> None:
    """Add ``eval`` and ``compare`` to the ``facegraph`` app."""
    app.command("eval")(eval_command)
    app.command("compare")(compare_command)
