"""``facegraph run``: side packets, frame limit, profile table, trace, clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from facegraph.app.run_cli import parse_side_packets
from facegraph.cli import app
from typer.testing import CliRunner

DEMO = """
name: cli_demo
outputs: [n, g]
side_inputs:
  greeting: {}
nodes:
  - {calculator: CountSource, options: {count: 50, step_us: 10}, outputs: {OUT: n}}
  - {calculator: SidePacketToStream, side_inputs: {VALUE: greeting}, outputs: {OUT: g}}
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["run", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(DEMO)
    return path


def test_side_values_are_parsed_as_yaml_scalars() -> None:
    assert parse_side_packets(["a=3", "b=0.5", "c=true", "d=cam", "e=[1, 2]", "f="]) == {
        "a": 3,
        "b": 0.5,
        "c": True,
        "d": "cam",
        "e": "[1, 2]",
        "f": "",
    }
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_side_packets(["novalue"])


@pytest.mark.parametrize("flag", [[], ["--deterministic"]])
def test_run_drives_sources_to_completion_and_summarizes(demo: Path, flag: list[str]) -> None:
    code, out, err = run(str(demo), "--side", "greeting=hi", *flag)
    assert code == 0, err
    assert "ran graph 'cli_demo'" in out
    assert "output 'n': 50 packets" in out and "output 'g': 1 packet" in out


@pytest.mark.parametrize("flag", [[], ["--deterministic"]])
def test_max_frames_stops_the_sources(demo: Path, flag: list[str]) -> None:
    code, out, _ = run(str(demo), "-s", "greeting=1", "--max-frames", "7", *flag)
    assert code == 0
    assert "frames: 7" in out and "output 'n': 7 packets" in out


def test_profile_prints_the_stats_table_and_trace_is_written(demo: Path, tmp_path: Path) -> None:
    trace = tmp_path / "t.json"
    code, out, _ = run(str(demo), "-s", "greeting=1", "--profile", "--trace", str(trace))
    assert code == 0
    assert "node timings" in out and "CountSource" in out and "p99" in out
    events = json.loads(trace.read_text())["traceEvents"]
    assert any(e.get("name") == "CountSource" and e["ph"] == "X" for e in events)


def test_errors_are_messages_not_tracebacks(demo: Path, tmp_path: Path) -> None:
    code, _, err = run(str(demo))
    assert code == 1
    assert "required input side packet 'greeting'" in err and "Traceback" not in err
    code, _, err = run(str(demo), "--side", "oops")
    assert code == 2 and "NAME=VALUE" in err
    code, _, err = run(str(tmp_path / "missing.yaml"))
    assert code == 1 and "not found" in err


def test_calculator_failure_exits_nonzero_naming_the_node(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        """
name: bad
nodes:
  - name: counter
    calculator: CountSource
    options: {count: 3, start_us: 9223372036854775805}
    outputs: {OUT: n}
"""
    )
    code, _, err = run(str(path))
    assert code == 1
    assert "error: node 'counter' (CountSource) failed in open" in err
    assert "beyond the largest allowed" in err
