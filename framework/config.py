"""Graph files: YAML → a validated :class:`~facegraph.spec.GraphSpec`.

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

Subgraphs
---------
``calculator: X``, when ``X`` is not a registered calculator, names a subgraph:
``X.yaml`` next to the including file, else the shipped graph ``X``
(``facegraph.graphs``). A subgraph is an ordinary graph file; its ``inputs``,
``outputs`` and ``side_inputs`` are its ports, with tag ``NAME.upper()`` unless
written ``"TAG:name"``. At load the subgraph is inlined: inner node ``n`` of the
node ``face`` becomes ``face/n``, inner streams and side packets ``face/s``,
except those bound to the node's ports, which take the outer names. An input
``back_edge``/``keep_latest`` on a subgraph port applies to every inner consumer
of that port. A subgraph node's ``executor`` becomes the executor of inner nodes
that do not name one; the subgraph's ``executors`` are added to the graph's
(the including graph wins on a name clash; its ``max_queue_size`` is ignored).
Subgraph inputs and side inputs without default are required; outputs are optional.

An optional subgraph side input that the node leaves unconnected becomes a
graph-level input side packet named ``face/num_faces`` that carries the
subgraph's default (so the runtime supplies it like any other default, and a
caller may still override it by that name).

Loading never imports code unless ``allow_imports=True``: ``calculator: pkg.mod:Class``
is otherwise an error.
"""

from __future__ import annotations

import difflib
import importlib.resources
import os
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
)

from . import registry
from .calculator import Calculator, InputPolicy
from .errors import GraphConfigError, Problem, RegistryError
from .plugins import graph_packages
from .ports import Port
from .side_packets import SideInputRule
from .spec import (
    DEFAULT_EXECUTOR,
    DEFAULT_MAX_QUEUE_SIZE,
    GraphSpec,
    NodeSpec,
    SideBinding,
    SidePacketSpec,
    StreamBinding,
)
from .validate import FlatBinding, FlatGraph, FlatNode, GraphPort, check_graph
from .yaml_lines import LoadedYaml, load_yaml

__all__ = [
    "GraphFile",
    "NodeConfig",
    "graph_from_yaml",
    "load_graph",
    "shipped_graphs",
]

NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
TAG_KEY_RE = r"^[A-Z][A-Z0-9_]*(:[0-9]+)?$"
PORT_RE = r"^([A-Z][A-Z0-9_]*:)?[A-Za-z_][A-Za-z0-9_]*$"
_PORT_FIELDS = frozenset({"inputs", "outputs", "side_inputs", "side_outputs"})

Name = Annotated[str, StringConstraints(pattern=NAME_RE)]
TagKey = Annotated[str, StringConstraints(pattern=TAG_KEY_RE)]
PortName = Annotated[str, StringConstraints(pattern=PORT_RE)]

_FRIENDLY_PATTERNS = {
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
# Public API


def load_graph(source: str | os.PathLike[str], *, allow_imports: bool = False) -> GraphSpec:
    """Load and validate a graph from a YAML path or the name of a shipped graph.

    Raises :class:`~facegraph.errors.GraphConfigError` listing every problem found.
    """
    text, file, base_dir = _read_source(source)
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
    loader = _Loader(allow_imports=allow_imports)
    origin = _origin_key(file, base_dir)
    flat = loader.load(text, file, base_dir, chain=(origin,))
    problems = list(loader.problems)
    if flat is not None:
        problems += check_graph(flat)
    # Top-level file first, then by line (stable: same-line problems keep check order).
    problems.sort(key=lambda p: (p.file != file, p.file or "", p.line or 0))
    if problems or flat is None:
        raise GraphConfigError(problems)
    return _to_spec(flat)


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


# ---------------------------------------------------------------------------------------
# Reading sources


def _read_source(source: str | os.PathLike[str]) -> tuple[str, str, Path | None]:
    text_source = os.fspath(source)
    path = Path(text_source)
    looks_like_path = (
        path.suffix in (".yaml", ".yml") or os.sep in text_source or "/" in text_source
    )
    if path.is_file() or looks_like_path:
        try:
            return _read_graph_text(path), text_source, path.parent
        except FileNotFoundError:
            raise GraphConfigError(
                [Problem(f"graph file not found: {text_source}", text_source)]
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise GraphConfigError(
                [Problem(f"cannot read graph file: {exc}", text_source)]
            ) from None
    shipped = _read_shipped(text_source)
    if shipped is None:
        raise GraphConfigError(
            [
                Problem(
                    f"no graph file '{text_source}' and no shipped graph of that name"
                    f"{registry.suggest(text_source, shipped_graphs())}; shipped graphs: "
                    f"{', '.join(shipped_graphs()) or '(none)'}"
                )
            ]
        )
    return shipped[0], shipped[1], None


#: Larger files are refused before parsing: a 2,000-node graph is ~150 kB.
MAX_GRAPH_FILE_BYTES = 32 * 1024 * 1024


def _read_graph_text(path: Path) -> str:
    """The file's text; a device, FIFO or huge file is an OSError (never read unbounded)."""
    if path.exists() and not path.is_file():
        kind = "a directory" if path.is_dir() else "not a regular file"
        raise OSError(f"{path} is {kind}")
    with open(path, "rb") as f:
        data = f.read(MAX_GRAPH_FILE_BYTES + 1)
    if len(data) > MAX_GRAPH_FILE_BYTES:
        raise OSError(f"{path} is larger than {MAX_GRAPH_FILE_BYTES // 2**20} MB; not a graph file")
    return data.decode("utf-8")


def _read_shipped(name: str) -> tuple[str, str] | None:
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


def _origin_key(file: str, base_dir: Path | None) -> str:
    """Identity of a graph source, for detecting a subgraph that includes itself."""
    path = Path(file)
    if path.is_absolute() or base_dir is not None:
        candidate = path if path.is_absolute() else (base_dir or Path()) / path.name
        try:
            return str(candidate.resolve())
        except OSError:
            return str(candidate)
    return file


# ---------------------------------------------------------------------------------------
# Parsing one file


class _ProblemFn(Protocol):
    def __call__(
        self, message: str, sub: tuple[Hashable, ...] = (), at: int | None = None
    ) -> None: ...


@dataclass
class _Subgraph:
    text: str
    file: str
    base_dir: Path | None


class _Loader:
    """Parses graph files (recursively for subgraphs), collecting problems."""

    def __init__(self, *, allow_imports: bool) -> None:
        self.allow_imports = allow_imports
        self.problems: list[Problem] = []
        self._calculator_names = set(registry.names())
        self._bad_options: set[tuple[str, int]] = set()

    # -- one file --------------------------------------------------------------------

    def load(
        self, text: str, file: str, base_dir: Path | None, chain: tuple[str, ...]
    ) -> FlatGraph | None:
        loaded, problems = load_yaml(text, file)
        self.problems += problems
        if loaded is None:
            return None
        data = loaded.data
        if data is None:
            self.problems.append(Problem("graph file is empty", file, 1))
            return None
        if not isinstance(data, dict):
            self.problems.append(
                Problem(
                    f"a graph file must be a mapping (name:, inputs:, nodes: ...), "
                    f"not {type(data).__name__}",
                    file,
                    1,
                )
            )
            return None

        header, unknown = self._validate_header(loaded)
        stem = Path(file).stem if not file.startswith("<") else "graph"
        graph = FlatGraph(
            name=header.name or stem,
            file=file,
            description=header.description,
            executors={k: v.threads for k, v in header.executors.items()},
            max_queue_size=header.max_queue_size,
            unknown=unknown,
        )
        graph.inputs = [
            self._graph_port(p, ("inputs", i), loaded) for i, p in enumerate(header.inputs)
        ]
        graph.outputs = [
            self._graph_port(p, ("outputs", i), loaded) for i, p in enumerate(header.outputs)
        ]
        for key, decl in header.side_inputs.items():
            port = self._graph_port(key, ("side_inputs", key), loaded)
            graph.side_input_ports.append(port)
            has_default = decl is not None and "default" in decl.model_fields_set
            graph.side_inputs[port.name] = SidePacketSpec(
                name=port.name,
                default=decl.default if decl is not None else None,
                required=not has_default,
                doc=decl.doc if decl is not None else "",
                rule=decl.rule() if decl is not None else None,
            )
        self._check_port_tags(graph, loaded)

        raw_nodes = data.get("nodes", [])
        if isinstance(raw_nodes, list):
            # Names first (from the raw data), so that every problem can name its node.
            names = self._node_names(raw_nodes)
            for i, (raw, node_name) in enumerate(zip(raw_nodes, names, strict=True)):
                cfg = self._validate_node(raw, i, loaded, graph, node_name)
                if cfg is None:
                    continue
                self._add_node(graph, cfg, node_name, i, loaded, base_dir, chain)
        if len(chain) > 1:  # a subgraph (the top-level graph's outputs: see check_graph)
            self._check_outputs_produced_locally(graph)
        return graph

    def _validate_header(self, loaded: LoadedYaml) -> tuple[GraphFile, set[str]]:
        data: dict[Hashable, Any] = dict(loaded.data)
        nodes = data.get("nodes")
        if isinstance(nodes, list):
            data["nodes"] = []  # nodes are validated one by one (see _validate_node)
        unknown: set[str] = set()
        while True:
            try:
                return GraphFile.model_validate(data), unknown
            except ValidationError as exc:
                bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
                self._report_validation(exc, loaded, (), None)
                if not bad:
                    return GraphFile(), {"inputs", "outputs", "side_inputs", "executors"}
                # Drop the offending keys and go on, so the rest still gets checked.
                unknown |= bad
                data = {k: v for k, v in data.items() if str(k) not in bad}

    def _validate_node(
        self, raw: Any, index: int, loaded: LoadedYaml, graph: FlatGraph, node_name: str
    ) -> NodeConfig | None:
        path: tuple[Hashable, ...] = ("nodes", index)
        if not isinstance(raw, dict):
            self.problems.append(
                Problem(
                    "a node must be a mapping with at least 'calculator:'",
                    loaded.file,
                    loaded.line(path),
                    node_name,
                )
            )
            return None
        data = dict(raw)
        while True:
            try:
                return NodeConfig.model_validate(data)
            except ValidationError as exc:
                self._report_validation(exc, loaded, path, node_name, raw)
                bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
                # Port tables that failed leave the node's connections unknown: count its
                # outputs as produced (no cascade of "never produced") and skip the node.
                if not bad or "calculator" in bad or bad & _PORT_FIELDS:
                    self._mark_opaque(raw, graph)
                    return None
                if "options" in bad:  # reported; do not also report its missing fields
                    self._bad_options.add((loaded.file, index))
                data = {k: v for k, v in data.items() if str(k) not in bad}

    @staticmethod
    def _mark_opaque(raw: dict[Any, Any], graph: FlatGraph) -> None:
        for key, target in (("outputs", graph.opaque_streams), ("side_outputs", graph.opaque_side)):
            ports = raw.get(key)
            if not isinstance(ports, dict):
                continue
            for value in ports.values():
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, str):
                        target.add(item)

    def _report_validation(
        self,
        exc: ValidationError,
        loaded: LoadedYaml,
        prefix: tuple[Hashable, ...],
        node: str | None,
        data: Any = None,
        what: str = "",
    ) -> None:
        root = loaded.data if data is None else data
        for err in exc.errors():
            path = _data_path(root, err["loc"])
            line = loaded.line((*prefix, *path))
            self.problems.append(Problem(_friendly_error(err, path, what), loaded.file, line, node))

    @staticmethod
    def _graph_port(text: str, path: tuple[Hashable, ...], loaded: LoadedYaml) -> GraphPort:
        tag, sep, name = text.partition(":")
        if not sep:
            tag, name = text.upper(), text
        return GraphPort(tag=tag, name=name, line=loaded.line(path))

    def _check_port_tags(self, graph: FlatGraph, loaded: LoadedYaml) -> None:
        """Graph ports: each name once, each tag once; drops the repeated entries."""
        for kind, ports in (
            ("input", graph.inputs),
            ("output", graph.outputs),
            ("side input", graph.side_input_ports),
        ):
            seen: dict[str, GraphPort] = {}
            names: set[str] = set()
            for port in list(ports):
                if port.name in names:
                    self.problems.append(
                        Problem(
                            f"graph {kind} '{port.name}' is listed twice", loaded.file, port.line
                        )
                    )
                    ports.remove(port)
                    continue
                names.add(port.name)
                if port.tag in seen:
                    self.problems.append(
                        Problem(
                            f"graph {kind} tag '{port.tag}' is used twice ('{seen[port.tag].name}'"
                            f" and '{port.name}'); write 'TAG:{port.name}' to give it another",
                            loaded.file,
                            port.line,
                        )
                    )
                seen.setdefault(port.tag, port)

    @staticmethod
    def _node_names(raw_nodes: list[Any]) -> list[str]:
        """Explicit names, else the calculator name made unique with _2, _3 ..."""

        def explicit(raw: Any) -> str | None:
            name = raw.get("name") if isinstance(raw, dict) else None
            return name if isinstance(name, str) and re.match(NAME_RE, name) else None

        taken = {n for n in map(explicit, raw_nodes) if n is not None}
        names: list[str] = []
        for raw in raw_nodes:
            name = explicit(raw)
            if name is not None:
                names.append(name)
                continue
            calc = raw.get("calculator") if isinstance(raw, dict) else None
            calc = calc if isinstance(calc, str) else "node"
            base = re.sub(r"[^A-Za-z0-9_]", "_", calc.rpartition(":")[2].split(".")[-1])
            if not base or base[0].isdigit():
                base = f"node_{base}"
            candidate, n = base, 1
            while candidate in taken:
                n += 1
                candidate = f"{base}_{n}"
            taken.add(candidate)
            names.append(candidate)
        return names

    # -- one node --------------------------------------------------------------------

    def _add_node(
        self,
        graph: FlatGraph,
        cfg: NodeConfig,
        name: str,
        index: int,
        loaded: LoadedYaml,
        base_dir: Path | None,
        chain: tuple[str, ...],
    ) -> None:
        path: tuple[Hashable, ...] = ("nodes", index)
        line = loaded.line(path)
        file = loaded.file

        def problem(message: str, sub: tuple[Hashable, ...] = (), at: int | None = None) -> None:
            line = at if at is not None else loaded.line((*path, *sub))
            self.problems.append(Problem(message, file, line, name))

        bindings = self._parse_bindings(cfg, path, loaded, problem)
        calc = cfg.calculator
        cls: type[Calculator] | None = None
        subgraph: _Subgraph | None = None
        if calc in self._calculator_names or ":" in calc:
            try:
                cls = registry.lookup(
                    calc,
                    allow_imports=self.allow_imports,
                    search_paths=(*((base_dir,) if base_dir is not None else ()), Path.cwd()),
                )
            except RegistryError as exc:
                problem(str(exc), ("calculator",))
        else:
            subgraph = _find_subgraph(calc, base_dir)
            if subgraph is None:
                candidates = sorted(self._calculator_names | set(_subgraph_names(base_dir)))
                problem(
                    f"unknown calculator '{calc}'{registry.suggest(calc, candidates)} "
                    f"(not a registered calculator nor a subgraph file {calc}.yaml)",
                    ("calculator",),
                )

        if subgraph is not None:
            self._inline_subgraph(graph, cfg, name, path, loaded, bindings, subgraph, chain)
            return

        node = FlatNode(
            name=name,
            calculator_name=calc,
            cls=cls,
            options=None,
            inputs=bindings["inputs"],
            outputs=bindings["outputs"],
            side_inputs=bindings["side_inputs"],
            side_outputs=bindings["side_outputs"],
            input_policy=cfg.input_policy or (cls.input_policy if cls else "sync"),
            executor=cfg.executor,
            executor_line=loaded.line((*path, "executor")),
            executor_file=file,
            file=file,
            line=line,
        )
        if cls is not None:
            self._check_contract(cls, node, path, loaded, problem)
        if cls is not None and (file, index) not in self._bad_options:
            try:
                node.options = cls.Options.model_validate(cfg.options)
            except ValidationError as exc:
                self._report_validation(
                    exc, loaded, (*path, "options"), name, cfg.options, what="option"
                )
        graph.nodes.append(node)

    def _parse_bindings(
        self,
        cfg: NodeConfig,
        path: tuple[Hashable, ...],
        loaded: LoadedYaml,
        problem: _ProblemFn,
    ) -> dict[str, list[FlatBinding]]:
        result: dict[str, list[FlatBinding]] = {}
        for kind in ("inputs", "outputs", "side_inputs", "side_outputs"):
            table: dict[str, Any] = getattr(cfg, kind)
            out: list[FlatBinding] = []
            seen: dict[tuple[str, int], str] = {}
            for key, value in table.items():
                tag, _, index_text = key.partition(":")
                items = value if isinstance(value, list) else [value]
                explicit = int(index_text) if index_text else None
                if explicit is not None and isinstance(value, list):
                    problem(
                        f"'{key}' names one indexed port; give one stream, or a list under '{tag}'",
                        (kind, key),
                    )
                    continue
                for offset, item in enumerate(items):
                    index = explicit if explicit is not None else offset
                    sub: tuple[Hashable, ...] = (
                        (kind, key, offset) if isinstance(value, list) else (kind, key)
                    )
                    if isinstance(item, InputEdge):
                        binding = FlatBinding(
                            tag, index, item.stream, item.back_edge, item.keep_latest
                        )
                    else:
                        binding = FlatBinding(tag, index, str(item))
                    binding.line = loaded.line((*path, *sub))
                    if (tag, index) in seen:
                        problem(
                            f"port {tag}:{index} is connected twice ('{seen[tag, index]}' and "
                            f"'{binding.name}')",
                            sub,
                        )
                        continue
                    seen[tag, index] = binding.name
                    out.append(binding)
            result[kind] = out
        return result

    def _check_contract(
        self,
        cls: type[Calculator],
        node: FlatNode,
        path: tuple[Hashable, ...],
        loaded: LoadedYaml,
        problem: _ProblemFn,
    ) -> None:
        calc = node.calculator_name
        for kind, bindings, label in (
            ("input", node.inputs, "inputs"),
            ("output", node.outputs, "outputs"),
            ("side_input", node.side_inputs, "side_inputs"),
            ("side_output", node.side_outputs, "side_outputs"),
        ):
            ports: dict[str, Port[Any]] = cls.contract.ports(kind)
            words = kind.replace("_", " ")
            connected: dict[str, list[int]] = {}
            for b in bindings:
                port = ports.get(b.tag)
                if port is None:
                    declared = ", ".join(ports) or "none"
                    problem(
                        f"unknown {words} tag '{b.tag}' for calculator {calc}"
                        f"{_suggest_tag(b.tag, list(ports))}; its {words}s: {declared}",
                        at=b.line,
                    )
                    continue
                b.port_type = port.type
                connected.setdefault(b.tag, []).append(b.index)
                if b.index > 0 and not port.multiple:
                    problem(
                        f"{words} {b.tag} of {calc} is not an indexed port; connect one "
                        f"{'side packet' if 'side' in kind else 'stream'} as '{b.tag}: name'",
                        at=b.line,
                    )
            for tag, indexes in connected.items():
                port = ports[tag]
                if port.multiple:
                    missing = sorted(set(range(max(indexes) + 1)) - set(indexes))
                    if missing:
                        problem(
                            f"indexed {words} {tag} of {calc} has a gap: "
                            f"{', '.join(f'{tag}:{i}' for i in missing)} not connected "
                            f"(indexes must be 0..n-1)",
                            (label,),
                        )
            for tag, port in ports.items():
                if not port.optional and tag not in connected:
                    problem(
                        f"missing required {words} {tag} ({port.type_name()}) of calculator {calc}",
                        (),
                    )

    # -- subgraphs -------------------------------------------------------------------

    def _inline_subgraph(
        self,
        graph: FlatGraph,
        cfg: NodeConfig,
        name: str,
        path: tuple[Hashable, ...],
        loaded: LoadedYaml,
        bindings: dict[str, list[FlatBinding]],
        subgraph: _Subgraph,
        chain: tuple[str, ...],
    ) -> None:
        file = loaded.file

        def problem(message: str, sub: tuple[Hashable, ...] = (), at: int | None = None) -> None:
            line = at if at is not None else loaded.line((*path, *sub))
            self.problems.append(Problem(message, file, line, name))

        origin = _origin_key(subgraph.file, subgraph.base_dir)
        if origin in chain:
            names = [Path(c).name for c in (*chain, origin)]
            problem(
                f"subgraph '{cfg.calculator}' includes itself: {' -> '.join(names)}",
                ("calculator",),
            )
            return
        if cfg.options:
            problem(
                f"'{cfg.calculator}' is a subgraph; subgraphs take no options (use side inputs)",
                ("options",),
            )
        if cfg.input_policy is not None:
            problem(
                f"'{cfg.calculator}' is a subgraph; set input_policy on its nodes instead",
                ("input_policy",),
            )

        inner_loader = _Loader(allow_imports=self.allow_imports)
        inner = inner_loader.load(subgraph.text, subgraph.file, subgraph.base_dir, (*chain, origin))
        # Problems inside the subgraph keep its file and line and name the outer node.
        for p in inner_loader.problems:
            node_name = f"{name}/{p.node}" if p.node else name
            self.problems.append(Problem(p.message, p.file, p.line, node_name))
        if inner is None:
            self._mark_opaque(cfg.model_dump(), graph)
            return

        stream_map: dict[str, str] = {}
        side_map: dict[str, str] = {}
        port_edges: dict[str, FlatBinding] = {}
        for kind, ports in (
            ("inputs", inner.inputs),
            ("outputs", inner.outputs),
            ("side_inputs", inner.side_input_ports),
        ):
            by_tag = {p.tag: p for p in ports}
            words = kind[:-1].replace("_", " ")
            for b in bindings[kind]:
                port = by_tag.get(b.tag)
                if port is None:
                    declared = ", ".join(by_tag) or "none"
                    problem(
                        f"unknown {words} tag '{b.tag}' for subgraph {cfg.calculator}"
                        f"{_suggest_tag(b.tag, list(by_tag))}; its {words}s: {declared}",
                        at=b.line,
                    )
                    continue
                if b.index > 0:
                    problem(
                        f"subgraph {words} {b.tag} of {cfg.calculator} is not indexed",
                        at=b.line,
                    )
                    continue
                if kind == "side_inputs":
                    side_map[port.name] = b.name
                    continue
                if kind == "outputs" and any(p.name == port.name for p in inner.inputs):
                    problem(
                        f"subgraph output {b.tag} of {cfg.calculator} is one of its inputs "
                        f"('{port.name}'); a stream cannot take two outer names",
                        at=b.line,
                    )
                    continue
                stream_map[port.name] = b.name
                if kind == "inputs":
                    port_edges[port.name] = b
            connected = {b.tag for b in bindings[kind]}
            for port in ports:
                if port.tag in connected:
                    continue
                # Mark what a missing port would have fed as produced: one problem, not
                # one more per inner consumer.
                if kind == "inputs":
                    problem(f"missing required input {port.tag} of subgraph {cfg.calculator}")
                    graph.opaque_streams.add(f"{name}/{port.name}")
                elif kind == "side_inputs":
                    spec = inner.side_inputs[port.name]
                    if spec.required:
                        problem(
                            f"missing required side input {port.tag} of subgraph {cfg.calculator}"
                        )
                        graph.opaque_side.add(f"{name}/{port.name}")
        for kind in ("side_outputs",):
            for b in bindings[kind]:
                problem(f"subgraph {cfg.calculator} has no side outputs (got {b.tag})", at=b.line)

        def stream(s: str) -> str:
            return stream_map.get(s, f"{name}/{s}")

        def side(s: str) -> str:
            return side_map.get(s, f"{name}/{s}")

        def rename(bs: list[FlatBinding], fn: Callable[[str], str]) -> list[FlatBinding]:
            return [
                FlatBinding(
                    b.tag, b.index, fn(b.name), b.back_edge, b.keep_latest, b.line, b.port_type
                )
                for b in bs
            ]

        for node in inner.nodes:
            inputs = rename(node.inputs, stream)
            for b_old, b_new in zip(node.inputs, inputs, strict=True):
                outer_edge = port_edges.get(b_old.name)
                if outer_edge is not None:
                    b_new.back_edge = b_new.back_edge or outer_edge.back_edge
                    b_new.keep_latest = b_new.keep_latest or outer_edge.keep_latest
            graph.nodes.append(
                FlatNode(
                    name=f"{name}/{node.name}",
                    calculator_name=node.calculator_name,
                    cls=node.cls,
                    options=node.options,
                    inputs=inputs,
                    outputs=rename(node.outputs, stream),
                    side_inputs=rename(node.side_inputs, side),
                    side_outputs=rename(node.side_outputs, side),
                    input_policy=node.input_policy,
                    executor=node.executor or cfg.executor,
                    executor_line=node.executor_line
                    if node.executor
                    else loaded.line((*path, "executor")),
                    executor_file=node.executor_file if node.executor else file,
                    file=node.file,
                    line=node.line,
                )
            )
        # Optional side inputs left unconnected: graph-level side packets with the default.
        for inner_name, spec in inner.side_inputs.items():
            if inner_name in side_map or spec.required:
                continue
            outer_name = side(inner_name)
            graph.side_inputs[outer_name] = SidePacketSpec(
                name=outer_name, default=spec.default, required=False, doc=spec.doc
            )
        graph.opaque_streams |= {stream(s) for s in inner.opaque_streams}
        graph.opaque_side |= {side(s) for s in inner.opaque_side}
        for executor, threads in inner.executors.items():
            graph.executors.setdefault(executor, threads)

    def _check_outputs_produced_locally(self, graph: FlatGraph) -> None:
        """A subgraph's declared outputs must come from its own nodes (or inputs)."""
        produced = {b.name for n in graph.nodes for b in n.outputs} | graph.opaque_streams
        produced |= {p.name for p in graph.inputs}
        for port in graph.outputs:
            if port.name not in produced:
                self.problems.append(
                    Problem(
                        f"subgraph output '{port.name}' is not produced by any of its nodes"
                        f"{registry.suggest(port.name, sorted(produced))}",
                        graph.file,
                        port.line,
                    )
                )
                # Count it as produced outside, so its consumers do not repeat the error.
                graph.opaque_streams.add(port.name)


def _suggest_tag(tag: str, candidates: list[str]) -> str:
    """Did-you-mean for port tags; they are short, so one wrong letter halves the ratio."""
    close = difflib.get_close_matches(tag, candidates, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else registry.suggest(tag, candidates)


def _find_subgraph(name: str, base_dir: Path | None) -> _Subgraph | None:
    if not re.match(NAME_RE, name):
        return None
    if base_dir is not None:
        candidate = base_dir / f"{name}.yaml"
        if candidate.is_file():
            return _Subgraph(candidate.read_text(encoding="utf-8"), str(candidate), base_dir)
    shipped = _read_shipped(name)
    if shipped is not None:
        return _Subgraph(shipped[0], shipped[1], None)
    return None


def _subgraph_names(base_dir: Path | None) -> list[str]:
    local = [p.stem for p in base_dir.glob("*.yaml")] if base_dir is not None else []
    return sorted({*local, *shipped_graphs()})


# ---------------------------------------------------------------------------------------
# Error messages


def _data_path(data: Any, loc: tuple[int | str, ...]) -> tuple[Hashable, ...]:
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


def _friendly_error(err: Any, path: tuple[Hashable, ...], what: str) -> str:
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
        hint = _FRIENDLY_PATTERNS.get(pattern, f"must match {pattern}")
        label = "key" if err["loc"] and err["loc"][-1] == "[key]" else "name"
        return f"bad {label} {value!r} in {subject}: {hint}"
    got = f" (got {value!r})" if _short(value) else ""
    return f"{subject}: {err['msg']}{got}"


def _short(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and len(repr(value)) <= 60


# ---------------------------------------------------------------------------------------
# Building the spec


def _to_spec(graph: FlatGraph) -> GraphSpec:
    nodes: list[NodeSpec] = []
    for node in graph.nodes:
        assert node.cls is not None  # unresolved calculators were reported as problems
        nodes.append(
            NodeSpec(
                name=node.name,
                calculator_name=node.calculator_name,
                calculator=node.cls,
                options=node.options,
                inputs=tuple(
                    StreamBinding(b.tag, b.index, b.name, b.back_edge, b.keep_latest, b.line)
                    for b in node.inputs
                ),
                outputs=tuple(
                    StreamBinding(b.tag, b.index, b.name, line=b.line) for b in node.outputs
                ),
                side_inputs=tuple(
                    SideBinding(b.tag, b.index, b.name, b.line) for b in node.side_inputs
                ),
                side_outputs=tuple(
                    SideBinding(b.tag, b.index, b.name, b.line) for b in node.side_outputs
                ),
                input_policy=node.input_policy,
                executor=node.executor or DEFAULT_EXECUTOR,
                file=node.file,
                line=node.line,
            )
        )
    executors = {DEFAULT_EXECUTOR: 2, **graph.executors}
    return GraphSpec(
        name=graph.name,
        nodes=tuple(nodes),
        input_streams=tuple(p.name for p in graph.inputs),
        output_streams=tuple(p.name for p in graph.outputs),
        side_inputs=dict(graph.side_inputs),
        executors=executors,
        max_queue_size=graph.max_queue_size or DEFAULT_MAX_QUEUE_SIZE,
        file=graph.file,
    )
