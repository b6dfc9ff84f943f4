"""Graph files → GraphSpec: the YAML format, its errors (file:line), subgraphs and the schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from facegraph import GraphConfigError, NoOptions, load_graph, plugins
from facegraph.config import GraphFile, NodeConfig, shipped_graphs
from facegraph.schema import graph_schema, schema_text, shipped_schema_text
from facegraph.yaml_lines import load_yaml

from .graph_calculators import Loop, Merge, Scale, calcs
from .graph_helpers import file_problems, line_of, load, only, problems, yaml_text

__all__ = ["calcs"]  # the fixture, imported for pytest

pytestmark = pytest.mark.usefixtures("calcs")

FULL = """
name: demo
description: a bit of everything
inputs: [frames, "ROIS:rects"]
outputs: [scaled, "MERGED:merged"]
side_inputs:
  factor: {default: 3.0, doc: "how much"}
  path: {}
  flag:
executors: {inference: {threads: 1}}
max_queue_size: 7
nodes:
  - calculator: TgScale
    inputs: {IN: frames}
    outputs: {OUT: scaled}
    side_inputs: {FACTOR: factor}
    options: {factor: 4}
    executor: inference
  - calculator: TgMerge
    inputs:
      IN: [scaled, {stream: rects, keep_latest: 2}]
      "IN:2": prev
    outputs: {OUT: merged}
    input_policy: sync
  - calculator: TgLoop
    name: loop
    inputs: {MAIN: frames, LOOP: {stream: prev, back_edge: true}}
    outputs: {PREV_LOOP: prev}
  - calculator: TgScale
    inputs: {IN: frames}
    outputs: {OUT: other}
"""


# ------------------------------------------------------------------ the valid graph


def test_full_graph_resolves_every_field() -> None:
    spec = load(FULL, file="demo.yaml")
    assert spec.name == "demo"
    assert spec.file == "demo.yaml"
    assert spec.input_streams == ("frames", "rects")  # tags are for subgraph ports only
    assert spec.output_streams == ("scaled", "merged")
    assert spec.max_queue_size == 7
    assert spec.executors == {"default": 2, "inference": 1}
    assert [n.name for n in spec.nodes] == ["TgScale", "TgMerge", "loop", "TgScale_2"]

    scale = spec.node("TgScale")
    assert scale.calculator is Scale
    assert isinstance(scale.options, Scale.Options)
    assert scale.options.factor == 4.0 and scale.options.mode == "fast"
    assert scale.executor == "inference"
    assert scale.input_policy == "sync"
    assert scale.line == line_of(FULL, "- calculator: TgScale")
    assert scale.side_inputs[0].name == "factor"

    merge = spec.node("TgMerge")
    assert merge.calculator is Merge
    assert merge.input_policy == "sync"  # the YAML overrides the class default (immediate)
    assert merge.executor == "default"
    assert [(b.tag, b.index, b.stream, b.keep_latest) for b in merge.inputs] == [
        ("IN", 0, "scaled", None),
        ("IN", 1, "rects", 2),
        ("IN", 2, "prev", None),
    ]
    assert merge.inputs[2].line == line_of(FULL, '"IN:2": prev')
    assert isinstance(merge.options, NoOptions)

    loop = spec.node("loop")
    assert loop.calculator is Loop
    assert [(b.tag, b.back_edge) for b in loop.inputs] == [("MAIN", False), ("LOOP", True)]
    assert loop.inputs[1].line == line_of(FULL, "LOOP: {stream: prev")
    assert loop.file == "demo.yaml"

    factor = spec.side_inputs["factor"]
    assert (factor.required, factor.default, factor.doc) == (False, 3.0, "how much")
    assert spec.side_inputs["path"].required and spec.side_inputs["flag"].required


def test_input_policy_defaults_to_the_calculator_class() -> None:
    spec = load(
        """
        inputs: [a]
        nodes:
          - {calculator: TgMerge, inputs: {IN: a}, outputs: {OUT: b}}
          - {calculator: TgMerge, inputs: {IN: b}, outputs: {OUT: c}, input_policy: sync}
        """
    )
    assert [n.input_policy for n in spec.nodes] == ["immediate", "sync"]


def test_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "my_graph.yaml"
    path.write_text(yaml_text("inputs: [a]\nnodes:\n  - {calculator: TgText, inputs: {IN: a}}\n"))
    spec = load_graph(path)
    assert spec.name == "my_graph"
    assert spec.nodes[0].file == str(path)


def test_default_names_never_collide_with_explicit_ones() -> None:
    spec = load(
        """
        inputs: [a]
        nodes:
          - {calculator: TgText, inputs: {IN: a}}
          - {calculator: TgText, name: TgText_2, inputs: {IN: a}}
          - {calculator: TgText, inputs: {IN: a}}
        """
    )
    assert [n.name for n in spec.nodes] == ["TgText", "TgText_2", "TgText_3"]


def test_shipped_graph_is_loaded_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "fake_shipped_graphs"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tiny.yaml").write_text(
        "inputs: [a]\nnodes:\n  - {calculator: TgText, inputs: {IN: a}}\n"
    )
    # A real distribution on sys.path declaring its graph package as an entry point,
    # exactly as a third-party package would in its pyproject.toml.
    dist = tmp_path / "fake_shipped_graphs-1.0.dist-info"
    dist.mkdir()
    meta = "Metadata-Version: 2.1\nName: fake-shipped-graphs\nVersion: 1.0\n"
    (dist / "METADATA").write_text(meta)
    (dist / "entry_points.txt").write_text("[facegraph.graphs]\nfake = fake_shipped_graphs\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.entry_points.cache_clear()
    try:
        spec = load_graph("tiny")
        assert spec.name == "tiny" and spec.nodes[0].calculator_name == "TgText"
        with pytest.raises(GraphConfigError, match=r"did you mean 'tiny'.*shipped graphs:.*tiny"):
            load_graph("tinny")
        assert "face_mesh" in shipped_graphs()  # the built-in package is still found
    finally:
        sys.modules.pop("fake_shipped_graphs", None)
        monkeypatch.undo()
        plugins.entry_points.cache_clear()


def test_missing_file_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    found = file_problems(tmp_path / "nope.yaml")
    assert "graph file not found" in found[0].message


# ------------------------------------------------------------- YAML-level problems


def test_invalid_yaml_reports_the_line() -> None:
    text = "inputs: [a\nnodes: []\n"
    (p,) = problems(text, file="bad.yaml")
    assert p.file == "bad.yaml" and p.line == 2 and "invalid YAML" in p.message


def test_python_tags_are_never_executed() -> None:
    text = "name: !!python/object/apply:os.system ['echo hacked']\n"
    (p,) = problems(text)
    assert "unsupported YAML tag" in p.message and p.line == 1
    (p,) = problems("name: !!python/name:os.system\n")
    assert "could not determine a constructor" in p.message and p.line == 1


def test_duplicate_keys_are_reported_with_both_lines() -> None:
    text = """
    inputs: [a]
    nodes:
      - calculator: TgText
        inputs: {IN: a}
        calculator: TgScale
    """
    p = only(problems(text), "duplicate key 'calculator'")
    assert p.line == line_of(text, "calculator: TgScale")
    assert f"first given on line {line_of(text, 'calculator: TgText')}" in p.message


def test_line_map_records_keys_and_items() -> None:
    loaded, found = load_yaml("a:\n  - x: 1\n    y: [2, 3]\n  - 4\n", "f.yaml")
    assert loaded is not None and not found
    assert loaded.lines[("a", 0, "y")] == 3
    assert loaded.lines[("a", 1)] == 4
    assert loaded.line(("a", 0, "y", 5, "deeper")) == 3  # nearest known ancestor


def test_merge_keys_are_not_duplicates() -> None:
    loaded, found = load_yaml("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n")
    assert loaded is not None and not found
    assert loaded.data["other"] == {"x": 1, "y": 3}


def test_top_level_must_be_a_mapping() -> None:
    (p,) = problems("- just\n- a list\n")
    assert "must be a mapping" in p.message


def test_empty_file_is_a_problem() -> None:
    (p,) = problems("")
    assert "empty" in p.message


# ----------------------------------------------------------- model-level problems


def test_unknown_keys_are_errors_at_their_line() -> None:
    text = """
    inputs: [a]
    outptus: [b]
    nodes:
      - calculator: TgText
        inputs: {IN: a}
        optons: {x: 1}
    """
    found = problems(text, file="g.yaml")
    assert only(found, "unknown key 'outptus'").line == line_of(text, "outptus")
    typo = only(found, "unknown key 'optons'")
    assert typo.line == line_of(text, "optons") and typo.node == "TgText"


def test_bad_names_and_tags() -> None:
    text = """
    inputs: [a-b]
    nodes:
      - calculator: TgText
        name: 9lives
        inputs: {in: a}
      - calculator: TgText
        inputs: {IN: "x y"}
    """
    found = problems(text)
    assert only(found, "'a-b'").line == line_of(text, "inputs: [a-b]")
    name = only(found, "'9lives'")
    assert "do not start with a digit" in name.message and name.line == line_of(text, "9lives")
    tag = only(found, "bad key 'in'")
    assert "UPPER_CASE" in tag.message and tag.line == line_of(text, "{in: a}")
    assert only(found, "'x y'").line == line_of(text, '"x y"')


def test_field_values_are_checked() -> None:
    text = """
    inputs: [a]
    max_queue_size: 0
    executors: {pool: {threads: 0}}
    nodes:
      - calculator: TgMerge
        inputs: {IN: {stream: a, keep_latest: 0}}
        input_policy: eager
    """
    found = problems(text)
    assert only(found, "max_queue_size").line == line_of(text, "max_queue_size")
    assert only(found, "threads").line == line_of(text, "threads: 0")
    assert only(found, "IN.keep_latest").line == line_of(text, "keep_latest: 0")
    policy = only(found, "input_policy")
    assert "'sync', 'immediate' or 'keep_latest'" in policy.message
    assert policy.node == "TgMerge"


def test_all_problems_are_reported_at_once() -> None:
    text = """
    inputs: [a]
    nodes:
      - calculator: TgScal
        inputs: {IN: a}
      - calculator: TgScale
        inputs: {IM: a}
        outputs: {OUT: b}
      - calculator: TgScale
        inputs: {IN: a}
        outputs: {OUT: c}
        options: {factr: 1}
      - calculator: TgText
        inputs: {IN: nowhere}
    """
    found = problems(text, file="many.yaml")
    assert len(found) == 5, found
    assert [p.line for p in found] == sorted(p.line or 0 for p in found)
    assert all(p.file == "many.yaml" for p in found)
    assert "did you mean 'TgScale'" in only(found, "unknown calculator").message
    assert "did you mean 'IN'" in only(found, "unknown input tag 'IM'").message
    assert only(found, "missing required input IN").node == "TgScale"
    assert only(found, "unknown option 'factr'").line == line_of(text, "factr")
    assert only(found, "'nowhere'").node == "TgText"


# -------------------------------------------------------------- contract problems


def test_index_on_a_plain_port_and_gaps_in_indexed_ports() -> None:
    text = """
    inputs: [a]
    nodes:
      - calculator: TgText
        inputs: {IN: [a, a]}
      - calculator: TgMerge
        inputs: {"IN:0": a, "IN:2": a}
        outputs: {OUT: b}
      - calculator: TgMerge
        inputs: {IN: [a], "IN:0": a}
        outputs: {OUT: c}
    """
    found = problems(text)
    assert "not an indexed port" in only(found, "IN of TgText").message
    assert only(found, "has a gap").message.endswith("IN:1 not connected (indexes must be 0..n-1)")
    assert only(found, "connected twice").node == "TgMerge_2"


def test_missing_required_side_input_and_output() -> None:
    text = """
    side_inputs: {p: {}}
    nodes:
      - calculator: TgLoadModel
      - calculator: TgSource
    """
    found = problems(text)
    assert only(found, "missing required side input PATH (str)").node == "TgLoadModel"
    assert only(found, "missing required side output MODEL").node == "TgLoadModel"
    assert only(found, "missing required output OUT (int)").node == "TgSource"


def test_option_errors_point_at_the_option() -> None:
    text = """
    inputs: [a]
    nodes:
      - calculator: TgScale
        inputs: {IN: a}
        outputs: {OUT: b}
        options:
          factor: lots
          mode: slow
      - calculator: TgSized
        inputs: {IN: a}
        outputs: {OUT: c}
      - calculator: TgSized
        inputs: {IN: a}
        outputs: {OUT: d}
        options: {size: 0}
      - calculator: TgText
        inputs: {IN: a}
        options: {anything: 1}
    """
    found = problems(text)
    factor = only(found, "option 'factor'")
    assert factor.line == line_of(text, "factor: lots") and "'lots'" in factor.message
    mode = only(found, "option 'mode'")
    assert mode.line == line_of(text, "mode: slow") and "'fast' or 'exact'" in mode.message
    assert only(found, "missing required option 'size'").node == "TgSized"
    assert only(found, "greater than or equal to 1").node == "TgSized_2"
    assert only(found, "unknown option 'anything'").node == "TgText"  # NoOptions forbids all


def test_options_of_the_wrong_shape_are_reported_once() -> None:
    text = """
    inputs: [a]
    nodes:
      - {calculator: TgSized, inputs: {IN: a}, outputs: {OUT: b}, options: 5}
    """
    (p,) = problems(text)
    assert "'options'" in p.message and "dictionary" in p.message


def test_import_paths_need_allow_imports() -> None:
    text = """
    inputs: [a]
    nodes:
      - calculator: tests.graph_calculators:Scale
        inputs: {IN: a}
        outputs: {OUT: b}
    """
    p = only(problems(text), "import path")
    assert "--allow-imports" in p.message and p.line == line_of(text, "calculator:")
    spec = load(text, allow_imports=True)
    assert spec.nodes[0].calculator is Scale
    assert spec.nodes[0].name == "Scale"


def test_a_broken_node_does_not_cascade() -> None:
    # The first node's port table is malformed: its outputs still count as produced.
    text = """
    inputs: [a]
    nodes:
      - calculator: TgScale
        inputs: {IN: [a, {strem: a}]}
        outputs: {OUT: b}
      - calculator: TgNope
        inputs: {IN: a}
        outputs: {OUT: c}
      - calculator: TgMerge
        inputs: {IN: [b, c]}
        outputs: {OUT: d}
    """
    found = problems(text)
    assert len(found) == 3, found  # 'strem' unknown, 'stream' missing, TgNope unknown
    assert {p.node for p in found} == {"TgScale", "TgNope"}


# ------------------------------------------------------------------------ subgraphs


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(yaml_text(text))
    return path


INNER = """
inputs: ["IN:x"]
outputs: ["OUT:y", "EXTRA:z"]
side_inputs:
  factor: {default: 5.0}
  required_one: {}
executors: {inner_pool: {threads: 3}}
nodes:
  - calculator: TgScale
    name: scale
    inputs: {IN: x}
    outputs: {OUT: y}
    side_inputs: {FACTOR: factor}
  - calculator: TgMerge
    name: merge
    inputs: {IN: [x, y]}
    outputs: {OUT: z}
    executor: inner_pool
  - calculator: TgUseModel
    name: use
    inputs: {IN: x}
    outputs: {OUT: w}
    side_inputs: {MODEL: required_one}
"""


def test_subgraph_is_inlined_with_prefixed_names(tmp_path: Path) -> None:
    _write(tmp_path, "inner.yaml", INNER)
    outer = _write(
        tmp_path,
        "outer.yaml",
        """
        inputs: [frames]
        outputs: [result]
        side_inputs: {model: {}}
        executors: {inner_pool: {threads: 1}}
        nodes:
          - calculator: inner
            name: face
            inputs: {IN: frames}
            outputs: {OUT: result}
            side_inputs: {REQUIRED_ONE: model}
            executor: inference_pool
        """.replace("inference_pool", "default"),
    )
    spec = load_graph(outer)
    assert [n.name for n in spec.nodes] == ["face/scale", "face/merge", "face/use"]
    scale, merge, use = spec.nodes
    # Port streams take the outer names; the rest get the node's prefix.
    assert [b.stream for b in scale.inputs] == ["frames"]
    assert [b.stream for b in scale.outputs] == ["result"]
    assert [b.stream for b in merge.inputs] == ["frames", "result"]
    assert [b.stream for b in merge.outputs] == ["face/z"]
    assert [b.stream for b in use.outputs] == ["face/w"]
    assert use.side_inputs[0].name == "model"
    # The unconnected optional side input becomes a graph side packet with the default.
    assert scale.side_inputs[0].name == "face/factor"
    prefixed = spec.side_inputs["face/factor"]
    assert (prefixed.required, prefixed.default) == (False, 5.0)
    # Inner nodes keep their own file and line.
    assert scale.file == str(tmp_path / "inner.yaml")
    assert scale.line == line_of(INNER, "- calculator: TgScale")
    # Executors: the outer declaration wins; the node's executor is the inner default.
    assert spec.executors["inner_pool"] == 1
    assert (scale.executor, merge.executor) == ("default", "inner_pool")


def test_subgraph_port_problems(tmp_path: Path) -> None:
    _write(tmp_path, "inner.yaml", INNER)
    text = """
    inputs: [frames]
    nodes:
      - calculator: inner
        inputs: {INN: frames}
        outputs: {"OUT:1": r}
        options: {a: 1}
    """
    found = file_problems(_write(tmp_path, "outer.yaml", text))
    assert len(found) == 5, found  # the inner consumers of the missing ports stay quiet
    assert "did you mean 'IN'" in only(found, "unknown input tag 'INN'").message
    assert only(found, "missing required input IN of subgraph inner").node == "inner"
    assert only(found, "missing required side input REQUIRED_ONE").node == "inner"
    assert only(found, "not indexed").line == line_of(text, '"OUT:1"')
    assert only(found, "subgraphs take no options").line == line_of(text, "options")


def test_problems_inside_a_subgraph_name_its_file_and_the_outer_node(tmp_path: Path) -> None:
    inner_text = """
    inputs: [x]
    outputs: [y]
    nodes:
      - calculator: TgScale
        name: scale
        inputs: {IN: x}
        outputs: {OUT: y}
        options: {factor: many}
      - calculator: TgText
        name: text
        inputs: {IN: y}
    """
    inner = _write(tmp_path, "inner.yaml", inner_text)
    outer = _write(
        tmp_path,
        "outer.yaml",
        "inputs: [a]\nnodes:\n  - {calculator: inner, name: face, inputs: {X: a}}\n",
    )
    found = file_problems(outer)
    option = only(found, "option 'factor'")
    assert (option.file, option.line, option.node) == (
        str(inner),
        line_of(inner_text, "factor: many"),
        "face/scale",
    )
    mismatch = only(found, "type mismatch")
    assert mismatch.node == "face/text" and mismatch.file == str(inner)
    assert "node 'face/scale' output OUT produces float" in mismatch.message


def test_back_edge_on_a_subgraph_input_marks_the_inner_consumers(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "step.yaml",
        """
        inputs: [main, loop]
        outputs: [out]
        nodes:
          - {calculator: TgLoop, inputs: {MAIN: main, LOOP: loop}, outputs: {PREV_LOOP: out}}
        """,
    )
    outer = _write(
        tmp_path,
        "outer.yaml",
        """
        inputs: [a]
        outputs: [b]
        nodes:
          - calculator: step
            inputs: {MAIN: a, LOOP: {stream: b, back_edge: true, keep_latest: 1}}
            outputs: {OUT: b}
        """,
    )
    spec = load_graph(outer)
    loop = spec.nodes[0].inputs[1]
    assert (loop.stream, loop.back_edge, loop.keep_latest) == ("b", True, 1)


def test_nested_subgraphs_and_shipped_lookup_order(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "leaf.yaml",
        "inputs: [x]\noutputs: [y]\nnodes:\n"
        "  - {calculator: TgMerge, name: m, inputs: {IN: x}, outputs: {OUT: y}}\n",
    )
    _write(
        tmp_path,
        "middle.yaml",
        "inputs: [x]\noutputs: [y]\nnodes:\n"
        "  - {calculator: leaf, name: l, inputs: {X: x}, outputs: {Y: t}}\n"
        "  - {calculator: leaf, inputs: {X: t}, outputs: {Y: y}}\n",
    )
    outer = _write(
        tmp_path,
        "outer.yaml",
        "inputs: [a]\noutputs: [b]\nnodes:\n"
        "  - {calculator: middle, name: mid, inputs: {X: a}, outputs: {Y: b}}\n",
    )
    spec = load_graph(outer)
    assert [n.name for n in spec.nodes] == ["mid/l/m", "mid/leaf/m"]
    assert [b.stream for b in spec.nodes[0].outputs] == ["mid/t"]
    assert [b.stream for b in spec.nodes[1].inputs] == ["mid/t"]
    assert [b.stream for b in spec.nodes[1].outputs] == ["b"]


def test_a_subgraph_including_itself_names_the_chain(tmp_path: Path) -> None:
    _write(tmp_path, "ping.yaml", "inputs: [x]\nnodes:\n  - {calculator: pong, inputs: {X: x}}\n")
    _write(tmp_path, "pong.yaml", "inputs: [x]\nnodes:\n  - {calculator: ping, inputs: {X: x}}\n")
    found = file_problems(tmp_path / "ping.yaml")
    p = only(found, "includes itself")
    assert "ping.yaml -> pong.yaml -> ping.yaml" in p.message
    assert p.file == str(tmp_path / "pong.yaml") and p.node == "pong/ping"


def test_subgraph_outputs_must_be_produced_inside(tmp_path: Path) -> None:
    inner_text = (
        "inputs: [x]\noutputs: [y, zz]\nnodes:\n"
        "  - {calculator: TgMerge, inputs: {IN: x}, outputs: {OUT: y}}\n"
    )
    inner = _write(tmp_path, "inner.yaml", inner_text)
    outer = _write(
        tmp_path,
        "outer.yaml",
        "inputs: [a]\nnodes:\n"
        "  - {calculator: inner, inputs: {X: a}, outputs: {ZZ: q}}\n"
        "  - {calculator: TgText, inputs: {IN: q}}\n",
    )
    found = file_problems(outer)
    assert len(found) == 1, found  # the consumer of 'q' is not blamed as well
    assert (found[0].file, found[0].line) == (str(inner), 2)
    assert "subgraph output 'zz'" in found[0].message


def test_unknown_calculator_suggests_subgraph_names(tmp_path: Path) -> None:
    _write(tmp_path, "detector.yaml", INNER)
    outer = _write(tmp_path, "outer.yaml", "nodes:\n  - {calculator: detectr}\n")
    p = only(file_problems(outer), "unknown calculator")
    assert "did you mean 'detector'" in p.message


# --------------------------------------------------------------------------- schema


def test_shipped_schema_is_up_to_date() -> None:
    # If this fails after changing facegraph/config.py: run `facegraph schema --write`.
    assert shipped_schema_text() == schema_text()


def test_schema_describes_the_validating_models() -> None:
    schema = graph_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(GraphFile.model_fields)
    node = schema["$defs"]["NodeConfig"]
    assert set(node["properties"]) == set(NodeConfig.model_fields)
    assert node["additionalProperties"] is False
    assert node["required"] == ["calculator"]
    # Port maps accept only tag keys.
    assert node["properties"]["inputs"]["additionalProperties"] is False
    assert json.loads(schema_text()) == schema


def test_an_unknown_executor_on_a_subgraph_node_is_reported_once_at_that_node(
    tmp_path: Path,
) -> None:
    _write(
        tmp_path,
        "pair.yaml",
        "inputs: [x]\nnodes:\n"
        "  - {calculator: TgText, name: one, inputs: {IN: x}}\n"
        "  - {calculator: TgText, name: two, inputs: {IN: x}}\n",
    )
    text = "inputs: [a]\nnodes:\n  - calculator: pair\n    inputs: {X: a}\n    executor: gpu\n"
    outer = _write(tmp_path, "outer.yaml", text)
    (p,) = file_problems(outer)
    assert (p.file, p.line) == (str(outer), 5)
    assert p.message.startswith("unknown executor 'gpu'")


def test_graph_from_yaml_finds_subgraphs_in_base_dir(tmp_path: Path) -> None:
    _write(
        tmp_path, "inner.yaml", "inputs: [x]\nnodes:\n  - {calculator: TgText, inputs: {IN: x}}\n"
    )
    text = "inputs: [a, a]\nnodes:\n  - {calculator: inner, name: n, inputs: {X: a}}\n"
    (p,) = problems(text, base_dir=tmp_path)  # found the subgraph; only the duplicate is wrong
    assert p.message == "graph input 'a' is listed twice" and p.line == 1
    spec = load(text.replace("[a, a]", "[a]"), base_dir=tmp_path)
    assert [n.name for n in spec.nodes] == ["n/TgText"]
