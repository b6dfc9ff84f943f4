"""JSON Schema of graph files, generated from the pydantic models that validate them.

The shipped copy (``facegraph/graph.schema.json``) lets editors check
graph files while typing, e.g. with the YAML language server::

    # yaml-language-server: $schema=<path to>/graph.schema.json

It must always equal what :func:`graph_schema` generates (a test checks this);
regenerate it after changing ``facegraph.graph_file`` with::

    facegraph schema --write

The schema checks the file's shape (keys, names, tags, value types); calculator
names, ports and options depend on the installed calculators and are checked by
``facegraph validate``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FILE = Path(__file__).resolve().parent / "graph.schema.json"


def graph_schema() -> dict[str, Any]:
    """The JSON Schema of a graph file (a fresh dict)."""
    from .graph_file import GraphFile

    schema = GraphFile.model_json_schema()
    _close_pattern_maps(schema)
    return {"$schema": SCHEMA_DIALECT, **schema}


def _close_pattern_maps(node: Any) -> None:
    """Maps keyed by a pattern (port tags, names) reject keys that do not match it.

    pydantic emits only ``patternProperties`` for constrained dict keys; the loader
    rejects a bad key, so the schema says so too and editors flag it.
    """
    if isinstance(node, dict):
        if "patternProperties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _close_pattern_maps(value)
    elif isinstance(node, list):
        for value in node:
            _close_pattern_maps(value)


def schema_text() -> str:
    """:func:`graph_schema` as the exact text of the shipped file."""
    return json.dumps(graph_schema(), indent=2, sort_keys=False) + "\n"


def shipped_schema_text() -> str:
    """Text of the schema file shipped with the package."""
    import importlib.resources

    return (
        importlib.resources.files("facegraph")
        .joinpath("graph.schema.json")
        .read_text(encoding="utf-8")
    )


def write_schema(path: Path | None = None) -> Path:
    """Write the generated schema (default: the package's shipped file); return the path.

    Written whole (a temporary beside it, moved into place): a failed write (OSError)
    leaves an earlier file there as it was.
    """
    from .atomic_files import write_whole

    target = path or SCHEMA_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    write_whole(target, schema_text())
    return target
