"""Graph files: YAML → a validated :class:`~facegraph.spec.GraphSpec` (the public entry).

Loading goes through small modules, each with one job:

- :mod:`facegraph.graph_sources`: where the text comes from (a path, a shipped graph);
- :mod:`facegraph.yaml_lines`: YAML → plain data with the line of every value;
- :mod:`facegraph.graph_file`: the file format (pydantic models, also the JSON Schema);
- :mod:`facegraph.graph_loader`: nodes against their calculators' contracts and options;
- :mod:`facegraph.subgraphs`: subgraph files inlined as prefixed nodes;
- :mod:`facegraph.validate`: whole-graph checks (producers, types, cycles);
- :mod:`facegraph.spec_builder`: the checked graph → the immutable ``GraphSpec``.

Every problem found on the way is collected and raised at the end as one
:class:`~facegraph.errors.GraphConfigError`, each with its file, line and node.
The file format is documented in :mod:`facegraph.graph_file`, subgraphs in
:mod:`facegraph.subgraphs`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import GraphConfigError, Problem
from .graph_file import GraphFile, NodeConfig
from .graph_loader import GraphLoader
from .graph_sources import (
    LoadContext,
    SubgraphSource,
    find_subgraph,
    origin_key,
    read_graph_text,
    read_source,
    shipped_graphs,
    subgraph_names,
)
from .named_registry import did_you_mean
from .spec import GraphSpec
from .spec_builder import to_spec
from .validate import check_graph

__all__ = [
    "GraphFile",
    "NodeConfig",
    "graph_from_yaml",
    "load_graph",
    "load_subgraph",
    "shipped_graphs",
]


def load_graph(source: str | os.PathLike[str], *, allow_imports: bool = False) -> GraphSpec:
    """Load and validate a graph from a YAML path or the name of a shipped graph.

    Raises :class:`~facegraph.errors.GraphConfigError` listing every problem found.
    """
    text, file, base_dir = read_source(source)
    return graph_from_yaml(text, file=file, base_dir=base_dir, allow_imports=allow_imports)


def graph_from_yaml(
    text: str,
    *,
    file: str = "<string>",
    base_dir: Path | None = None,
    allow_imports: bool = False,
) -> GraphSpec:
    """Load and validate a graph from YAML text.

    ``file`` names the text in messages (and gives the default graph name);
    ``base_dir`` is where subgraph files are looked up first.
    """
    return _checked_spec(text, file, base_dir, allow_imports, (origin_key(file, base_dir),))


def load_subgraph(source: str, where: LoadContext | None = None) -> GraphSpec:
    """Load a graph that another graph names, resolved as subgraphs are, as its own spec.

    For nodes that run a whole graph themselves (ParallelMap's ``body``): ``source`` is a
    subgraph name (``X.yaml`` next to the including file, else the shipped graph ``X``)
    or a YAML path (relative to the including file's folder). ``where`` is the
    :class:`~facegraph.graph_sources.LoadContext` the loader gives options validation
    (None: nothing includes it; names and paths resolve from the working directory).
    Raises :class:`~facegraph.errors.GraphConfigError`, also for a graph that includes
    itself through such nodes.
    """
    base_dir = where.base_dir if where is not None else None
    chain = where.chain if where is not None else ()
    allow_imports = where.allow_imports if where is not None else False
    looks_like_path = source.endswith((".yaml", ".yml")) or "/" in source or os.sep in source
    found: SubgraphSource | None
    try:
        if looks_like_path:
            path = Path(source)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            found = SubgraphSource(read_graph_text(path), str(path), path.parent)
        else:
            found = find_subgraph(source, base_dir)
    except (OSError, UnicodeDecodeError) as exc:
        raise GraphConfigError([Problem(f"cannot read graph '{source}': {exc}")]) from None
    if found is None:
        hint = did_you_mean(source, subgraph_names(base_dir))
        raise GraphConfigError([Problem(f"no graph file or shipped graph '{source}'{hint}")])
    origin = origin_key(found.file, found.base_dir)
    if origin in chain:
        names = [Path(c).name for c in (*chain, origin)]
        raise GraphConfigError(
            [Problem(f"graph '{source}' includes itself: {' -> '.join(names)}", found.file)]
        )
    return _checked_spec(found.text, found.file, found.base_dir, allow_imports, (*chain, origin))


def _checked_spec(
    text: str, file: str, base_dir: Path | None, allow_imports: bool, chain: tuple[str, ...]
) -> GraphSpec:
    loader = GraphLoader(allow_imports=allow_imports)
    flat = loader.load(text, file, base_dir, chain=chain)
    problems = loader.problems
    if flat is not None and not loader.budget.exceeded:  # a cut graph: no cascade
        problems.extend(check_graph(flat))
    if problems or flat is None:
        # Top-level file first, then by line (stable: same-line problems keep check order).
        kept = sorted(problems, key=lambda p: (p.file != file, p.file or "", p.line or 0))
        raise GraphConfigError(kept, more=problems.dropped)
    return to_spec(flat)
