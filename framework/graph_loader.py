"""Parsing graph files: YAML text → a :class:`~facegraph.validate.FlatGraph`, with problems.

:class:`GraphLoader` validates the header and each node against the file models
(:mod:`facegraph.graph_file`), resolves calculators (:mod:`facegraph.registry`),
checks each node's ports against its calculator's contract and validates its options,
and inlines subgraphs (:mod:`facegraph.subgraphs`). Problems are collected, never
raised, so a user sees all of them at once; every one names its file, line and node.
Loading never imports code unless ``allow_imports=True``: ``calculator: pkg.mod:Class``
is otherwise an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from . import registry
from .calculator import Calculator
from .errors import Problem, RegistryError
from .graph_file import (
    NAME_RE,
    PORT_FIELDS,
    GraphFile,
    InputEdge,
    NodeConfig,
    data_path,
    friendly_error,
    unknown_tag,
)
from .graph_limits import MAX_NODES, ProblemLog, YamlSize
from .graph_sources import (
    LOAD_CONTEXT_KEY,
    LoadContext,
    SubgraphSource,
    find_subgraph,
    subgraph_names,
)
from .named_registry import did_you_mean
from .ports import Port
from .spec import SidePacketSpec
from .subgraphs import check_outputs_produced_locally, inline_subgraph
from .validate import FlatBinding, FlatGraph, FlatNode, GraphPort
from .yaml_lines import LoadedYaml, load_yaml

__all__ = ["GraphLoader", "ProblemFn"]


class ProblemFn(Protocol):
    """Reports a problem at a node's sub-path (or an explicit line)."""

    def __call__(
        self, message: str, sub: tuple[Hashable, ...] = (), at: int | None = None
    ) -> None: ...


@dataclass
class NodeBudget:
    """Nodes parsed so far in one load, over every file (a subgraph each time it is used).

    Bounds the work of subgraphs that include subgraphs many times over (the node
    count of each single file is checked before it is parsed).
    """

    used: int = 0
    exceeded: bool = False


class GraphLoader:
    """Parses graph files (recursively for subgraphs), collecting problems."""

    def __init__(self, *, allow_imports: bool, budget: NodeBudget | None = None) -> None:
        self.allow_imports = allow_imports
        self.problems = ProblemLog()
        self.budget = budget if budget is not None else NodeBudget()
        self._calculator_names = set(registry.names())
        self._bad_options: set[tuple[str, int]] = set()

    def child(self) -> GraphLoader:
        """A loader for a subgraph file, with the same settings and node budget."""
        return GraphLoader(allow_imports=self.allow_imports, budget=self.budget)

    def _take_node(self, file: str, line: int | None, node: str) -> bool:
        """Count one more node; False (and one problem, the first time) past the limit."""
        self.budget.used += 1
        if self.budget.used <= MAX_NODES:
            return True
        if not self.budget.exceeded:
            self.budget.exceeded = True
            self.problems.add(
                Problem(
                    f"more than {MAX_NODES:,} nodes with subgraphs inlined (each use of a "
                    "subgraph counts its nodes again); loading stopped here",
                    file,
                    line,
                    node,
                )
            )
        return False

    # -- one file --------------------------------------------------------------------

    def load(
        self, text: str, file: str, base_dir: Path | None, chain: tuple[str, ...]
    ) -> FlatGraph | None:
        loaded, problems = load_yaml(text, file, check_size=_check_node_count(file))
        self.problems.extend(problems)
        if loaded is None:
            return None
        data = loaded.data
        if data is None:
            self.problems.add(Problem("graph file is empty", file, 1))
            return None
        if not isinstance(data, dict):
            self.problems.add(
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
                if not self._take_node(file, loaded.line(("nodes", i)), node_name):
                    break
                cfg = self._validate_node(raw, i, loaded, graph, node_name)
                if cfg is None:
                    continue
                self._add_node(graph, cfg, node_name, i, loaded, base_dir, chain)
        # A subgraph's own outputs (the top-level graph's: see check_graph); a graph cut
        # short by the node budget would only report cascades.
        if len(chain) > 1 and not self.budget.exceeded:
            check_outputs_produced_locally(self, graph)
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
            self.problems.add(
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
                if not bad or "calculator" in bad or bad & PORT_FIELDS:
                    self.mark_opaque(raw, graph)
                    return None
                if "options" in bad:  # reported; do not also report its missing fields
                    self._bad_options.add((loaded.file, index))
                data = {k: v for k, v in data.items() if str(k) not in bad}

    @staticmethod
    def mark_opaque(raw: dict[Any, Any], graph: FlatGraph) -> None:
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
            path = data_path(root, err["loc"])
            line = loaded.line((*prefix, *path))
            self.problems.add(Problem(friendly_error(err, path, what), loaded.file, line, node))

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
                    self.problems.add(
                        Problem(
                            f"graph {kind} '{port.name}' is listed twice", loaded.file, port.line
                        )
                    )
                    ports.remove(port)
                    continue
                names.add(port.name)
                if port.tag in seen:
                    self.problems.add(
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
            self.problems.add(Problem(message, file, line, name))

        bindings = self._parse_bindings(cfg, path, loaded, problem)
        calc = cfg.calculator
        cls: type[Calculator] | None = None
        subgraph: SubgraphSource | None = None
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
            try:
                subgraph = find_subgraph(calc, base_dir)
            except (OSError, UnicodeDecodeError) as exc:
                problem(f"cannot read subgraph '{calc}': {exc}", ("calculator",))
                self.mark_opaque(cfg.model_dump(), graph)
                return
            if subgraph is None:
                candidates = sorted(self._calculator_names | set(subgraph_names(base_dir)))
                problem(
                    f"unknown calculator '{calc}'{did_you_mean(calc, candidates)} "
                    f"(not a registered calculator nor a subgraph file {calc}.yaml)",
                    ("calculator",),
                )

        if subgraph is not None:
            inline_subgraph(self, graph, cfg, name, path, loaded, bindings, subgraph, chain)
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
                where = LoadContext(base_dir, self.allow_imports, chain)
                node.options = cls.Options.model_validate(
                    cfg.options, context={LOAD_CONTEXT_KEY: where}
                )
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
        problem: ProblemFn,
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
        problem: ProblemFn,
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
                    problem(unknown_tag(words, b.tag, f"calculator {calc}", list(ports)), at=b.line)
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


def _check_node_count(file: str) -> Callable[[YamlSize], Problem | None]:
    def check(size: YamlSize) -> Problem | None:
        count = size.top_level_items.get("nodes", 0)
        if count <= MAX_NODES:
            return None
        return Problem(
            f"the graph has {count:,} nodes; a graph may have at most {MAX_NODES:,}", file
        )

    return check
