"""YAML loading that remembers where every value came from.

Graph errors must point at a line a user can fix, so the loader composes the
document with PyYAML's *safe* loader (no Python tags, no code execution) and
builds plain Python data while recording, for every mapping key and sequence
item, the 1-based line it starts on. Paths are tuples of keys and indices::

    ("nodes", 3, "options", "factor")  ->  42

Duplicate keys in one mapping are reported (PyYAML silently keeps the last
one, which would hide a user's mistake).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import Problem
from .graph_limits import MAX_DEPTH, MAX_VALUES, YamlSize, scan_yaml

Path = tuple[Hashable, ...]


@dataclass
class LoadedYaml:
    """Plain data of a YAML document plus the source line of each path in it."""

    data: Any
    file: str
    lines: dict[Path, int] = field(default_factory=dict)

    def line(self, path: Path) -> int | None:
        """Line of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while True:
            found = self.lines.get(p)
            if found is not None:
                return found
            if not p:
                return None
            p = p[:-1]


def load_yaml(
    text: str,
    file: str = "<string>",
    *,
    check_size: Callable[[YamlSize], Problem | None] | None = None,
) -> tuple[LoadedYaml | None, list[Problem]]:
    """Parse ``text``; return the data with its line map, or None and the problems.

    The file's size is checked first from its parse events alone (fast, bounded memory):
    more than :data:`~facegraph.graph_limits.MAX_VALUES` values is refused, and so is
    whatever ``check_size`` objects to (the graph loader's node limit).
    """
    size = scan_yaml(text)
    if size.values > MAX_VALUES:
        return None, [
            Problem(
                f"the file has {size.values:,} YAML values; a graph file may have at most "
                f"{MAX_VALUES:,} (a 10,000-node graph has about 150,000)",
                file,
            )
        ]
    if size.depth > MAX_DEPTH:  # refused before the (recursive) composer sees it
        return None, [
            Problem(
                f"YAML nested deeper than {MAX_DEPTH} levels ({size.depth:,}): {_TOO_DEEP}",
                file,
                size.depth_line,
            )
        ]
    if check_size is not None:
        refused = check_size(size)
        if refused is not None:
            return None, [refused]
    # libyaml's composer when available: ~3x faster than PyYAML's pure-Python one.
    loader = _SAFE_LOADER(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as exc:
            return None, [_yaml_problem(exc, file)]
        except RecursionError:  # PyYAML's composer recurses once per nesting level
            return None, [Problem(f"YAML nested deeper than Python can parse: {_TOO_DEEP}", file)]
        builder = _Builder(loader, file, size.values)
        if root is None:
            return LoadedYaml(None, file, {(): 1}), []
        try:
            data = builder.build(root, ())
        except yaml.YAMLError as exc:  # e.g. an invalid timestamp scalar
            return None, [*builder.problems, _yaml_problem(exc, file)]
        except _TooComplexError as exc:
            return None, [*builder.problems, exc.problem]
        builder.lines.setdefault((), root.start_mark.line + 1)
        return LoadedYaml(data, file, builder.lines), builder.problems
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError, file: str) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    text = str(exc)
    if problem:
        text = f"{context}, {problem}" if context else str(problem)
    if "maximum nesting depth" in text:  # libyaml stops at 1,000 levels, before any event
        return Problem(f"YAML nested deeper than libyaml parses: {_TOO_DEEP}", file, line)
    return Problem(f"invalid YAML: {text}", file, line)


#: MAX_VALUES also bounds the values *built*: aliases are expanded here, so an "alias
#: bomb" (nested anchors, a few hundred bytes that expand to billions of values) or a
#: self-referencing alias is stopped (see :mod:`facegraph.graph_limits`).
_TOO_DEEP = "a graph file is at most a few levels deep (is an alias inside itself?)"


class _TooComplexError(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


class _Builder:
    """Turns a composed node tree into Python data, recording lines on the way."""

    def __init__(self, loader: _SafeLoader, file: str, written_values: int) -> None:
        self.loader = loader
        self.file = file
        self.written_values = written_values
        self.lines: dict[Path, int] = {}
        self.problems: list[Problem] = []
        self.count = 0

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise _TooComplexError(
                Problem(
                    f"aliases expand the file's {self.written_values:,} values to more than "
                    f"{MAX_VALUES:,} (an alias bomb); graph files do not need that many",
                    self.file,
                    _line(node),
                )
            )
        if len(path) > MAX_DEPTH:
            raise _TooComplexError(
                Problem(f"nested more than {MAX_DEPTH} levels: {_TOO_DEEP}", self.file, _line(node))
            )
        expected = _PLAIN_TAGS.get(type(node))
        if expected is not None and node.tag != expected:
            # The safe constructor would reject it; composing by hand must too (a
            # "!!python/object/apply" sequence would otherwise pass as a plain list).
            self.problems.append(
                Problem(f"unsupported YAML tag {node.tag!r}", self.file, _line(node))
            )
            return None
        if isinstance(node, yaml.MappingNode):
            # Resolve merge keys (<<: *anchor) the way PyYAML's constructor does.
            explicit = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
            self.loader.flatten_mapping(node)
            # flatten_mapping puts merged pairs first; explicit keys may override those.
            merged = len(node.value) - explicit
            result: dict[Any, Any] = {}
            from_merge: set[Hashable] = set()
            for position, (key_node, value_node) in enumerate(node.value):
                key = self.loader.construct_object(key_node, deep=True)
                if not isinstance(key, Hashable):
                    self.problems.append(
                        Problem("mapping key must be a plain value", self.file, _line(key_node))
                    )
                    continue
                if position < merged:
                    from_merge.add(key)
                elif key in from_merge:
                    from_merge.discard(key)
                elif key in result:
                    self.problems.append(
                        Problem(
                            f"duplicate key {key!r} (first given on line "
                            f"{self.lines.get((*path, key), '?')})",
                            self.file,
                            _line(key_node),
                        )
                    )
                    continue
                child = (*path, key)
                self.lines[child] = _line(key_node)
                result[key] = self.build(value_node, child)
            return result
        if isinstance(node, yaml.SequenceNode):
            items: list[Any] = []
            for index, item_node in enumerate(node.value):
                child = (*path, index)
                self.lines[child] = _line(item_node)
                items.append(self.build(item_node, child))
            return items
        return self.loader.construct_object(node, deep=True)


_SafeLoader = yaml.SafeLoader | yaml.CSafeLoader
_SAFE_LOADER: type[_SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_PLAIN_TAGS: dict[type[yaml.Node], str] = {
    yaml.MappingNode: "tag:yaml.org,2002:map",
    yaml.SequenceNode: "tag:yaml.org,2002:seq",
}


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1
