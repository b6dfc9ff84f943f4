"""Where graph text comes from: files, shipped graphs and subgraph lookup.

A graph source is a path (``*.yaml``, or anything with a ``/``) or the name of a shipped
graph: a ``*.yaml`` file of a package declared as a ``facegraph.graphs`` entry point. A
subgraph ``X`` is ``X.yaml`` next to the including file, else the shipped graph ``X``.
Files are read bounded (:data:`MAX_GRAPH_FILE_BYTES`); a device, FIFO or directory is
refused before it is opened for reading.
"""

from __future__ import annotations

import importlib.resources
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import GraphConfigError, Problem
from .graph_file import NAME_RE
from .graph_limits import MAX_GRAPH_FILE_BYTES
from .named_registry import did_you_mean
from .plugins import graph_packages

__all__ = [
    "LOAD_CONTEXT_KEY",
    "LoadContext",
    "SubgraphSource",
    "find_subgraph",
    "origin_key",
    "read_source",
    "shipped_graphs",
    "subgraph_names",
]


def shipped_graphs() -> list[str]:
    """Names of the graphs in the packages declared as ``facegraph.graphs`` entry points."""
    names: set[str] = set()
    for package in graph_packages():
        try:
            root = importlib.resources.files(package)
        except ModuleNotFoundError:
            continue
        names.update(
            entry.name[: -len(".yaml")]
            for entry in root.iterdir()
            if entry.name.endswith(".yaml") and entry.is_file()
        )
    return sorted(names)


def read_source(source: str | os.PathLike[str]) -> tuple[str, str, Path | None]:
    text_source = os.fspath(source)
    path = Path(text_source)
    looks_like_path = (
        path.suffix in (".yaml", ".yml") or os.sep in text_source or "/" in text_source
    )
    if path.is_file() or looks_like_path:
        try:
            return read_graph_text(path), text_source, path.parent
        except FileNotFoundError:
            raise GraphConfigError(
                [Problem(f"graph file not found: {text_source}", text_source)]
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise GraphConfigError(
                [Problem(f"cannot read graph file: {exc}", text_source)]
            ) from None
    shipped = read_shipped(text_source)
    if shipped is None:
        raise GraphConfigError(
            [
                Problem(
                    f"no graph file '{text_source}' and no shipped graph of that name"
                    f"{did_you_mean(text_source, shipped_graphs())}; shipped graphs: "
                    f"{', '.join(shipped_graphs()) or '(none)'}"
                )
            ]
        )
    return shipped[0], shipped[1], None


def read_graph_text(path: Path) -> str:
    """The file's text; a device, FIFO or huge file is an OSError (never read unbounded)."""
    if path.exists() and not path.is_file():
        kind = "a directory" if path.is_dir() else "not a regular file"
        raise OSError(f"{path} is {kind}")
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_GRAPH_FILE_BYTES:  # refused unread
            raise OSError(_too_large(path, size))
        data = f.read(MAX_GRAPH_FILE_BYTES + 1)
    if len(data) > MAX_GRAPH_FILE_BYTES:  # grew while being read
        raise OSError(_too_large(path, None))
    return data.decode("utf-8")


def _too_large(path: Path, size: int | None) -> str:
    limit = MAX_GRAPH_FILE_BYTES // 2**20
    what = f"{size / 2**20:.1f} MB" if size is not None else f"more than {limit} MB"
    return (
        f"{path} is {what}; graph files are at most {limit} MB (a graph of 10,000 nodes, "
        "the node limit, is about 1 MB)"
    )


def read_shipped(name: str) -> tuple[str, str] | None:
    if not re.match(NAME_RE, name):
        return None
    for package in graph_packages():
        try:
            entry = importlib.resources.files(package).joinpath(f"{name}.yaml")
        except ModuleNotFoundError:
            continue
        if entry.is_file():
            return entry.read_text(encoding="utf-8"), str(entry)
    return None


def origin_key(file: str, base_dir: Path | None) -> str:
    """Identity of a graph source, for detecting a subgraph that includes itself."""
    path = Path(file)
    if path.is_absolute() or base_dir is not None:
        candidate = path if path.is_absolute() else (base_dir or Path()) / path.name
        try:
            return str(candidate.resolve())
        except OSError:
            return str(candidate)
    return file


#: Key of the :class:`LoadContext` in the pydantic validation context of node options.
LOAD_CONTEXT_KEY = "facegraph_load"


@dataclass(frozen=True)
class LoadContext:
    """Where the graph file being loaded lives, for options that name another graph.

    The loader passes it to every node's options validation (``info.context[
    LOAD_CONTEXT_KEY]``), so an option naming a graph (ParallelMap's ``body``) resolves
    it exactly like a subgraph (:func:`facegraph.config.load_subgraph`).
    """

    base_dir: Path | None
    allow_imports: bool
    #: Origins of the files being loaded, outermost first (a graph may not include itself).
    chain: tuple[str, ...]


@dataclass
class SubgraphSource:
    """The text of a subgraph file, its name for messages and where its own subgraphs are."""

    text: str
    file: str
    base_dir: Path | None


def find_subgraph(name: str, base_dir: Path | None) -> SubgraphSource | None:
    """The subgraph called ``name`` (None if there is none); OSError if it cannot be read."""
    if not re.match(NAME_RE, name):
        return None
    if base_dir is not None:
        candidate = base_dir / f"{name}.yaml"
        if candidate.is_file():
            return SubgraphSource(read_graph_text(candidate), str(candidate), base_dir)
    shipped = read_shipped(name)
    if shipped is not None:
        return SubgraphSource(shipped[0], shipped[1], None)
    return None


def subgraph_names(base_dir: Path | None) -> list[str]:
    """Names usable as subgraphs from ``base_dir`` (for did-you-mean hints)."""
    local = [p.stem for p in base_dir.glob("*.yaml")] if base_dir is not None else []
    return sorted({*local, *shipped_graphs()})
