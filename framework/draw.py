"""Drawings of a graph: Graphviz DOT and Mermaid text, SVG/PNG through Graphviz.

Boxes are nodes (name and calculator), edges are streams labelled with their
name; back edges are dashed (and do not constrain the layout, so loops read as
loops); side packets are dotted. Graph input streams, output streams and
input side packets get their own shapes. Nodes inlined from a subgraph
(``face/detector``) are grouped in a box named after the subgraph node.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from .errors import FacegraphError
from .spec import GraphSpec, NodeSpec

TextFormat = Literal["dot", "mermaid"]
ImageFormat = Literal["svg", "png"]
FORMATS: tuple[str, ...] = ("dot", "mermaid", "svg", "png")


class DrawError(FacegraphError):
    """A drawing could not be made (e.g. Graphviz is not installed)."""


@dataclass
class _Edge:
    src: str
    dst: str
    label: str
    kind: Literal["stream", "back", "side"]


@dataclass
class _Cluster:
    """Nodes inlined from one subgraph node, with nested subgraphs inside."""

    name: str
    nodes: list[NodeSpec] = field(default_factory=list)
    children: dict[str, _Cluster] = field(default_factory=dict)


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _node_label(node: NodeSpec) -> tuple[str, str | None]:
    """(name, calculator) lines of a node's label; the calculator is omitted when equal."""
    short = _short(node.name)
    return short, (None if short == node.calculator_name else node.calculator_name)


def _clusters(spec: GraphSpec) -> _Cluster:
    root = _Cluster("")
    for node in spec.nodes:
        cluster = root
        parts = node.name.split("/")[:-1]
        for depth in range(len(parts)):
            prefix = "/".join(parts[: depth + 1])
            cluster = cluster.children.setdefault(prefix, _Cluster(prefix))
        cluster.nodes.append(node)
    return root


def _edges(spec: GraphSpec) -> Iterator[_Edge]:
    """Every stream and side-packet connection, with endpoint ids."""
    producers: dict[str, str] = {f: f"in:{f}" for f in spec.input_streams}
    side_producers: dict[str, str] = {s: f"side:{s}" for s in spec.side_inputs}
    for node in spec.nodes:
        for b in node.outputs:
            producers.setdefault(b.stream, f"node:{node.name}")
        for sb in node.side_outputs:
            side_producers.setdefault(sb.name, f"node:{node.name}")
    for node in spec.nodes:
        target = f"node:{node.name}"
        for b in node.inputs:
            src = producers.get(b.stream)
            if src is not None:
                yield _Edge(src, target, b.stream, "back" if b.back_edge else "stream")
        for sb in node.side_inputs:
            side_src = side_producers.get(sb.name)
            if side_src is not None:
                yield _Edge(side_src, target, sb.name, "side")
    for out in spec.output_streams:
        src = producers.get(out)
        if src is not None:
            yield _Edge(src, f"out:{out}", out, "stream")


def _side_label(spec: GraphSpec, name: str) -> str:
    side = spec.side_inputs[name]
    return name if side.required else f"{name} = {side.default!r}"


# ------------------------------------------------------------------------------ DOT


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(spec: GraphSpec) -> str:
    """Graphviz DOT text of ``spec``."""
    lines = [
        f"digraph {_dot_quote(spec.name)} {{",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded", fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for name in spec.input_streams:
        lines.append(
            f"  {_dot_quote('in:' + name)} [label={_dot_quote(name)}, shape=invhouse, "
            'style=filled, fillcolor="#e3f2fd"];'
        )
    for name in spec.side_inputs:
        lines.append(
            f"  {_dot_quote('side:' + name)} [label={_dot_quote(_side_label(spec, name))}, "
            'shape=note, style=filled, fillcolor="#fff8e1"];'
        )

    def emit(cluster: _Cluster, indent: str) -> None:
        for node in cluster.nodes:
            short, calc = _node_label(node)
            label = short if calc is None else f"{short}\n{calc}"
            lines.append(f"{indent}{_dot_quote('node:' + node.name)} [label={_dot_quote(label)}];")
        for child in cluster.children.values():
            lines.append(f"{indent}subgraph {_dot_quote('cluster_' + child.name)} {{")
            lines.append(f'{indent}  label={_dot_quote(child.name)}; style="dashed,rounded";')
            emit(child, indent + "  ")
            lines.append(f"{indent}}}")

    emit(_clusters(spec), "  ")
    for name in spec.output_streams:
        lines.append(
            f"  {_dot_quote('out:' + name)} [label={_dot_quote(name)}, shape=house, "
            'style=filled, fillcolor="#e8f5e9"];'
        )
    for edge in _edges(spec):
        attrs = [f"label={_dot_quote(edge.label)}"]
        if edge.kind == "back":
            # constraint=false: the loop does not pull the producer below its consumer.
            attrs += ["style=dashed", "constraint=false"]
        elif edge.kind == "side":
            attrs += ["style=dotted", "arrowhead=empty"]
        lines.append(f"  {_dot_quote(edge.src)} -> {_dot_quote(edge.dst)} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------- Mermaid


def _mermaid_text(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def to_mermaid(spec: GraphSpec) -> str:
    """Mermaid flowchart text of ``spec`` (renders on GitHub in a ```mermaid block)."""
    ids: dict[str, str] = {}

    def ident(key: str) -> str:
        if key not in ids:
            ids[key] = f"{key.split(':', 1)[0]}{len(ids)}"
        return ids[key]

    lines = ["flowchart TB"]
    for name in spec.input_streams:
        lines.append(f"  {ident('in:' + name)}([{_mermaid_text(name)}])")
    for name in spec.side_inputs:
        lines.append(f"  {ident('side:' + name)}>{_mermaid_text(_side_label(spec, name))}]")

    def emit(cluster: _Cluster, indent: str) -> None:
        for node in cluster.nodes:
            short, calc = _node_label(node)
            label = short if calc is None else f"{short}<br/><i>{calc}</i>"
            lines.append(f"{indent}{ident('node:' + node.name)}[{_mermaid_text(label)}]")
        for child in cluster.children.values():
            lines.append(
                f"{indent}subgraph {ident('sub:' + child.name)} [{_mermaid_text(child.name)}]"
            )
            emit(child, indent + "  ")
            lines.append(f"{indent}end")

    emit(_clusters(spec), "  ")
    for name in spec.output_streams:
        lines.append(f"  {ident('out:' + name)}([{_mermaid_text(name)}])")
    arrows = {"stream": "-->", "back": "-.->", "side": "--o"}
    for edge in _edges(spec):
        label = f"{edge.label} (back edge)" if edge.kind == "back" else edge.label
        lines.append(
            f"  {ident(edge.src)} {arrows[edge.kind]}|{_mermaid_text(label)}| {ident(edge.dst)}"
        )
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------- SVG / PNG


def render(spec: GraphSpec, fmt: ImageFormat) -> bytes:
    """SVG or PNG bytes of ``spec``, drawn by Graphviz's ``dot`` program."""
    dot = shutil.which("dot")
    if dot is None:
        raise DrawError(
            f"drawing {fmt.upper()} needs Graphviz's 'dot' program, which is not on PATH: "
            "install graphviz (e.g. 'apt install graphviz', 'brew install graphviz', "
            "'conda install graphviz') or use --format dot / --format mermaid"
        )
    try:
        proc = subprocess.run(
            [dot, f"-T{fmt}"],
            input=to_dot(spec).encode("utf-8"),
            capture_output=True,
            check=False,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DrawError(f"running Graphviz 'dot' failed: {exc}") from exc
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()
        raise DrawError(f"Graphviz 'dot' failed (exit {proc.returncode}): {message}")
    return proc.stdout


def draw(spec: GraphSpec, fmt: str) -> str | bytes:
    """Text (dot, mermaid) or image bytes (svg, png) of ``spec``."""
    if fmt == "dot":
        return to_dot(spec)
    if fmt == "mermaid":
        return to_mermaid(spec)
    if fmt in ("svg", "png"):
        return render(spec, "svg" if fmt == "svg" else "png")
    raise DrawError(f"unknown drawing format {fmt!r}; choose one of {', '.join(FORMATS)}")
