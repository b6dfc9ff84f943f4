"""Splitting .tflite graphs at custom ops: tiny hand-built models and the real Attention Mesh."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from facegraph.models.custom_ops import CustomOp, CustomOpError, register_custom_op
from facegraph.models.inference import TfLiteModel
from facegraph.models.tflite_graph import CustomStep, Segment, TfLiteGraph, TfLiteModelError

# ------------------------------------------------------------------ tiny model builder

ADD, CUSTOM, DEQUANTIZE, LESS, MUL, WHILE = 0, 32, 6, 58, 18, 119
F32, F16, I32, BOOL = 0, 1, 2, 6

Tensors = Sequence[tuple[str, Sequence[int], int, np.ndarray | None]]
Ops = Sequence[tuple[int | str, Sequence[int], Sequence[int], dict[str, Any] | None]]


def build_model(
    tensors: Tensors,
    ops: Ops,
    inputs: list[int],
    outputs: list[int],
    subgraphs: Sequence[tuple[Tensors, Ops, list[int], list[int]]] = (),
) -> bytes:
    """Serialise a model with the schema's object API: the main subgraph, then ``subgraphs``
    (bodies of control-flow ops, indices 1, 2, ...), sharing one operator code table.

    ``tensors``: (name, shape, TensorType, constant data or None); ``ops``: (builtin code
    or custom code string, inputs, outputs, options): flexbuffer options for custom ops,
    ``{"cond": i, "body": j}`` for WHILE.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s
    from flatbuffers import flexbuffers

    model = s.ModelT()
    model.version = 3
    model.buffers = [s.BufferT()]
    codes: list[Any] = []
    keys: list[int | str] = []
    builtin_options = {
        ADD: (s.BuiltinOptions.AddOptions, s.AddOptionsT),
        MUL: (s.BuiltinOptions.MulOptions, s.MulOptionsT),
        LESS: (s.BuiltinOptions.LessOptions, s.LessOptionsT),
    }

    def subgraph(tensors: Tensors, ops: Ops, inputs: list[int], outputs: list[int]) -> Any:
        sub = s.SubGraphT()
        sub.tensors = []
        for name, shape, ttype, data in tensors:
            t = s.TensorT()
            t.name, t.shape, t.type = name.encode(), list(shape), ttype
            t.buffer = 0
            if data is not None:
                b = s.BufferT()
                b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
                model.buffers.append(b)
                t.buffer = len(model.buffers) - 1
            sub.tensors.append(t)
        sub.operators = []
        for code, op_in, op_out, options in ops:
            if code not in keys:
                oc = s.OperatorCodeT()
                if isinstance(code, str):
                    oc.builtinCode = oc.deprecatedBuiltinCode = CUSTOM
                    oc.customCode, oc.version = code.encode(), 1
                else:
                    oc.builtinCode = oc.deprecatedBuiltinCode = code
                    oc.version = 1
                codes.append(oc)
                keys.append(code)
            op = s.OperatorT()
            op.opcodeIndex = keys.index(code)
            op.inputs, op.outputs = list(op_in), list(op_out)
            if isinstance(code, int) and code in builtin_options:
                kind, make = builtin_options[code]
                op.builtinOptionsType, op.builtinOptions = kind, make()
            elif code == WHILE:
                assert options is not None
                opts = s.WhileOptionsT()
                opts.condSubgraphIndex, opts.bodySubgraphIndex = options["cond"], options["body"]
                op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.WhileOptions, opts
            elif options is not None:
                op.customOptions = np.frombuffer(flexbuffers.Dumps(options), dtype=np.uint8)
            sub.operators.append(op)
        sub.inputs, sub.outputs = inputs, outputs
        return sub

    model.subgraphs = [subgraph(tensors, ops, inputs, outputs)]
    model.subgraphs += [subgraph(*sg) for sg in subgraphs]
    model.operatorCodes = codes
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@register_custom_op("FgTestScale", version=1, replace=True)
def _scale(op: CustomOp) -> Any:
    factor = np.float32(op.options["factor"])
    return lambda x: x * factor


@register_custom_op("FgTestAddPair", replace=True)  # any version
def _add_pair(op: CustomOp) -> Any:
    return lambda a, b: a + b


C1 = np.array([[1, 2, 3, 4]], dtype=np.float32)
C2 = np.array([[0.5, 0.5, 0.5, 0.5]], dtype=np.float16)


#: Tensors 0-3 of the mixed and WHILE models: x, constant c1, a = x + c1, s = custom(a).
SCALED_INPUT: Tensors = [
    ("x", [1, 4], F32, None),
    ("c1", [1, 4], F32, C1),
    ("a", [1, 4], F32, None),
    ("s", [1, 4], F32, None),
]


def mixed_model(custom_scale: str = "FgTestScale") -> bytes:
    """x → ADD c1 = a → custom scale ×3 = s → MUL dequant(c2) = m; custom(a, dequant(c2)) = p;
    q = ADD(p, m). Outputs a, m, q. dequant(c2) is computed from a constant only, and it is
    read both by a built-in op (kept static inside the sub-model) and by a custom op
    (folded once at load)."""
    return build_model(
        tensors=[
            *SCALED_INPUT,
            ("c2_fp16", [1, 4], F16, C2),
            ("c2", [1, 4], F32, None),
            ("m", [1, 4], F32, None),
            ("p", [1, 4], F32, None),
            ("q", [1, 4], F32, None),
        ],
        ops=[
            (ADD, [0, 1], [2], None),
            (custom_scale, [2], [3], {"factor": 3.0}),
            (DEQUANTIZE, [4], [5], None),
            (MUL, [3, 5], [6], None),
            ("FgTestAddPair", [2, 5], [7], {}),
            (ADD, [7, 6], [8], None),
        ],
        inputs=[0],
        outputs=[2, 6, 8],
    )


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------------ tests


def test_split_plan_of_a_mixed_model() -> None:
    g = TfLiteGraph(mixed_model(), "mixed.tflite")
    plan = g.plan_split()
    kinds = [type(s).__name__ for s in plan.steps]
    assert kinds == ["Segment", "CustomStep", "CustomStep", "Segment"]
    first, last = plan.steps[0], plan.steps[3]
    assert isinstance(first, Segment) and isinstance(last, Segment)
    assert first.operators == (0,) and first.inputs == (0,) and first.outputs == (2,)
    # The DEQUANTIZE (op 2) is copied into the segment that uses it: weights stay static.
    assert last.operators == (2, 3, 5)
    assert set(last.inputs) == {3, 7} and set(last.outputs) == {6, 8}
    assert plan.folded == (5,)  # dequant(c2) is also read by a custom op: folded at load


def test_split_model_runs_like_one_model(tmp_path: Path) -> None:
    model = TfLiteModel(write(tmp_path, "mixed.tflite", mixed_model()))
    assert model.is_split
    assert [d.name for d in model.input_details] == ["x"]
    assert [(d.name, d.shape) for d in model.output_details] == [
        ("a", (1, 4)),
        ("m", (1, 4)),
        ("q", (1, 4)),
    ]
    x = np.array([[0.0, 1.0, -2.0, 10.0]], dtype=np.float32)
    out = model.run({"x": x})
    a = x + C1
    np.testing.assert_allclose(out["a"], a)
    np.testing.assert_allclose(out["m"], 3 * a * 0.5)
    np.testing.assert_allclose(out["q"], (a + 0.5) + 1.5 * a)
    assert list(out) == ["a", "m", "q"]
    timings: list[float] = []
    model.run(x, timings=timings)
    assert len(timings) == len(model.steps) == 4
    assert [s.kind for s in model.steps] == ["litert", "custom", "custom", "litert"]


def test_extracted_sub_models_hold_only_builtin_ops() -> None:
    g = TfLiteGraph(mixed_model(), "mixed.tflite")
    for step in g.plan_split().steps:
        if isinstance(step, Segment):
            sub = TfLiteGraph(g.extract(step.operators, step.inputs, step.outputs))
            assert not sub.custom_operators()
            assert [t.name for t in (sub.tensors[i] for i in sub.inputs)] == [
                g.tensors[i].name for i in step.inputs
            ]
            # Unused tensors and buffers are pruned.
            used = {t for op in sub.operators for t in (*op.inputs, *op.outputs)}
            assert used == set(range(len(sub.tensors)))


def test_custom_op_on_model_input_and_file_constant(tmp_path: Path) -> None:
    # No built-in op at all: the custom op reads the model input and a weight stored in the
    # file, and the model input is also returned as an output.
    data = build_model(
        tensors=[("x", [1, 4], F32, None), ("c1", [1, 4], F32, C1), ("y", [1, 4], F32, None)],
        ops=[("FgTestAddPair", [0, 1], [2], None)],
        inputs=[0],
        outputs=[2, 0],
    )
    model = TfLiteModel(write(tmp_path, "custom_only.tflite", data))
    assert [s.kind for s in model.steps] == ["custom"]
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    out = model.run(x)
    np.testing.assert_array_equal(out["y"], x + C1)
    np.testing.assert_array_equal(out["x"], x)
    assert not np.shares_memory(out["x"], x)


def test_unregistered_custom_op_fails_at_load_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, "missing.tflite", mixed_model(custom_scale="FgTestNotRegistered"))
    with pytest.raises(CustomOpError) as err:
        TfLiteModel(path)
    text = str(err.value)
    assert "missing.tflite" in text
    assert "'FgTestNotRegistered' version 1 (operator #1)" in text
    assert "inputs:  'a' float32[1,4]" in text
    assert "outputs: 's' float32[1,4]" in text
    assert "options: {'factor': 3.0}" in text
    assert '@register_custom_op("FgTestNotRegistered", version=1)' in text
    # The registered op of the same model is not reported.
    assert "FgTestAddPair" not in text


def test_kernel_errors_name_the_op(tmp_path: Path) -> None:
    @register_custom_op("FgTestBadShape", replace=True)
    def bad(op: CustomOp) -> Any:
        return lambda x: x[:, :2]

    path = write(tmp_path, "bad.tflite", mixed_model(custom_scale="FgTestBadShape"))
    model = TfLiteModel(path)
    with pytest.raises(
        CustomOpError, match=r"'FgTestBadShape' v1 \(operator #1\).*float32\[1, 2\]"
    ):
        model.run(np.zeros((1, 4), np.float32))


def test_model_without_custom_ops_is_one_plain_interpreter(tmp_path: Path) -> None:
    data = build_model(
        tensors=[("x", [1, 3], F32, None), ("c", [1, 3], F32, C1[:, :3]), ("y", [1, 3], F32, None)],
        ops=[(ADD, [0, 1], [2], None)],
        inputs=[0],
        outputs=[2],
    )
    model = TfLiteModel(write(tmp_path, "plain.tflite", data))
    assert not model.is_split
    assert [s.kind for s in model.steps] == ["litert"]
    np.testing.assert_array_equal(model.run(np.ones((1, 3), np.float32))["y"], [[2, 3, 4]])


def while_model() -> bytes:
    """x → ADD c1 = a → custom ×3 = s → WHILE (i < 3: i += 1, v *= 2) from (0, s).
    Outputs v = 24·(x + c1) and i = 3. The loop's condition and body are subgraphs 1 and 2,
    whose LESS, ADD and MUL come after WHILE in the operator code table (ADD before it): the
    sub-model holding the WHILE must renumber their codes along with its own."""
    return build_model(
        tensors=[
            *SCALED_INPUT,
            ("i0", [], I32, np.array(0, np.int32)),
            ("i", [], I32, None),
            ("v", [1, 4], F32, None),
        ],
        ops=[
            (ADD, [0, 1], [2], None),
            ("FgTestScale", [2], [3], {"factor": 3.0}),
            (WHILE, [4, 3], [5, 6], {"cond": 1, "body": 2}),
        ],
        inputs=[0],
        outputs=[6, 5],
        subgraphs=[
            (  # cond: i < 3
                [
                    ("i", [], I32, None),
                    ("v", [1, 4], F32, None),
                    ("limit", [], I32, np.array(3, np.int32)),
                    ("go_on", [], BOOL, None),
                ],
                [(LESS, [0, 2], [3], None)],
                [0, 1],
                [3],
            ),
            (  # body: i + 1, v * 2
                [
                    ("i", [], I32, None),
                    ("v", [1, 4], F32, None),
                    ("one", [], I32, np.array(1, np.int32)),
                    ("two", [1, 4], F32, np.full((1, 4), 2.0, np.float32)),
                    ("i_next", [], I32, None),
                    ("v_next", [1, 4], F32, None),
                ],
                [(ADD, [0, 2], [4], None), (MUL, [1, 3], [5], None)],
                [0, 1],
                [4, 5],
            ),
        ],
    )


def test_split_model_with_a_while_loop_runs_in_litert(tmp_path: Path) -> None:
    g = TfLiteGraph(while_model(), "while.tflite")
    segments = [s for s in g.plan_split().steps if isinstance(s, Segment)]
    assert [s.operators for s in segments] == [(0,), (2,)]
    # Every sub-model carries the loop's subgraphs, each op still naming its own kernel.
    for seg in segments:
        sub = TfLiteGraph(g.extract(seg.operators, seg.inputs, seg.outputs))
        assert len(sub.model.subgraphs) == 3
        names = [
            [_op_name(sub, op.opcodeIndex) for op in sg.operators] for sg in sub.model.subgraphs[1:]
        ]
        assert names == [["LESS"], ["ADD", "MUL"]]
    # And real LiteRT runs the split model: the loop body runs three times.
    model = TfLiteModel(write(tmp_path, "while.tflite", while_model()))
    assert [s.kind for s in model.steps] == ["litert", "custom", "litert"]
    x = np.array([[0.0, 1.0, -2.0, 10.0]], dtype=np.float32)
    out = model.run(x)
    np.testing.assert_array_equal(out["v"], 24 * (x + C1))
    assert int(out["i"]) == 3


def _op_name(g: TfLiteGraph, opcode_index: int) -> str:
    from ai_edge_litert import schema_py_generated as s

    code = g.model.operatorCodes[opcode_index]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    return next(k for k, v in vars(s.BuiltinOperator).items() if v == builtin)


def test_not_a_tflite_file(tmp_path: Path) -> None:
    with pytest.raises(TfLiteModelError, match=r"junk\.tflite: not a TFLite model"):
        TfLiteModel(write(tmp_path, "junk.tflite", b"\x00" * 64))
    with pytest.raises(TfLiteModelError, match="cannot read model file"):
        TfLiteModel(tmp_path / "nope.tflite")


# ------------------------------------------------------------- the Attention Mesh model


@pytest.fixture(scope="module")
def attention_graph(model_cache: Path) -> TfLiteGraph:
    from facegraph.models import model_path

    return TfLiteGraph.from_file(model_path("face_landmark_with_attention", cache_dir=model_cache))


def test_attention_model_custom_ops_match_the_spec(attention_graph: TfLiteGraph) -> None:
    found = [(op.index, op.name, op.version) for op in attention_graph.custom_operators()]
    l2tm = [(i, "Landmarks2TransformMatrix", 2) for i in (192, 193, 194)]
    ttb = [(i, "TransformTensorBilinear", 2) for i in (195, 196, 197)]
    tl = [(i, "TransformLandmarks", 2) for i in range(701, 706)]
    assert found == l2tm + ttb + tl


def test_attention_model_splits_into_three_litert_segments(attention_graph: TfLiteGraph) -> None:
    g = attention_graph
    plan = g.plan_split()
    segments = [s for s in plan.steps if isinstance(s, Segment)]
    assert len(segments) == 3 and not plan.folded
    names = [[g.tensors[t].name for t in s.inputs] for s in segments]
    assert names[0] == ["input_1"]
    # Sub-model B starts from the three 16×16×32 crops (and the L2TM matrices for the
    # ⊙K products); no weight is ever a sub-model input.
    assert sorted(names[1]) == sorted(
        [f"transform_tensor_bilinear_v2{s}" for s in ("", "_1", "_2")]
        + [f"landmarks_to_transform_matrix_v2{s}" for s in ("", "_1", "_2")]
    )
    assert all(not g.tensors[t].is_constant for s in segments for t in s.inputs)
    # Every custom op runs after the segment producing its inputs and before its consumers.
    done = set(g.inputs)
    for step in plan.steps:
        ops = [step.operator] if isinstance(step, CustomStep) else step.operators
        for i in ops:
            op = g.operators[i]
            missing = [
                t
                for t in op.inputs
                if t >= 0
                and t not in done
                and not g.tensors[t].is_constant
                and not (
                    isinstance(step, Segment) and any(t in g.operators[j].outputs for j in ops)
                )
            ]
            assert not missing, f"operator #{i} ({op.name}) runs before its inputs {missing}"
        done.update(t for i in ops for t in g.operators[i].outputs)
    assert set(g.outputs) <= done
