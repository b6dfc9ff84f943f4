"""Graph commands: ``validate``, ``show``, ``calculators`` and ``schema``.

Module-level imports stay light (typer only) so that ``facegraph --help`` is
fast; graph loading, rich and drawing are imported inside the commands.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .cli_support import AllowImportsOption, write_or_exit
from .cli_support import console as _console

if TYPE_CHECKING:
    from rich.console import Console

    from .calculator import Calculator
    from .errors import Problem
    from .spec import GraphSpec


class DrawFormat(str, enum.Enum):
    """Output formats of ``facegraph show``."""

    dot = "dot"
    mermaid = "mermaid"
    svg = "svg"
    png = "png"


_SUFFIX_FORMATS = {
    ".dot": DrawFormat.dot,
    ".gv": DrawFormat.dot,
    ".mmd": DrawFormat.mermaid,
    ".mermaid": DrawFormat.mermaid,
    ".svg": DrawFormat.svg,
    ".png": DrawFormat.png,
}


def _print_problems(console: Console, problems: list[Problem], more: int = 0) -> None:
    from rich.text import Text

    for problem in problems:
        console.print(Text("  - ") + Text(str(problem)))
    if more:
        console.print(Text(f"  … and {more:,} more"))


def _load(
    console: Console, source: str, allow_imports: bool
) -> tuple[GraphSpec | None, list[Problem], int]:
    """Load a graph; return it, or None, the problems listed and how many more there are
    (never raises for bad input)."""
    from .config import load_graph
    from .errors import FacegraphError, GraphConfigError, Problem

    try:
        return load_graph(source, allow_imports=allow_imports), [], 0
    except GraphConfigError as exc:
        return None, exc.problems, exc.more
    except FacegraphError as exc:
        return None, [Problem(str(exc), source)], 0
    except Exception as exc:  # e.g. an Options validator that raised something odd
        problem = Problem(f"unexpected {type(exc).__name__} while loading: {exc}", source)
        return None, [problem], 0


def _summary(spec: GraphSpec) -> str:
    streams = set(spec.input_streams)
    for node in spec.nodes:
        streams.update(b.stream for b in node.outputs)
    count = len(spec.nodes)
    return (
        f"graph '{spec.name}': {count} node{'s' if count != 1 else ''}, "
        f"{len(streams)} streams, {len(spec.side_inputs)} input side packets"
    )


# ------------------------------------------------------------------------- validate


def validate_command(
    graphs: Annotated[
        list[str],
        typer.Argument(metavar="GRAPH...", help="Graph files (.yaml) or names of shipped graphs."),
    ],
    allow_imports: AllowImportsOption = False,
) -> None:
    """Check graph files without running them; print every problem with file:line."""
    from rich.text import Text

    console = _console()
    failed = 0
    for source in graphs:
        spec, problems, more = _load(console, source, allow_imports)
        if spec is not None:
            console.print(Text("OK ", style="bold green") + Text(f"{source}: {_summary(spec)}"))
            continue
        failed += 1
        count = len(problems) + more
        console.print(
            Text("FAIL ", style="bold red")
            + Text(f"{source}: {count:,} problem{'s' if count != 1 else ''}")
        )
        _print_problems(console, problems, more)
    if failed:
        raise typer.Exit(1)


# ----------------------------------------------------------------------------- show


def show_command(
    graph: Annotated[
        str, typer.Argument(metavar="GRAPH", help="Graph file (.yaml) or shipped graph name.")
    ],
    fmt: Annotated[
        DrawFormat | None,
        typer.Option(
            "--format",
            "-f",
            help="dot, mermaid, svg or png (svg/png need Graphviz). Default: from the "
            "-o suffix, else dot.",
            case_sensitive=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of stdout."),
    ] = None,
    allow_imports: AllowImportsOption = False,
) -> None:
    """Draw a graph: DOT or Mermaid text, or SVG/PNG through Graphviz; back edges dashed."""
    import sys

    from .draw import DrawError, draw

    err = _console(stderr=True)
    if fmt is None:
        fmt = (
            _SUFFIX_FORMATS.get(output.suffix.lower(), DrawFormat.dot)
            if output
            else (DrawFormat.dot)
        )
    if fmt is DrawFormat.png and output is None:
        err.print("error: PNG is binary; give an output file with -o FILE.png", markup=False)
        raise typer.Exit(2)
    if output is not None and _same_file(output, graph):
        err.print(f"error: -o {output} is the graph file {graph}; write it elsewhere", markup=False)
        raise typer.Exit(2)
    spec, problems, more = _load(err, graph, allow_imports)
    if spec is None:
        err.print(f"FAIL {graph}: cannot draw an invalid graph", markup=False)
        _print_problems(err, problems, more)
        raise typer.Exit(1)
    try:
        result = draw(spec, fmt.value)
    except DrawError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    data = result.encode("utf-8") if isinstance(result, str) else result
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    from .atomic_files import write_whole

    write_or_exit(err, output, lambda: write_whole(output, data), code=1)
    err.print(f"wrote {output} ({fmt.value}, {len(data)} bytes)", markup=False)


def _same_file(output: Path, source: str) -> bool:
    """Whether ``output`` is the file ``source`` (a link to it too)."""
    try:
        return os.path.samefile(output, source)
    except (OSError, ValueError):
        return False  # either does not exist (a shipped graph's name)


# ---------------------------------------------------------------------- calculators


def _port_text(port: Any) -> str:
    flags = ("[]" if port.multiple else "") + ("?" if port.optional else "")
    return f"{port.tag}{flags}: {port.type_name()}"


def _option_rows(cls: type[Calculator]) -> list[tuple[str, str, str, str]]:
    """(name, type, default, description) of each field of the calculator's Options."""
    from pydantic_core import PydanticUndefined

    from .ports import type_name

    rows = []
    for name, info in cls.Options.model_fields.items():
        if info.is_required():
            default = "required"
        elif info.default_factory is not None:
            try:
                default = repr(info.get_default(call_default_factory=True, validated_data={}))
            except Exception:
                default = "<factory>"
        elif info.default is PydanticUndefined:
            default = "required"
        else:
            default = repr(info.default)
        rows.append((name, type_name(info.annotation), default, info.description or ""))
    return rows


def _list_calculators(console: Console) -> None:
    from rich.table import Table

    from . import registry

    table = Table(
        title="Registered calculators",
        caption="TAG[]: indexed port (TAG:0, TAG:1 ...) · TAG?: optional",
        show_lines=True,
    )
    for column in ("Calculator", "Inputs", "Outputs", "Side packets", "Options", "Summary"):
        table.add_column(column, overflow="fold")
    for name, cls in registry.items():
        contract = cls.contract
        side = [f"in {_port_text(p)}" for p in contract.side_inputs.values()]
        side += [f"out {_port_text(p)}" for p in contract.side_outputs.values()]
        options = [
            f"{n}: {t} = {d}" if d != "required" else f"{n}: {t} (required)"
            for n, t, d, _ in _option_rows(cls)
        ]
        table.add_row(
            name,
            "\n".join(_port_text(p) for p in contract.inputs.values()) or "-",
            "\n".join(_port_text(p) for p in contract.outputs.values()) or "-",
            "\n".join(side) or "-",
            "\n".join(options) or "-",
            cls.summary(),
        )
    console.print(table)


def _show_calculator(console: Console, name: str, cls: type[Calculator]) -> None:
    import inspect

    from rich.table import Table
    from rich.text import Text

    console.print(Text(name, style="bold") + Text(f"  ({cls.__module__}.{cls.__qualname__})"))
    doc = inspect.getdoc(cls)
    if doc:
        console.print(Text(doc))
    policy = f"input policy: {cls.input_policy}"
    offset = (
        "outputs at the input timestamp"
        if cls.timestamp_offset == 0
        else "changes timestamps (sets its own bounds)"
        if cls.timestamp_offset is None
        else f"timestamp offset {cls.timestamp_offset}"
    )
    source = " · source node (no inputs)" if cls.is_source() else ""
    console.print(Text(f"{policy} · {offset}{source}", style="dim"))

    ports = Table(title="Ports", title_justify="left")
    for column in ("Kind", "Tag", "Type", "Optional", "Indexed", "Doc"):
        ports.add_column(column, overflow="fold")
    contract = cls.contract
    for kind, table in (
        ("input", contract.inputs),
        ("output", contract.outputs),
        ("side input", contract.side_inputs),
        ("side output", contract.side_outputs),
    ):
        for port in table.values():
            ports.add_row(
                kind,
                port.tag,
                port.type_name(),
                "yes" if port.optional else "no",
                "yes" if port.multiple else "no",
                port.doc,
            )
    console.print(ports if ports.row_count else Text("Ports: none"))

    rows = _option_rows(cls)
    if not rows:
        console.print(Text("Options: none"))
        return
    options = Table(title=f"Options ({cls.Options.__name__})", title_justify="left")
    for column in ("Option", "Type", "Default", "Description"):
        options.add_column(column, overflow="fold")
    for row in rows:
        options.add_row(*row)
    console.print(options)


def _calculator_record(name: str, cls: type[Calculator]) -> dict[str, Any]:
    """One calculator as plain data (``--format json``, and the lines of ``plain``)."""
    contract = cls.contract
    return {
        "name": name,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "inputs": [_port_text(p) for p in contract.inputs.values()],
        "outputs": [_port_text(p) for p in contract.outputs.values()],
        "side_inputs": [_port_text(p) for p in contract.side_inputs.values()],
        "side_outputs": [_port_text(p) for p in contract.side_outputs.values()],
        "options": [
            {"name": n, "type": t, "default": d, "description": doc}
            for n, t, d, doc in _option_rows(cls)
        ],
        "summary": cls.summary(),
    }


def _print_plain(records: list[dict[str, Any]]) -> None:
    """One block per calculator, every name whole on its own line (for grep, less, files)."""
    for i, rec in enumerate(records):
        lines = [("" if i == 0 else "\n") + rec["name"], f"  summary: {rec['summary']}"]
        for key in ("inputs", "outputs", "side_inputs", "side_outputs"):
            if rec[key]:
                lines.append(f"  {key.replace('_', ' ')}: {', '.join(rec[key])}")
        for opt in rec["options"]:
            lines.append(f"  option {opt['name']}: {opt['type']} = {opt['default']}")
        typer.echo("\n".join(lines))


class ListFormat(str, enum.Enum):
    """How ``facegraph calculators`` prints."""

    table = "table"
    plain = "plain"
    json = "json"


def calculators_command(
    name: Annotated[
        str | None,
        typer.Argument(help="Show one calculator in detail (docstring, ports, options)."),
    ] = None,
    fmt: Annotated[
        ListFormat | None,
        typer.Option(
            "--format",
            "-f",
            help="table (default on a terminal), plain (default when piped: one "
            "calculator per block, names whole) or json.",
            case_sensitive=False,
        ),
    ] = None,
) -> None:
    """List every registered calculator with its ports, side packets and options."""
    import inspect
    import json
    import sys

    from . import registry
    from .errors import RegistryError

    console = _console()
    err = _console(stderr=True)
    for message in registry.plugin_errors():
        err.print(f"warning: {message}", markup=False)
    if fmt is None:
        fmt = ListFormat.table if sys.stdout.isatty() else ListFormat.plain
    if name is None and fmt is not ListFormat.table:
        records = [_calculator_record(n, cls) for n, cls in registry.items()]
        if fmt is ListFormat.json:
            typer.echo(json.dumps(records, indent=2))
        else:
            _print_plain(records)
        return
    if name is None:
        _list_calculators(console)
        return
    try:
        cls = registry.lookup(name)
    except RegistryError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    if fmt is ListFormat.table:
        _show_calculator(console, name, cls)
        return
    record = _calculator_record(name, cls)
    record["doc"] = inspect.getdoc(cls) or ""
    if fmt is ListFormat.json:
        typer.echo(json.dumps(record, indent=2))
        return
    _print_plain([record])
    typer.echo("\n" + record["doc"])


# --------------------------------------------------------------------------- schema


def schema_command(
    write: Annotated[
        bool,
        typer.Option("--write", help="Regenerate the schema file shipped in the package."),
    ] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Exit 1 if the shipped schema file is out of date."),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the schema to this file."),
    ] = None,
) -> None:
    """Print the JSON Schema of graph files (generated from the validating models)."""
    import sys

    from .schema import SCHEMA_FILE, schema_text, shipped_schema_text, write_schema

    err = _console(stderr=True)
    if check:
        if shipped_schema_text() != schema_text():
            err.print(f"{SCHEMA_FILE} is out of date; run 'facegraph schema --write'", markup=False)
            raise typer.Exit(1)
        err.print("schema file is up to date", markup=False)
        return
    if write or output is not None:
        target = output or SCHEMA_FILE
        write_or_exit(err, target, lambda: write_schema(target), code=1)
        err.print(f"wrote {target}", markup=False)
        return
    sys.stdout.write(schema_text())


def register(app: typer.Typer) -> None:
    """Add the graph commands to the ``facegraph`` app."""
    app.command("validate")(validate_command)
    app.command("show")(show_command)
    app.command("calculators")(calculators_command)
    app.command("schema")(schema_command)
