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

from .errors import GraphConfigError
from .graph_file import GraphFile, NodeConfig
from .graph_loader import GraphLoader
from .graph_sources import origin_key, read_source, shipped_graphs
from .spec import GraphSpec
from .spec_builder import to_spec
from .validate import check_graph

__all__ = [
    "GraphFile",
    "NodeConfig",
    "graph_from_yaml",
    "load_graph",
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
    loader = GraphLoader(allow_imports=allow_imports)
    flat = loader.load(text, file, base_dir, chain=(origin_key(file, base_dir),))
    problems = loader.problems
    if flat is not None and not loader.budget.exceeded:  # a cut graph: no cascade
        problems.extend(check_graph(flat))
    if problems or flat is None:
        # Top-level file first, then by line (stable: same-line problems keep check order).
        kept = sorted(problems, key=lambda p: (p.file != file, p.file or "", p.line or 0))
        raise GraphConfigError(kept, more=problems.dropped)
    return to_spec(flat)
