"""The graph file format: the pydantic models that validate a YAML graph file's shape.

The loader (:mod:`facegraph.graph_loader`) validates the header and each node with
these models; ``facegraph schema`` turns them into the shipped JSON Schema. How
pydantic's errors read to a graph author is here too (:func:`friendly_error`).

Graph file format
=================

.. code-block:: yaml

    name: face_mesh                  # optional, defaults to the file stem
    description: ...                 # optional
    inputs: [image]                  # graph input streams; "TAG:name" sets the port tag
    outputs: [landmarks, "ROIS:rects"]   # used when this graph is a subgraph (default NAME)
    side_inputs:                     # graph input side packets
      num_faces: {default: 1, doc: "max faces"}   # with a default → optional
      model_path: {}                               # {} or null → required
    executors: {default: {threads: 2}, inference: {threads: 1}}
    max_queue_size: 100
    nodes:
      - calculator: PreviousLoopback # registered calculator name, or a subgraph name
        name: loopback               # optional; default: the calculator name (_2, _3 ... if taken)
        inputs:
          MAIN: image                # TAG: stream
          LOOP: {stream: rects, back_edge: true}   # long form; also keep_latest: N
          IN: [a, b]                 # indexed port: same as "IN:0": a, "IN:1": b
          "IN:2": c                  # explicit index
        outputs: {PREV_LOOP: prev_rects}
        side_inputs: {NUM_FACES: num_faces}
        side_outputs: {MODEL: model}
        options: {max_size: 2}       # validated by the calculator's Options model
        input_policy: immediate      # sync | immediate | keep_latest; default: the calculator's
        executor: inference          # declared under executors ("default" always exists)

Names of nodes, streams and side packets are ``[A-Za-z_][A-Za-z0-9_]*``; port
tags are ``UPPER_CASE``. Unknown keys anywhere are errors.
"""

from __future__ import annotations

import difflib
from collections.abc import Hashable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag

from .calculator import InputPolicy
from .named_registry import did_you_mean
from .side_packets import SideInputRule
from .spec import DEFAULT_MAX_QUEUE_SIZE

__all__ = [
    "ExecutorDecl",
    "GraphFile",
    "InputEdge",
    "NodeConfig",
    "SideInputDecl",
    "data_path",
    "friendly_error",
    "suggest_tag",
    "unknown_tag",
]

NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
TAG_KEY_RE = r"^[A-Z][A-Z0-9_]*(:[0-9]+)?$"
PORT_RE = r"^([A-Z][A-Z0-9_]*:)?[A-Za-z_][A-Za-z0-9_]*$"
PORT_FIELDS = frozenset({"inputs", "outputs", "side_inputs", "side_outputs"})

Name = Annotated[str, StringConstraints(pattern=NAME_RE)]
TagKey = Annotated[str, StringConstraints(pattern=TAG_KEY_RE)]
PortName = Annotated[str, StringConstraints(pattern=PORT_RE)]

FRIENDLY_PATTERNS = {
    NAME_RE: "names use letters, digits and '_' and do not start with a digit",
    TAG_KEY_RE: "port tags are UPPER_CASE letters, digits and '_', optionally with ':INDEX'",
    PORT_RE: "expected 'name' or 'TAG:name' (letters, digits, '_'; tags UPPER_CASE)",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputEdge(_Strict):
    """Long form of a node input: the stream plus how it is consumed."""

    stream: Name = Field(description="Name of the stream.")
    back_edge: bool = Field(
        default=False,
        description="This edge closes a loop (e.g. from PreviousLoopback); ignored when "
        "ordering the graph. Required on exactly the edges that break cycles.",
    )
    keep_latest: int | None = Field(
        default=None,
        ge=1,
        description="Keep only the newest N queued packets; older ones are dropped "
        "(live sources such as cameras).",
    )


def _edge_or_name(value: Any) -> str:
    return "edge" if isinstance(value, (dict, InputEdge)) else "name"


def _input_value_kind(value: Any) -> str:
    return "list" if isinstance(value, list) else _edge_or_name(value)


InputRef = Annotated[
    Annotated[Name, Tag("name")] | Annotated[InputEdge, Tag("edge")],
    Discriminator(_edge_or_name),
]
InputValue = Annotated[
    Annotated[Name, Tag("name")]
    | Annotated[InputEdge, Tag("edge")]
    | Annotated[list[InputRef], Tag("list")],
    Discriminator(_input_value_kind),
]
NameOrList = Annotated[
    Annotated[Name, Tag("name")] | Annotated[list[Name], Tag("list")],
    Discriminator(lambda v: "list" if isinstance(v, list) else "name"),
]


class NodeConfig(_Strict):
    """One entry of ``nodes:``."""

    calculator: str = Field(
        min_length=1,
        description="A registered calculator name (see `facegraph calculators`), a subgraph "
        "name (X.yaml next to this file, or a shipped graph), or module:Class when imports "
        "are allowed.",
    )
    name: Name | None = Field(
        default=None,
        description="Node name; defaults to the calculator name (_2, _3 ... when taken).",
    )
    inputs: dict[TagKey, InputValue] = Field(
        default_factory=dict,
        description="TAG: stream, TAG: {stream, back_edge, keep_latest}, TAG: [s0, s1] or "
        "'TAG:i': stream.",
    )
    outputs: dict[TagKey, NameOrList] = Field(
        default_factory=dict, description="TAG: stream (or a list for an indexed port)."
    )
    side_inputs: dict[TagKey, NameOrList] = Field(
        default_factory=dict, description="TAG: side packet name."
    )
    side_outputs: dict[TagKey, NameOrList] = Field(
        default_factory=dict, description="TAG: side packet name."
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Validated by the calculator's Options model."
    )
    input_policy: InputPolicy | None = Field(
        default=None,
        description="sync: run when a timestamp is settled on all inputs (default of most "
        "calculators); immediate: run for each packet as it arrives; keep_latest: like sync, "
        "but a slow node skips to the newest timestamp queued on all inputs.",
    )
    executor: Name | None = Field(
        default=None, description="Executor (thread pool) name declared under executors."
    )


class SideInputDecl(_Strict):
    """A graph input side packet. Giving ``default`` (even null) makes it optional."""

    default: Any = Field(default=None, description="Value used when the caller gives none.")
    doc: str = Field(default="", description="What the side packet is.")
    type: Literal["int", "float", "bool", "str"] | None = Field(
        default=None, description="Accepted type (an int is accepted as a float)."
    )
    min: float | None = Field(default=None, description="Smallest accepted number.")
    max: float | None = Field(default=None, description="Largest accepted number.")
    choices: list[Any] | None = Field(default=None, description="The accepted values.")
    choices_from: str | None = Field(
        default=None,
        description="A facegraph.choices entry point listing the accepted names "
        "(e.g. face_detectors).",
    )

    def rule(self) -> SideInputRule | None:
        """The checks declared here, or None when there are none."""
        checks = (self.type, self.min, self.max, self.choices, self.choices_from)
        if all(c is None for c in checks):
            return None
        return SideInputRule(
            self.type,
            self.min,
            self.max,
            None if self.choices is None else tuple(self.choices),
            self.choices_from,
        )


class ExecutorDecl(_Strict):
    """A thread pool that nodes can be assigned to."""

    threads: int = Field(ge=1, description="Number of worker threads.")


class GraphFile(_Strict):
    """A facegraph graph file (YAML)."""

    model_config = ConfigDict(extra="forbid", title="facegraph graph")

    name: str | None = Field(default=None, description="Graph name; defaults to the file stem.")
    description: str = Field(default="", description="Free text.")
    inputs: list[PortName] = Field(
        default_factory=list,
        description="Graph input streams: 'name' or 'TAG:name' (the tag names the port when "
        "this graph is used as a subgraph; default NAME).",
    )
    outputs: list[PortName] = Field(
        default_factory=list, description="Graph output streams: 'name' or 'TAG:name'."
    )
    side_inputs: dict[PortName, SideInputDecl | None] = Field(
        default_factory=dict,
        description="Graph input side packets: name (or 'TAG:name') -> {default, doc}; "
        "without a default the side packet is required.",
    )
    executors: dict[Name, ExecutorDecl] = Field(
        default_factory=dict,
        description="Thread pools by name; 'default' always exists (2 threads unless declared).",
    )
    max_queue_size: int = Field(
        default=DEFAULT_MAX_QUEUE_SIZE,
        ge=1,
        description="Bound of every input queue; producers wait when it is reached.",
    )
    nodes: list[NodeConfig] = Field(default_factory=list, description="The graph's nodes.")


# ---------------------------------------------------------------------------------------
# Error messages


def data_path(data: Any, loc: tuple[int | str, ...]) -> tuple[Hashable, ...]:
    """Map a pydantic error location onto the YAML data path (dropping union labels)."""
    path: list[Hashable] = []
    current = data
    for part in loc:
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_dict or in_list:
            path.append(part)
            current = current[part]
    return tuple(path)


def friendly_error(err: Any, path: tuple[Hashable, ...], what: str) -> str:
    """A pydantic error in words a graph author recognises; ``path`` is the data path."""
    kind = err["type"]
    value = err.get("input")
    where = ".".join(str(p) for p in path)
    noun = what or "key"
    if kind == "extra_forbidden":
        parent = ".".join(str(p) for p in path[:-1])
        return f"unknown {noun} '{path[-1] if path else ''}'" + (
            f" in '{parent}'" if parent else ""
        )
    if kind == "missing":
        missing = err["loc"][-1] if err["loc"] else "?"
        return f"missing required {noun} '{missing}'" + (f" in '{where}'" if where else "")
    subject = f"{what} '{where}'" if what else f"'{where}'" if where else "graph file"
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        hint = FRIENDLY_PATTERNS.get(pattern, f"must match {pattern}")
        label = "key" if err["loc"] and err["loc"][-1] == "[key]" else "name"
        return f"bad {label} {value!r} in {subject}: {hint}"
    got = f" (got {value!r})" if is_short(value) else ""
    return f"{subject}: {err['msg']}{got}"


def is_short(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and len(repr(value)) <= 60


def suggest_tag(tag: str, candidates: list[str]) -> str:
    """Did-you-mean for port tags; they are short, so one wrong letter halves the ratio."""
    close = difflib.get_close_matches(tag, candidates, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else did_you_mean(tag, candidates)


def unknown_tag(words: str, tag: str, owner: str, declared: list[str]) -> str:
    """The message for a port tag ``owner`` (a calculator or subgraph) does not declare."""
    listing = ", ".join(declared) or "none"
    hint = suggest_tag(tag, declared)
    return f"unknown {words} tag '{tag}' for {owner}{hint}; its {words}s: {listing}"
