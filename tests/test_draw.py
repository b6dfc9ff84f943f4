"""Drawing graphs: DOT and Mermaid text, SVG/PNG through Graphviz."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from facegraph import GraphSpec, load_graph
from facegraph.draw import DrawError, draw, render, to_dot, to_mermaid

from .graph_calculators import calcs
from .graph_helpers import load, yaml_text

__all__ = ["calcs"]

pytestmark = pytest.mark.usefixtures("calcs")

TRACKING = """
name: tracking
inputs: [frames]
outputs: [rects]
side_inputs: {factor: {default: 2.5}}
nodes:
  - calculator: TgLoop
    name: loopback
    inputs: {MAIN: frames, LOOP: {stream: rects, back_edge: true}}
    outputs: {PREV_LOOP: prev}
  - calculator: TgMerge
    name: merge
    inputs: {IN: [frames, prev]}
    outputs: {OUT: merged}
  - calculator: TgScale
    inputs: {IN: merged}
    outputs: {OUT: rects}
    side_inputs: {FACTOR: factor}
"""


@pytest.fixture
def tracking() -> GraphSpec:
    return load(TRACKING)


def _dot_edges(dot: str) -> list[str]:
    return [line.strip() for line in dot.splitlines() if "->" in line]


def test_dot_labels_nodes_streams_and_graph_ports(tracking: GraphSpec) -> None:
    dot = to_dot(tracking)
    assert dot.startswith('digraph "tracking" {')
    assert '"node:loopback" [label="loopback\\nTgLoop"];' in dot
    assert '"node:TgScale" [label="TgScale"];' in dot  # name == calculator: said once
    assert '"in:frames" [label="frames", shape=invhouse' in dot
    assert '"out:rects" [label="rects", shape=house' in dot
    assert '"side:factor" [label="factor = 2.5", shape=note' in dot
    edges = _dot_edges(dot)
    assert '"in:frames" -> "node:loopback" [label="frames"];' in edges
    assert '"node:loopback" -> "node:merge" [label="prev"];' in edges
    assert '"node:TgScale" -> "out:rects" [label="rects"];' in edges


def test_dot_draws_back_edges_dashed_and_side_packets_dotted(tracking: GraphSpec) -> None:
    edges = _dot_edges(to_dot(tracking))
    back = [e for e in edges if "style=dashed" in e]
    assert back == [
        '"node:TgScale" -> "node:loopback" [label="rects", style=dashed, constraint=false];'
    ]
    side = [e for e in edges if "style=dotted" in e]
    assert side == [
        '"side:factor" -> "node:TgScale" [label="factor", style=dotted, arrowhead=empty];'
    ]


def test_mermaid_text(tracking: GraphSpec) -> None:
    text = to_mermaid(tracking)
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "flowchart TB"
    ids = dict(re.findall(r"^\s*(\w+)\[\"(\w+)", text, flags=re.M))
    node_ids = {label: ident for ident, label in ids.items()}
    assert '"loopback<br/><i>TgLoop</i>"' in text
    loop, scale = node_ids["loopback"], node_ids["TgScale"]
    assert f'{scale} -.->|"rects (back edge)"| {loop}' in lines
    assert sum("-.->" in line for line in lines) == 1
    assert any(line.endswith('(["frames"])') for line in lines)
    assert any('>"factor = 2.5"]' in line for line in lines)


def test_subgraph_nodes_are_grouped(tmp_path: Path) -> None:
    (tmp_path / "inner.yaml").write_text(
        yaml_text(
            """
            inputs: [x]
            outputs: [y]
            nodes:
              - {calculator: TgMerge, name: m, inputs: {IN: x}, outputs: {OUT: y}}
            """
        )
    )
    (tmp_path / "outer.yaml").write_text(
        "inputs: [a]\noutputs: [b]\nnodes:\n"
        "  - {calculator: inner, name: face, inputs: {X: a}, outputs: {Y: b}}\n"
    )
    spec = load_graph(tmp_path / "outer.yaml")
    dot = to_dot(spec)
    assert 'subgraph "cluster_face" {' in dot
    assert '"node:face/m" [label="m\\nTgMerge"];' in dot
    mermaid = to_mermaid(spec)
    assert re.search(
        r'subgraph sub\d+ \["face"\]\n\s+node\d+\["m<br/><i>TgMerge</i>"\]\n\s+end', mermaid
    )


def test_svg_without_graphviz_says_what_to_do(
    tracking: GraphSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no `dot` on PATH
    with pytest.raises(DrawError, match=r"install graphviz .* --format dot / --format mermaid"):
        render(tracking, "svg")


def test_unknown_format(tracking: GraphSpec) -> None:
    with pytest.raises(DrawError, match="choose one of dot, mermaid, svg, png"):
        draw(tracking, "jpeg")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_svg_and_png_through_graphviz(tracking: GraphSpec) -> None:
    svg = render(tracking, "svg").decode()
    assert "<svg" in svg
    for title in ("node:loopback", "node:merge", "node:TgScale", "in:frames", "out:rects"):
        assert f"<title>{title}</title>" in svg
    assert 'stroke-dasharray="5,2"' in svg  # the back edge
    png = render(tracking, "png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
