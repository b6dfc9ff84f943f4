"""Hardening: broken, hostile and huge graph files through ``facegraph validate``.

The command runs in a real subprocess (as a user runs it): every problem is printed with
``file:line``, the exit status is 1, and no Python traceback ever reaches the user.
Graph loading is safe: Python YAML tags are rejected, no code named by a graph file is
imported unless explicitly allowed, and model names cannot escape the cache.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from facegraph import Graph, GraphConfigError, load_graph

BAD_GRAPHS: dict[str, tuple[str, list[tuple[int | None, str]]]] = {
    # name: (text, [(line, fragment of the problem), ...])
    "invalid_yaml": (
        "nodes:\n  - calculator: PassThrough\n    inputs: {IN: a\n    outputs: [b\n",
        [(4, "invalid YAML")],
    ),
    "unknown_keys": (
        "inputs: [a]\noutputs: [b]\ncolour: blue\nnodes:\n  - calculator: PassThrough\n"
        "    inputs: {IN: a}\n    outputs: {OUT: b}\n    priority: 3\n",
        [(3, "unknown key 'colour'"), (8, "unknown key 'priority'")],
    ),
    "wrong_types": (
        "inputs: a\noutputs: [b]\nmax_queue_size: many\nnodes:\n  - calculator: PassThrough\n"
        "    inputs: {IN: 5}\n    outputs: {OUT: b}\n    input_policy: 7\n",
        [(1, "'inputs'"), (3, "max_queue_size"), (6, "inputs.IN"), (8, "input_policy")],
    ),
    "unknown_calculator": (
        "inputs: [a]\noutputs: [b]\nnodes:\n  - calculator: PassThru\n    inputs: {IN: a}\n"
        "    outputs: {OUT: b}\n  - calculator: NoSuchThing\n    inputs: {IN: a}\n"
        "    outputs: {OUT: c}\n",
        [(4, "did you mean 'PassThrough'"), (7, "unknown calculator 'NoSuchThing'")],
    ),
    "missing_model_file": (
        "inputs: [t]\noutputs: [o]\nnodes:\n  - calculator: TfLiteInference\n    name: infer\n"
        "    inputs: {TENSORS: t}\n    outputs: {TENSORS: o}\n"
        "    options: {model: /nonexistent/dir/face.tflite}\n",
        [(8, "node 'infer'"), (8, "/nonexistent/dir/face.tflite does not exist")],
    ),
    "unknown_model_name": (
        "inputs: [t]\noutputs: [o]\nnodes:\n  - calculator: TfLiteInference\n    name: infer\n"
        "    inputs: {TENSORS: t}\n    outputs: {TENSORS: o}\n"
        "    options: {model: face_landmrk}\n",
        [(8, "unknown model 'face_landmrk'"), (8, "did you mean 'face_landmark'")],
    ),
    "cycle": (
        "inputs: [a]\noutputs: [c]\nnodes:\n  - calculator: PassThrough\n    name: one\n"
        "    inputs: {IN: [a, c]}\n    outputs: {OUT: [b, x]}\n  - calculator: PassThrough\n"
        "    name: two\n    inputs: {IN: b}\n    outputs: {OUT: c}\n",
        [(6, "cycle without a back edge: one -> two -> one")],
    ),
    "selfsub": (
        "inputs: [a]\noutputs: [b]\nnodes:\n  - calculator: selfsub\n    inputs: {A: a}\n"
        "    outputs: {B: b}\n",
        [(4, "subgraph 'selfsub' includes itself")],
    ),
    "python_tag": (
        "inputs: [a]\noutputs: [b]\nnodes:\n"
        '  - calculator: !!python/object/apply:os.system ["touch PWNED"]\n'
        "    inputs: {IN: a}\n    outputs: {OUT: b}\n",
        [(4, "unsupported YAML tag")],
    ),
    "python_name_tag": (
        "inputs: [a]\noutputs: [b]\nnodes:\n  - calculator: PassThrough\n"
        "    inputs: {IN: a}\n    outputs: {OUT: b}\n    options: !!python/name:os.system\n",
        [(7, "python/name:os.system")],
    ),
    "import_path": (
        "inputs: [a]\noutputs: [b]\nnodes:\n  - calculator: 'evil_plugin:Thing'\n"
        "    inputs: {IN: a}\n    outputs: {OUT: b}\n",
        [(4, "importing code named in a graph file is off by default")],
    ),
    "alias_bomb": (
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        + "".join(
            f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + "nodes: []\n",
        [(None, "alias bomb")],
    ),
    "recursive_alias": ("a: &a [*a]\nnodes: []\n", [(1, "nested more than")]),
    "too_deep": ("nodes: " + "[" * 3000 + "]" * 3000 + "\n", [(None, "nested deeper")]),
    "not_a_mapping": ("[1, 2, 3]\n", [(1, "must be a mapping")]),
    "empty": ("\n", [(1, "empty")]),
}


# The installed console script, run by this interpreter (as `facegraph ...` in a shell).
FACEGRAPH = [sys.executable, "-c", "import sys; from facegraph.cli import main; sys.exit(main())"]


def validate(
    *paths: Path, cwd: Path, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "400", "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [*FACEGRAPH, "validate", *extra, *map(str, paths)],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


@pytest.fixture
def graph_dir(tmp_path: Path) -> Path:
    for name, (text, _) in BAD_GRAPHS.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    (tmp_path / "binary.yaml").write_bytes(b"\x00\x01\xff\xfe not text")
    # A module with a visible side effect, importable from the working directory.
    (tmp_path / "evil_plugin.py").write_text(
        "from pathlib import Path\nPath('IMPORTED').write_text('x')\nThing = None\n"
    )
    return tmp_path


def test_validate_reports_every_problem_with_its_line_and_never_a_traceback(
    graph_dir: Path,
) -> None:
    files = [graph_dir / f"{name}.yaml" for name in BAD_GRAPHS] + [graph_dir / "binary.yaml"]
    result = validate(*files, cwd=graph_dir)  # an alias bomb would run until OOM or timeout
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    out = result.stdout
    # Split the report per file ("FAIL path: n problems" then its problem lines).
    sections = re.split(r"^(?=FAIL |OK )", out, flags=re.M)
    by_file = {s.split(":", 1)[0].split(" ", 1)[1]: s for s in sections if s.strip()}
    assert len(by_file) == len(files), out
    for name, (_, expected) in BAD_GRAPHS.items():
        section = by_file[str(graph_dir / f"{name}.yaml")]
        assert section.startswith("FAIL "), section
        for line, fragment in expected:
            where = f"{name}.yaml:{line}:" if line is not None else f"{name}.yaml:"
            hits = [
                p for p in section.splitlines()[1:] if where in p and fragment.lower() in p.lower()
            ]
            assert hits, f"{name}: no problem with {where!r} and {fragment!r} in\n{section}"
    assert "cannot read graph file" in by_file[str(graph_dir / "binary.yaml")]
    # Nothing named by a graph file ran.
    assert not (graph_dir / "PWNED").exists()
    assert not (graph_dir / "IMPORTED").exists()


def test_imports_happen_only_when_explicitly_allowed(graph_dir: Path) -> None:
    path = graph_dir / "import_path.yaml"
    with pytest.raises(GraphConfigError, match="off by default"):
        load_graph(path)
    assert "evil_plugin" not in sys.modules
    result = validate(path, cwd=graph_dir, extra=("--allow-imports",))
    assert "Traceback" not in result.stderr
    assert (graph_dir / "IMPORTED").exists()  # allowed: the module was imported
    assert "evil_plugin" in result.stdout and result.returncode == 1  # Thing: no calculator


def test_a_2000_node_graph_validates_and_runs_in_reasonable_time(tmp_path: Path) -> None:
    lines = ["inputs: [s0]", "outputs: [s2000]", "nodes:"]
    for i in range(2000):
        lines += [
            "  - calculator: PassThrough",
            f"    inputs: {{IN: s{i}}}",
            f"    outputs: {{OUT: s{i + 1}}}",
        ]
    path = tmp_path / "huge.yaml"
    path.write_text("\n".join(lines) + "\n")
    t0 = time.monotonic()
    spec = load_graph(path)
    assert time.monotonic() - t0 < 15  # ~1 s here
    assert len(spec.nodes) == 2000
    with Graph(spec, mode="deterministic").start() as graph:
        assert graph.run_once({"s0": 7}) == {"s2000": 7}

    # Every fifth-hundredth node broken: all 4 problems reported with their lines.
    broken = path.read_text().replace("calculator: PassThrough", "calculator: Nope", 1)
    broken_lines = broken.splitlines()
    for k in (500, 1000, 1500):
        broken_lines[3 + 3 * k] = "  - calculator: Nope"
    (tmp_path / "broken.yaml").write_text("\n".join(broken_lines) + "\n")
    result = validate(tmp_path / "broken.yaml", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    found = re.findall(
        r"broken\.yaml:(\d+): node '[^']+': unknown calculator 'Nope'", result.stdout
    )
    assert [int(x) for x in found] == [4, 1504, 3004, 4504]


@pytest.mark.parametrize("hostile", ["../evil.tflite", "/etc/passwd", "..", "a\\b.tflite", ""])
def test_manifest_file_names_cannot_leave_the_cache(hostile: str) -> None:
    from facegraph.models.manifest import ModelSpec

    with pytest.raises(ValueError, match="bare name"):
        ModelSpec(
            name="x",
            file=hostile,
            member="m/x.tflite",
            size=1,
            sha256="0" * 64,
            description="",
        )


def test_devices_directories_and_huge_files_are_refused_without_reading_them(
    tmp_path: Path,
) -> None:
    zero = tmp_path / "zero.yaml"
    zero.symlink_to("/dev/zero")  # used to be read until memory ran out
    with pytest.raises(GraphConfigError, match="not a regular file"):
        load_graph(zero)
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    with pytest.raises(GraphConfigError, match="is a directory"):
        load_graph(folder)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (9 * 2**20))
    with pytest.raises(
        GraphConfigError, match=r"big\.yaml is 9\.0 MB; graph files are at most 8 MB"
    ):
        load_graph(big)
