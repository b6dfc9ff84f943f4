"""The bounds a graph file must stay within, and the cheap checks that enforce them.

A graph file is small: the shipped face mesh has 17 nodes, and a 2,000-node graph is
~150 kB with ~30,000 YAML values. A hostile or broken file must be refused quickly, in
bounded memory, and with a message that says which bound it broke and by how much, so:

- the file is read at most :data:`MAX_GRAPH_FILE_BYTES` (a device or FIFO not at all);
- before any YAML node tree is built, :func:`scan_yaml` streams the file's parse events
  (libyaml when available: about a second for the largest file allowed) and counts its
  values and the items of each top-level list, so a file with too many values or nodes
  is refused with its real counts (building PyYAML's node tree costs ~50x more);
- aliases are counted again while the data is built (:mod:`facegraph.yaml_lines`): a
  few hundred bytes can expand to billions of values;
- subgraph inlining stops at :data:`MAX_NODES` nodes in all;
- at most :data:`MAX_PROBLEMS` problems are kept; the rest are counted and reported
  as "… and N more" (:class:`ProblemLog`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import yaml

from .errors import Problem

__all__ = [
    "MAX_DEPTH",
    "MAX_GRAPH_FILE_BYTES",
    "MAX_NODES",
    "MAX_PROBLEMS",
    "MAX_VALUES",
    "ProblemLog",
    "YamlSize",
    "scan_yaml",
]

#: Nodes in one graph, subgraphs inlined (a 2,000-node graph loads in about a second).
MAX_NODES = 10_000
#: YAML values (scalars, lists, mappings; keys included) in one file, aliases expanded.
#: A 10,000-node graph of the usual shape has ~150,000.
MAX_VALUES = 250_000
#: Nesting depth of a graph file's YAML (real graphs use 6 levels).
MAX_DEPTH = 64
#: Larger files are refused before parsing (a 10,000-node graph is about 1 MB).
MAX_GRAPH_FILE_BYTES = 8 * 1024 * 1024
#: Problems reported per graph; more are counted, not listed.
MAX_PROBLEMS = 100


@dataclass
class YamlSize:
    """What :func:`scan_yaml` counted, without building the document."""

    #: Scalars, sequences and mappings written in the file (keys included, aliases not).
    values: int = 0
    aliases: int = 0
    #: Number of items of each top-level list, by key (``{"nodes": 17, "inputs": 1}``).
    top_level_items: dict[str, int] = field(default_factory=dict)
    #: Deepest nesting of collections written in the file.
    depth: int = 0
    #: 1-based line where ``depth`` was first reached.
    depth_line: int | None = None


def scan_yaml(text: str) -> YamlSize:
    """Count values, aliases and top-level list lengths from the parse events alone.

    Memory stays bounded by the nesting depth. A syntax error ends the scan with the
    counts so far: the loader reports it with its line.
    """
    loader_cls = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    size = YamlSize()
    stack: list[_Open] = []
    root_key: str | None = None  # the last key read in the root mapping
    try:
        for event in yaml.parse(text, Loader=loader_cls):
            if isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
                stack.pop()
                continue
            if isinstance(event, yaml.AliasEvent):
                size.aliases += 1
            elif isinstance(event, _VALUE_EVENTS):
                size.values += 1
            else:
                continue  # stream and document events
            list_key: str | None = None  # set for a list that is a root-mapping value
            if stack:
                parent = stack[-1]
                position = parent.children
                parent.children += 1
                if len(stack) == 1 and parent.is_mapping:
                    if position % 2 == 0:
                        root_key = str(event.value) if isinstance(event, yaml.ScalarEvent) else None
                    else:
                        list_key = root_key
                elif len(stack) == 2 and parent.root_key is not None:
                    counts = size.top_level_items
                    counts[parent.root_key] = counts.get(parent.root_key, 0) + 1
            if isinstance(event, yaml.SequenceStartEvent):
                stack.append(_Open(is_mapping=False, root_key=list_key))
                if list_key is not None:
                    size.top_level_items.setdefault(list_key, 0)
            elif isinstance(event, yaml.MappingStartEvent):
                stack.append(_Open(is_mapping=True))
            if len(stack) > size.depth:
                size.depth = len(stack)
                mark = event.start_mark
                size.depth_line = mark.line + 1 if mark is not None else None
    except yaml.YAMLError:
        pass
    return size


_VALUE_EVENTS = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)


@dataclass(slots=True)
class _Open:
    """A collection being scanned."""

    is_mapping: bool
    #: For a top-level list: its key in the root mapping (its items are counted).
    root_key: str | None = None
    #: Events seen directly inside it (keys and values alternate in a mapping).
    children: int = 0


class ProblemLog:
    """Problems in the order found; at most ``limit`` kept, the rest counted."""

    def __init__(self, limit: int = MAX_PROBLEMS) -> None:
        self.limit = limit
        self.kept: list[Problem] = []
        self.dropped = 0

    def add(self, problem: Problem) -> None:
        if len(self.kept) < self.limit:
            self.kept.append(problem)
        else:
            self.dropped += 1

    def extend(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self.add(problem)

    def absorb(self, other: ProblemLog) -> None:
        """Add another log's problems and its dropped count."""
        self.extend(other.kept)
        self.dropped += other.dropped

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.kept)

    def __len__(self) -> int:
        """Every problem found, kept or not."""
        return len(self.kept) + self.dropped

    def __bool__(self) -> bool:
        return len(self) > 0
