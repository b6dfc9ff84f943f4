"""The README's walkthrough code is real: run every block marked ``<!-- readme-test -->``."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from facegraph import registry

from tests.cli_helpers import CLI, cli_env

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"<!-- readme-test -->\s*```python\n(.*?)```", re.S)


def _blocks() -> list[str]:
    return BLOCK.findall(README.read_text())


@pytest.fixture
def clean_registry() -> Iterator[None]:
    before = set(registry.names())
    yield
    for name in set(registry.names()) - before:
        registry.unregister(name)


def test_readme_has_runnable_examples() -> None:
    assert len(_blocks()) >= 1


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_readme_example_runs(index: int, clean_registry: None) -> None:
    code = _blocks()[index]
    exec(compile(code, f"README.md block {index}", "exec"), {"__name__": "readme_example"})


# -- the custom-calculator walkthrough: files + shell commands, run as a user runs them ---------

FILE = re.compile(r"<!-- readme-file: (\S+) -->\s*```\w*\n(.*?)```", re.S)
SHELL = re.compile(r"<!-- readme-shell -->\s*```bash\n(.*?)```", re.S)


def test_readme_walkthrough_calculator_beside_the_graph(tmp_path: Path, model_cache: Path) -> None:
    text = README.read_text()
    files = FILE.findall(text)
    assert {name for name, _ in files} == {"mynodes.py", "mouth.yaml"}
    for name, body in files:
        (tmp_path / name).write_text(body)
    commands = [
        shlex.split(line) for block in SHELL.findall(text) for line in block.splitlines() if line
    ]
    assert len(commands) == 2 and all(c[0] == "facegraph" for c in commands)
    env = cli_env()
    results = [
        subprocess.run(
            CLI + c[1:],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        for c in commands
    ]
    for r in results:
        assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in (tmp_path / "mouth.jsonl").read_text().splitlines()]
    assert len(records) == 125  # the whole bundled clip
    for record in records:
        assert len(record["mouth_open"]) == len(record["faces"]) == 1
        assert 0 <= record["mouth_open"][0] < 0.2
    printed = [json.loads(line) for line in results[1].stdout.splitlines()]
    assert [sorted(r) for r in printed] == [
        ["frame", "height", "mouth_open", "source", "timestamp_us", "width"]
    ] * 2


def test_calculator_module_not_found_names_the_searched_folders(tmp_path: Path) -> None:
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "inputs: [x]\noutputs: [y]\nnodes:\n"
        "  - {calculator: 'nodes_nowhere:Thing', inputs: {IN: x}, outputs: {OUT: y}}\n"
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    r = subprocess.run(
        [*CLI, "validate", str(graph), "--allow-imports"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 1
    assert "Traceback" not in r.stderr + r.stdout
    message = " ".join((r.stdout + r.stderr).split())
    assert "g.yaml:4" in message
    assert "cannot import module 'nodes_nowhere'" in message
    assert str(tmp_path) in message and str(elsewhere) in message  # the folders searched
    assert "put nodes_nowhere.py beside the graph file" in message  # the fix
