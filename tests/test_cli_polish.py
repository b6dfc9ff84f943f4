"""The small things a new user meets first, through the real command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli_helpers import facegraph


def test_version() -> None:
    from importlib.metadata import version

    r = facegraph("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"facegraph {version('facegraph')}"


def test_piped_calculators_keep_names_whole() -> None:
    r = facegraph("calculators")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert "PreviousLoopback" in lines  # `facegraph calculators | grep PreviousLoopback`
    assert "AssociateRois" in lines
    assert not any("│" in line for line in lines)  # no table borders when piped
    listed = json.loads(facegraph("calculators", "--format", "json").stdout)
    names = [c["name"] for c in listed]
    assert "PreviousLoopback" in names and names == sorted(names)
    loop = next(c for c in listed if c["name"] == "PreviousLoopback")
    assert loop["inputs"] == ["MAIN: Any", "LOOP: Any"]


def test_no_reference_to_a_document_that_is_not_there() -> None:
    text = facegraph("calculators").stdout
    assert "spec §" not in text
    assert "docs/face_pipeline.md §" in text
    doc = Path(__file__).resolve().parent.parent / "docs" / "face_pipeline.md"
    sections = {line.split()[1] for line in doc.read_text().splitlines() if line.startswith("## §")}
    for ref in {w.rstrip(").,;:") for w in text.split() if w.startswith("§")}:
        assert ref.split(".")[0] in sections, ref


@pytest.mark.parametrize("command", ["run", "batch", "bench", "eval", "validate", "show"])
def test_help_has_plain_metavars_and_no_machine_paths(command: str) -> None:
    r = facegraph(command, "--help")
    assert r.returncode == 0
    assert "<bool>" not in r.stdout
    assert "{graph}" not in r.stdout  # one spelling: GRAPH
    assert "/work/" not in r.stdout and "/bin/python" not in r.stdout  # no developer's venv


def test_models_list_piped_has_a_header() -> None:
    r = facegraph("models", "list")
    assert r.returncode == 0
    assert r.stdout.splitlines()[0].split("\t") == ["name", "bytes", "cached", "path"]


def test_one_problem_is_singular(tmp_path: Path) -> None:
    graph = tmp_path / "bad.yaml"
    graph.write_text(
        "inputs: [x]\noutputs: [y]\nnodes:\n"
        "  - {calculator: Nope, inputs: {IN: x}, outputs: {OUT: y}}\n"
    )
    r = facegraph("run", str(graph), "--input", "sample")
    assert r.returncode == 1
    assert f"FAIL {graph}: 1 problem" in r.stderr and "problem(s)" not in r.stderr


def test_litert_info_line_is_gone_from_every_command(tmp_path: Path, model_cache: Path) -> None:
    r = facegraph("run", "face_mesh", "--input", "sample", "--max-frames", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "XNNPACK" not in r.stderr and "INFO:" not in r.stderr


def test_litert_silencer_keeps_other_stderr_lines(capfd: pytest.CaptureFixture[str]) -> None:
    from facegraph.models.inference import _quiet_litert_stderr

    with _quiet_litert_stderr():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"ERROR: something real\n")
    err = capfd.readouterr().err
    assert err == "ERROR: something real\n"


def test_bench_defaults_to_the_bundled_sample(tmp_path: Path, model_cache: Path) -> None:
    out = tmp_path / "b.json"
    for extra in ([], ["--input", "sample"]):
        r = facegraph(
            "bench", "face_mesh", *extra, "--frames", "2", "--warmup", "0", "--no-profile",
            "--json", str(out), cwd=tmp_path,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        result = json.loads(out.read_text())
        assert Path(result["input"]).name == "face_sample.mp4"
        assert result["frames"] == 2
