"""Huge graph files are refused quickly, in bounded memory, with honest counts (issue 12 §9).

Files are generated here (not the sizes of the original report): a graph over the node
limit, a node with far too many options, a graph with more problems than are listed, and
subgraphs that multiply each other past the node limit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from facegraph import GraphConfigError, load_graph
from facegraph import graph_loader as graph_loader_module
from facegraph.graph_limits import MAX_NODES, MAX_PROBLEMS, MAX_VALUES, scan_yaml

FACEGRAPH = [sys.executable, "-c", "import sys; from facegraph.cli import main; sys.exit(main())"]


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FACEGRAPH, "validate", str(path)],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
        timeout=300,
    )


def chain_graph(nodes: int) -> str:
    lines = ["inputs: [s0]", "nodes:"]
    for i in range(nodes):
        lines.append(
            f"  - {{calculator: PassThrough, inputs: {{IN: s{i}}}, outputs: {{OUT: s{i + 1}}}}}"
        )
    return "\n".join(lines) + "\n"


def test_a_graph_over_the_node_limit_is_refused_with_its_real_count(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(chain_graph(MAX_NODES + 2_345))
    result = validate(path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout.splitlines() == [
        f"FAIL {path}: 1 problem",
        f"  - {path}: the graph has {MAX_NODES + 2_345:,} nodes; a graph may have at most "
        f"{MAX_NODES:,}",
    ]


def test_the_refusal_builds_no_yaml_node_tree(tmp_path: Path) -> None:
    """Counting comes from parse events: the Python heap stays near the file's own size
    (building PyYAML's node tree for this file takes over 100 MB)."""
    text = chain_graph(MAX_NODES + 5_000)
    path = tmp_path / "many.yaml"
    path.write_text(text)
    tracemalloc.start()
    try:
        with pytest.raises(GraphConfigError, match=r"has 15,000 nodes"):
            load_graph(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * len(text) + 10 * 2**20, f"peak {peak / 2**20:.1f} MB"


def test_too_many_values_is_one_line_and_blames_no_alias(tmp_path: Path) -> None:
    options = "".join(f"      o{i}: {i}\n" for i in range(MAX_VALUES // 2 + 10))
    path = tmp_path / "options.yaml"
    path.write_text(
        "inputs: [a]\nnodes:\n  - calculator: PassThrough\n    inputs: {IN: a}\n"
        f"    outputs: {{OUT: b}}\n    options:\n{options}"
    )
    values = scan_yaml(path.read_text()).values
    assert values > MAX_VALUES
    result = validate(path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"FAIL {path}: 1 problem"
    assert lines[1] == (
        f"  - {path}: the file has {values:,} YAML values; a graph file may have at most "
        f"{MAX_VALUES:,} (a 10,000-node graph has about 150,000)"
    )
    assert len(lines) == 2 and "alias" not in result.stdout


def test_problems_past_the_listing_limit_are_counted(tmp_path: Path) -> None:
    count = MAX_PROBLEMS + 37
    lines = ["inputs: [a]", "nodes:"]
    for i in range(count):
        lines.append(
            f"  - {{calculator: PassThrough, inputs: {{IN: a}}, outputs: {{OUT: b{i}}}, "
            f"options: {{bogus_{i}: 1}}}}"
        )
    path = tmp_path / "bogus.yaml"
    path.write_text("\n".join(lines) + "\n")
    result = validate(path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    out = result.stdout.splitlines()
    assert out[0] == f"FAIL {path}: {count} problems"
    listed = out[1:-1]
    assert len(listed) == MAX_PROBLEMS
    # The first ones, in file order, each with its line.
    assert listed[0] == f"  - {path}:3: node 'PassThrough': unknown option 'bogus_0'"
    assert listed[-1].startswith(f"  - {path}:{2 + MAX_PROBLEMS}: ")
    assert out[-1] == "  … and 37 more"
    with pytest.raises(GraphConfigError) as info:
        load_graph(path)
    assert (len(info.value.problems), info.value.more, info.value.total) == (100, 37, count)
    assert str(info.value).endswith("… and 37 more")


def test_subgraphs_that_multiply_past_the_node_limit_stop_with_one_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of 30 uses of 'mid' inlines 30 uses of 'leaf': 900+ nodes against a limit
    of 200 (lowered for the test; the rule is the same at 10,000)."""
    monkeypatch.setattr(graph_loader_module, "MAX_NODES", 200)
    (tmp_path / "leaf.yaml").write_text(
        "inputs: [x]\noutputs: [y]\n"
        "nodes:\n  - {calculator: PassThrough, inputs: {IN: x}, outputs: {OUT: y}}\n"
    )
    uses = "".join(
        f"  - {{calculator: leaf, name: l{i}, inputs: {{X: x}}, outputs: {{Y: y{i}}}}}\n"
        for i in range(30)
    )
    (tmp_path / "mid.yaml").write_text(f"inputs: [x]\noutputs: [y0]\nnodes:\n{uses}")
    (tmp_path / "top.yaml").write_text(
        "inputs: [x]\nnodes:\n"
        + "".join(
            f"  - {{calculator: mid, name: m{i}, inputs: {{X: x}}, outputs: {{Y0: out{i}}}}}\n"
            for i in range(30)
        )
    )
    with pytest.raises(GraphConfigError) as info:
        load_graph(tmp_path / "top.yaml")
    (problem,) = info.value.problems
    assert problem.message.startswith("more than 200 nodes with subgraphs inlined")
    # Every node entry counts, a subgraph's too: each use of mid is 1 + 30 * (1 + 1) = 61,
    # so m0..m2 are 183; m3 is the 184th, and its l0..l7 with their leaves reach 200:
    # the 201st is m3's l8, in mid.yaml line 12, named by its full path.
    assert (Path(problem.file or "").name, problem.line, problem.node) == ("mid.yaml", 12, "m3/l8")


def test_scan_counts_what_is_written_without_expanding_aliases() -> None:
    size = scan_yaml(
        "inputs: [a, b]\n"
        "nodes:\n"
        "  - {calculator: X, inputs: {IN: a}}\n"
        "  - calculator: Y\n"
        "    options: {k: [1, [2]]}\n"
        "x: &q [1, 2, 3]\n"
        "y: *q\n"
    )
    # Keys count as values; the alias counts once as an alias, not as its 4 values.
    assert (size.values, size.aliases) == (30, 1)
    assert size.top_level_items == {"inputs": 2, "nodes": 2, "x": 3}
    assert (size.depth, size.depth_line) == (6, 5)  # root, nodes, node, options, k, [2]
