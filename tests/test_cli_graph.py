"""The graph commands: facegraph validate, show, calculators, schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from facegraph.cli import app
from facegraph.schema import graph_schema
from typer.testing import CliRunner

from .graph_calculators import calcs
from .graph_helpers import line_of, yaml_text
from .helpers import file_size_limit

__all__ = ["calcs"]

pytestmark = pytest.mark.usefixtures("calcs")

GOOD = """
name: good
inputs: [a]
outputs: [c]
nodes:
  - {calculator: TgScale, inputs: {IN: a}, outputs: {OUT: b}}
  - {calculator: TgMerge, inputs: {IN: [b, a]}, outputs: {OUT: c}}
"""

BAD = """
inputs: [a]
nodes:
  - calculator: TgScale
    inputs: {IN: a}
    outputs: {OUT: b}
    options: {factor: many}
  - {calculator: TgTxt, inputs: {IN: b}}
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.yaml"
    path.write_text(yaml_text(GOOD))
    return path


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text(BAD))
    return path


# ------------------------------------------------------------------------- validate


def test_validate_ok_prints_a_summary(good: Path) -> None:
    code, out, _ = run("validate", str(good))
    assert code == 0
    assert out.strip() == (f"OK {good}: graph 'good': 2 nodes, 3 streams, 0 input side packets")


def test_validate_prints_every_problem_with_its_line(good: Path, bad: Path) -> None:
    code, out, _ = run("validate", str(bad), str(good))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"FAIL {bad}: 2 problems"
    assert lines[1] == (
        f"  - {bad}:{line_of(BAD, 'factor: many')}: node 'TgScale': option 'factor': "
        "Input should be a valid number, unable to parse string as a number (got 'many')"
    )
    assert lines[2].startswith(f"  - {bad}:{line_of(BAD, 'TgTxt')}: node 'TgTxt': unknown")
    assert "did you mean 'TgText'" in lines[2]
    assert lines[3].startswith(f"OK {good}")
    assert "Traceback" not in out


def test_validate_missing_file_and_unknown_name(tmp_path: Path) -> None:
    code, out, _ = run("validate", str(tmp_path / "missing.yaml"), "no_such_graph")
    assert code == 1
    assert "graph file not found" in out
    assert "no shipped graph of that name" in out
    assert "Traceback" not in out


def test_validate_allow_imports(tmp_path: Path) -> None:
    path = tmp_path / "imports.yaml"
    path.write_text(
        "inputs: [a]\nnodes:\n  - {calculator: 'tests.graph_calculators:Text', inputs: {IN: a}}\n"
    )
    code, out, _ = run("validate", str(path))
    assert code == 1 and "--allow-imports" in out
    code, out, _ = run("validate", "--allow-imports", str(path))
    assert code == 0 and out.startswith("OK")


# ----------------------------------------------------------------------------- show


def test_show_prints_dot_by_default(good: Path) -> None:
    code, out, _ = run("show", str(good))
    assert code == 0
    assert out.startswith('digraph "good" {')
    assert '"node:TgScale" -> "node:TgMerge" [label="b"];' in out


def test_show_infers_the_format_from_the_output_suffix(good: Path, tmp_path: Path) -> None:
    target = tmp_path / "graph.mmd"
    code, out, err = run("show", str(good), "-o", str(target))
    assert code == 0 and out == ""
    assert target.read_text().startswith("flowchart TB")
    assert f"wrote {target} (mermaid" in err


def test_show_never_writes_over_its_graph_nor_leaves_half_a_file(
    good: Path, tmp_path: Path
) -> None:
    graph = good.read_bytes()
    code, out, err = run("show", str(good), "-o", str(good))
    assert code == 2 and out == ""
    assert err.splitlines() == [f"error: -o {good} is the graph file {good}; write it elsewhere"]
    assert good.read_bytes() == graph
    target = tmp_path / "graph.dot"
    code, _, _ = run("show", str(good), "-o", str(target))
    assert code == 0
    earlier = target.read_bytes()
    # No room for the new drawing (as on a full disk; real for root too): one line, and
    # the earlier drawing is still whole.
    with file_size_limit(16):
        code, _, err = run("show", str(good), "-f", "mermaid", "-o", str(target))
    assert code == 1 and err.splitlines() == [f"error: cannot write {target}: File too large"]
    assert target.read_bytes() == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.yaml", "graph.dot"]


def test_show_png_needs_an_output_file(good: Path) -> None:
    code, _, err = run("show", str(good), "--format", "png")
    assert code == 2 and "-o FILE.png" in err


def test_show_invalid_graph_lists_problems(bad: Path) -> None:
    code, out, err = run("show", str(bad))
    assert code == 1 and out == ""
    assert "cannot draw an invalid graph" in err and "TgTxt" in err


def test_show_svg_without_graphviz(
    good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = run("show", str(good), "-f", "svg", "-o", str(tmp_path / "g.svg"))
    assert code == 1
    assert "install graphviz" in err and "--format dot" in err
    assert not (tmp_path / "g.svg").exists()


# ---------------------------------------------------------------------- calculators


def test_calculators_lists_ports_side_packets_and_options() -> None:
    code, out, _ = run("calculators", "--format", "table")  # the default on a terminal
    assert code == 0
    row = next(line for line in out.splitlines() if "TgScale" in line)
    for cell in ("IN: int", "OUT: float", "in FACTOR?: float", "factor: float = 2.0"):
        assert cell in row, row
    merge = next(line for line in out.splitlines() if "TgMerge" in line)
    assert "IN[]: Any" in merge
    sized = "\n".join(line for line in out.splitlines() if "TgSized" in line)
    assert "size: int (required)" in sized


def test_calculators_name_shows_details() -> None:
    code, out, _ = run("calculators", "TgScale", "--format", "table")
    assert code == 0
    assert out.startswith("TgScale  (tests.graph_calculators.Scale)")
    assert "Second paragraph of the docstring" in out
    assert "numbers to scale" in out  # port doc
    assert "multiplier" in out  # option description
    assert "'fast'" in out  # option default


def test_calculators_unknown_name_suggests() -> None:
    code, _, err = run("calculators", "TgScal")
    assert code == 1 and "did you mean 'TgScale'" in err


# --------------------------------------------------------------------------- schema


def test_schema_prints_the_generated_schema() -> None:
    code, out, _ = run("schema")
    assert code == 0 and json.loads(out) == graph_schema()


def test_schema_output_file_and_check(tmp_path: Path) -> None:
    target = tmp_path / "graph.schema.json"
    code, _, _ = run("schema", "-o", str(target))
    assert code == 0 and json.loads(target.read_text()) == graph_schema()
    code, _, err = run("schema", "--check")
    assert code == 0 and "up to date" in err


def test_schema_output_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "graph.schema.json"
    target.write_text("earlier\n")
    with file_size_limit(64):  # no room for the schema: the earlier file stays as it was
        code, _, err = run("schema", "-o", str(target))
    assert code == 1 and err.splitlines() == [f"error: cannot write {target}: File too large"]
    assert target.read_text() == "earlier\n"
    folder = tmp_path / "dir.json"
    folder.mkdir()
    code, _, err = run("schema", "-o", str(folder))
    assert code == 1 and err.splitlines() == [f"error: cannot write {folder}: Is a directory"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.json", "graph.schema.json"]


def test_help_lists_the_commands_and_stays_light() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for command in ("validate", "show", "calculators", "schema"):
        assert command in out
    # Drawing and networkx are imported by the commands, not by the CLI module.
    probe = (
        "import sys, facegraph.cli; "
        "print(sorted(m for m in ('networkx', 'facegraph.draw') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
