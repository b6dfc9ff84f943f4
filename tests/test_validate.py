"""Whole-graph checks: producers and consumers, types, side packets, cycles and back edges."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .graph_calculators import calcs
from .graph_helpers import line_of, load, only, problems

__all__ = ["calcs"]

pytestmark = pytest.mark.usefixtures("calcs")


# ------------------------------------------------------------------------- streams


def test_a_stream_with_two_producers_names_both() -> None:
    text = """
    inputs: [a]
    nodes:
      - {calculator: TgMerge, name: first, inputs: {IN: a}, outputs: {OUT: b}}
      - {calculator: TgMerge, name: second, inputs: {IN: a}, outputs: {OUT: b}}
      - {calculator: TgMerge, name: third, inputs: {IN: b}, outputs: {OUT: a}}
    """
    found = problems(text)
    b = only(found, "stream 'b' has two producers")
    assert "node 'second' output OUT" in b.message and "node 'first' output OUT" in b.message
    assert (b.node, b.line) == ("second", line_of(text, "name: second"))
    a = only(found, "stream 'a' has two producers")
    assert "graph input" in a.message and a.node == "third"


def test_a_consumed_stream_must_be_produced() -> None:
    text = """
    inputs: [frames]
    nodes:
      - calculator: TgMerge
        inputs: {IN: [frames, frame]}
        outputs: {OUT: b}
    """
    p = only(problems(text), "'frame'")
    assert "(input IN:1) is never produced" in p.message
    assert "did you mean 'frames'" in p.message
    assert (p.node, p.line) == ("TgMerge", line_of(text, "IN: [frames, frame]"))


def test_graph_outputs_must_be_produced() -> None:
    text = """
    inputs: [a]
    outputs: [a, result]
    nodes:
      - {calculator: TgMerge, inputs: {IN: a}, outputs: {OUT: results}}
    """
    (p,) = problems(text)
    assert p.message == (
        "graph output 'result' is not produced by any node (did you mean 'results'?)"
    )
    assert p.line == line_of(text, "outputs: [a, result]")


def test_connected_ports_must_have_compatible_types() -> None:
    text = """
    inputs: [a]
    nodes:
      - {calculator: TgMakeDog, inputs: {IN: a}, outputs: {OUT: dogs}}
      - {calculator: TgFeed, name: feed_dogs, inputs: {IN: dogs}}
      - {calculator: TgScale, inputs: {IN: a}, outputs: {OUT: floats}}
      - {calculator: TgFeed, name: feed_floats, inputs: {IN: floats}}
      - {calculator: TgText, inputs: {IN: a}}
    """
    (p,) = problems(text)  # Dog -> Animal is fine; Any (graph input) -> str is fine
    assert p.message == (
        "type mismatch on stream 'floats': node 'TgScale' output OUT produces float, "
        "but node 'feed_floats' input IN expects Animal"
    )
    assert (p.node, p.line) == ("feed_floats", line_of(text, "name: feed_floats"))


def test_element_types_of_generic_ports_are_checked() -> None:
    """Ports carry parametrised types: detections (list[Detection]) fed where ROIs
    (list[NormalizedRect]) are expected is a load-time problem naming both nodes and the
    stream; a list[Any] port (VectorSize) takes any list."""
    text = """
    inputs: [image]
    nodes:
      - {calculator: FaceDetector, name: detect, inputs: {IMAGE: image},
         outputs: {DETECTIONS: detections}}
      - {calculator: AssociateRois, name: merge, inputs: {NORM_RECTS: [detections]},
         outputs: {NORM_RECTS: rois}}
      - {calculator: VectorSize, name: count, inputs: {IN: detections}, outputs: {OUT: n}}
    """
    (p,) = problems(text)
    assert p.message == (
        "type mismatch on stream 'detections': node 'detect' output DETECTIONS produces "
        "list[Detection], but node 'merge' input NORM_RECTS expects list[NormalizedRect]"
    )
    assert (p.node, p.line) == ("merge", line_of(text, "NORM_RECTS: [detections]"))


# --------------------------------------------------------------------- side packets


def test_side_packets_flow_from_graph_inputs_and_side_outputs() -> None:
    spec = load(
        """
        inputs: [a]
        side_inputs: {model_path: {}}
        nodes:
          - {calculator: TgLoadModel, side_inputs: {PATH: model_path}, side_outputs: {MODEL: m}}
          - {calculator: TgUseModel, inputs: {IN: a}, outputs: {OUT: b}, side_inputs: {MODEL: m}}
        """
    )
    assert spec.node("TgUseModel").side_inputs[0].name == "m"


def test_side_packet_problems() -> None:
    text = """
    inputs: [a]
    side_inputs: {path: {}, other: {}}
    nodes:
      - {calculator: TgLoadModel, side_inputs: {PATH: path}, side_outputs: {MODEL: m}}
      - calculator: TgLoadModel
        name: second
        side_inputs: {PATH: path}
        side_outputs: {MODEL: other}
      - {calculator: TgUseModel, inputs: {IN: a}, outputs: {OUT: b}, side_inputs: {MODEL: mdl}}
      - calculator: TgScale
        inputs: {IN: a}
        outputs: {OUT: c}
        side_inputs: {FACTOR: m}
    """
    found = problems(text)
    assert len(found) == 3, found
    two = only(found, "side packet 'other' has two producers")
    assert "graph input side packet" in two.message and "node 'second'" in two.message
    missing = only(found, "side packet 'mdl' (side input MODEL) is never produced")
    assert "side_inputs:" in missing.message and missing.node == "TgUseModel"
    mismatch = only(found, "type mismatch on side packet 'm'")
    assert "produces bytes" in mismatch.message and "expects float" in mismatch.message


# --------------------------------------------------------------- names, executors


def test_duplicate_node_names() -> None:
    text = """
    inputs: [a]
    nodes:
      - {calculator: TgText, name: sink, inputs: {IN: a}}
      - {calculator: TgText, name: sink, inputs: {IN: a}}
    """
    (p,) = problems(text, file="g.yaml")
    assert p.message == "duplicate node name 'sink' (also used at g.yaml:3)"
    assert p.line == 4


def test_executors_must_be_declared() -> None:
    text = """
    inputs: [a]
    executors: {inference: {threads: 1}}
    nodes:
      - {calculator: TgText, inputs: {IN: a}, executor: default}
      - {calculator: TgText, inputs: {IN: a}, executor: inference}
      - calculator: TgText
        inputs: {IN: a}
        executor: inferense
    """
    (p,) = problems(text)
    assert "unknown executor 'inferense' (did you mean 'inference'?)" in p.message
    assert p.line == line_of(text, "executor: inferense")


# -------------------------------------------------------------- cycles, back edges

CYCLE = """
inputs: [frames]
nodes:
  - {calculator: TgLoop, name: a, inputs: {MAIN: frames, LOOP: c_out}, outputs: {PREV_LOOP: a_out}}
  - {calculator: TgLoop, name: b, inputs: {MAIN: a_out, LOOP: frames}, outputs: {PREV_LOOP: b_out}}
  - {calculator: TgLoop, name: c, inputs: {MAIN: b_out, LOOP: frames}, outputs: {PREV_LOOP: c_out}}
"""


def test_a_cycle_without_back_edge_is_named_with_the_edge_to_mark() -> None:
    (p,) = problems(CYCLE)
    assert p.message.startswith("cycle without a back edge: a -> b -> c -> a;")
    assert "node 'a' input LOOP (stream 'c_out')" in p.message
    assert "{stream: c_out, back_edge: true}" in p.message
    assert (p.node, p.line) == ("a", line_of(CYCLE, "name: a"))


def test_marking_the_suggested_edge_fixes_the_cycle() -> None:
    fixed = CYCLE.replace(
        "{MAIN: frames, LOOP: c_out}", "{MAIN: frames, LOOP: {stream: c_out, back_edge: true}}"
    )
    spec = load(fixed)
    assert spec.node("a").inputs[1].back_edge


def test_the_suggestion_follows_file_order() -> None:
    # Same cycle, nodes listed c, a, b: the edge into c (from b) is suggested.
    lines = CYCLE.strip().splitlines()
    text = "\n".join([*lines[:2], lines[4], lines[2], lines[3]]) + "\n"
    (p,) = problems(text)
    assert "c -> a -> b -> c" in p.message and "node 'c' input MAIN (stream 'b_out')" in p.message


def test_a_self_loop_is_a_cycle() -> None:
    text = """
    inputs: [a]
    nodes:
      - {calculator: TgMerge, name: m, inputs: {IN: [a, m_out]}, outputs: {OUT: m_out}}
    """
    (p,) = problems(text)
    assert "cycle without a back edge: m -> m" in p.message and "input IN:1" in p.message


def test_each_independent_cycle_is_reported() -> None:
    text = """
    inputs: [a]
    nodes:
      - {calculator: TgMerge, name: x, inputs: {IN: [a, y_out]}, outputs: {OUT: x_out}}
      - {calculator: TgMerge, name: y, inputs: {IN: [x_out]}, outputs: {OUT: y_out}}
      - {calculator: TgMerge, name: p, inputs: {IN: [a, q_out]}, outputs: {OUT: p_out}}
      - {calculator: TgMerge, name: q, inputs: {IN: [p_out]}, outputs: {OUT: q_out}}
    """
    found = problems(text)
    assert sorted(p.node or "" for p in found) == ["p", "x"]


def test_a_back_edge_must_close_a_cycle() -> None:
    text = """
    inputs: [a]
    nodes:
      - {calculator: TgMerge, name: up, inputs: {IN: a}, outputs: {OUT: b}}
      - calculator: TgMerge
        name: down
        inputs: {IN: [{stream: b, back_edge: true}, {stream: a, back_edge: true}]}
        outputs: {OUT: c}
    """
    found = problems(text)
    assert len(found) == 2
    produced = only(found, "stream 'b'")
    assert "not part of any cycle (the stream is produced by node 'up')" in produced.message
    assert produced.node == "down"
    assert "the stream is a graph input" in only(found, "stream 'a'").message


# ------------------------------------------------------ property: cycle detection


def _reaches(edges: set[tuple[int, int]], start: int, goal: int) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo += [d for s, d in edges if s == node]
    return False


def _has_cycle(edges: set[tuple[int, int]]) -> bool:
    return any(_reaches(edges, d, s) for s, d in edges)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=6).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(
                st.tuples(
                    st.integers(0, n - 1), st.integers(0, n - 1), st.booleans()
                ),  # producer, consumer, back_edge
                max_size=10,
                unique_by=lambda e: (e[0], e[1]),
            ),
        )
    )
)
def test_cycles_are_errors_exactly_when_no_back_edge_breaks_them(
    graph: tuple[int, list[tuple[int, int, bool]]],
) -> None:
    n, links = graph
    inputs: dict[int, list[str]] = {i: ["src"] for i in range(n)}
    for producer, consumer, back in links:
        ref = f"n{producer}_out"
        inputs[consumer].append(f"{{stream: {ref}, back_edge: true}}" if back else ref)
    text = "inputs: [src]\nnodes:\n" + "".join(
        f"  - {{calculator: TgMerge, name: n{i}, inputs: {{IN: [{', '.join(inputs[i])}]}}, "
        f"outputs: {{OUT: n{i}_out}}}}\n"
        for i in range(n)
    )
    forward = {(p, c) for p, c, back in links if not back}
    every = {(p, c) for p, c, _ in links}
    expect_cycle = _has_cycle(forward)
    bad_back_edges = sum(1 for p, c, back in links if back and not _reaches(every, c, p))

    from facegraph import GraphConfigError, graph_from_yaml

    try:
        graph_from_yaml(text)
        found = []
    except GraphConfigError as exc:
        found = exc.problems
    cycle_problems = [p for p in found if p.message.startswith("cycle without a back edge")]
    back_problems = [p for p in found if "not part of any cycle" in p.message]
    assert bool(cycle_problems) == expect_cycle, (text, found)
    assert len(back_problems) == bad_back_edges, (text, found)
    assert len(found) == len(cycle_problems) + len(back_problems), found
