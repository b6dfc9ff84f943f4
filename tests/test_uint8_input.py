"""uint8 model inputs (facegraph.models.uint8_input): the crop's pixels go into the model,
which maps them onto its float range with a DEQUANTIZE, instead of numpy making the float
tensor. The outputs must be the float path's, bit for bit: anything else would move
every landmark of the shipped graphs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from facegraph import CalculatorError, Graph, graph_from_yaml, graphs, load_graph
from facegraph.calculators.face.landmark_nodes import FaceLandmarkModel
from facegraph.calculators.face.nodes import ImageToTensor
from facegraph.models import model_path, reuse
from facegraph.models.inference import TfLiteModel
from facegraph.models.tflite_graph import TfLiteModelError
from facegraph.vision.face.image_to_tensor import image_to_tensor, value_range_lut
from facegraph.vision.face.types import NormalizedRect
from pydantic import ValidationError

from .test_face_reference import REFERENCE, case, frames_of
from .test_tflite_split import ADD, F32, build_model, write

# (model, the float range its graph feeds it)
MODELS = [
    ("face_landmark_with_attention", (0.0, 1.0)),
    ("face_landmark", (0.0, 1.0)),
    ("face_detection_short_range", (-1.0, 1.0)),
    ("face_detection_full_range_sparse", (-1.0, 1.0)),
    ("face_landmarks_v2", (0.0, 1.0)),
    ("face_landmarker_detector", (-1.0, 1.0)),
]


def same_bits(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return [x.tobytes() for x in a.values()] == [y.tobytes() for y in b.values()]


@pytest.mark.parametrize(("name", "value_range"), MODELS)
def test_uint8_input_gives_the_float_inputs_outputs_bit_for_bit(
    model_cache: Path, name: str, value_range: tuple[float, float]
) -> None:
    path = model_path(name)
    reference = TfLiteModel(path, threads=1)
    (details,) = reference.input_details
    lut = value_range_lut(*value_range)
    rng = np.random.default_rng(7)
    pixels = [
        rng.integers(0, 256, details.shape, dtype=np.uint8),  # every value, in every channel
        np.zeros(details.shape, np.uint8),
        np.full(details.shape, 255, np.uint8),
    ]
    for threads in (1, 2):
        model = TfLiteModel(path, threads=threads, uint8_input=value_range)
        (u8,) = model.input_details
        assert (u8.dtype, u8.shape) == (np.dtype(np.uint8), details.shape)
        for px in pixels:
            assert same_bits(model.run(px), reference.run(lut[px])), (name, threads)


def test_uint8_crop_is_the_float_crops_pixels(model_cache: Path) -> None:
    """ImageToTensor's uint8 output is the pixels its float output maps, both warps."""
    frame = frames_of(case("mesh_track_moving_refine")["input"])[5]
    rect = NormalizedRect(0.5, 0.45, 0.4, 0.5, 0.3)
    for warp in ("exact", "fast"):
        for r, border in ((None, "zero"), (rect, "replicate")):
            u8 = image_to_tensor(frame, r, 192, 192, None, border, r is None, warp)  # type: ignore[arg-type]
            f32 = image_to_tensor(frame, r, 192, 192, (-1.0, 1.0), border, r is None, warp)  # type: ignore[arg-type]
            assert u8.tensor.dtype == np.uint8 and u8.tensor.shape == (1, 192, 192, 3)
            assert value_range_lut(-1.0, 1.0)[u8.tensor].tobytes() == f32.tensor.tobytes()
            np.testing.assert_array_equal(u8.matrix, f32.matrix)


def test_split_model_with_uint8_input(model_cache: Path) -> None:
    """The general path (custom ops run by numpy kernels) takes uint8 input too."""
    path = model_path("face_landmark_with_attention")
    split = TfLiteModel(path, custom_ops="split", uint8_input=(0.0, 1.0))
    split_float = TfLiteModel(path, custom_ops="split")
    assert split.is_split
    px = np.random.default_rng(3).integers(0, 256, (1, 192, 192, 3), dtype=np.uint8)
    assert same_bits(split.run(px), split_float.run(value_range_lut(0.0, 1.0)[px]))


def landmark_graph(text: str) -> Graph:
    return Graph(graph_from_yaml(text), mode="deterministic").start({})


def test_shipped_landmark_graph_feeds_uint8_with_the_float_graphs_landmarks(
    model_cache: Path,
) -> None:
    """The shipped face_landmark graph (uint8 crop, model's uint8_input) against the same
    graph with a float crop: the same landmarks and score, bit for bit."""
    text = (Path(graphs.__file__).parent / "face_landmark.yaml").read_text("utf-8")
    crop_u8 = "output_type: uint8,"
    model_u8 = "    options: {uint8_input: [0.0, 1.0]}\n"
    assert text.count(crop_u8) == 1 and text.count(model_u8) == 1
    float_text = text.replace(crop_u8, "range_min: 0.0, range_max: 1.0,").replace(model_u8, "")
    spec = load_graph("face_landmark")
    assert [n.options.output_type for n in spec.nodes if n.name == "crop"] == ["uint8"]  # type: ignore[attr-defined]
    c = case("mesh_track_moving_refine")
    ref = np.load(REFERENCE / c["file"])
    frames = frames_of(c["input"])
    ours, floats = Graph(spec, mode="deterministic").start({}), landmark_graph(float_text)
    try:
        for k, i in enumerate((1, 30, 59)):
            roi = NormalizedRect.from_array(ref["rects_from_landmarks"][i - 1, 0])
            a = ours.run_once({"image": frames[i], "roi": roi}, timestamp=k)
            b = floats.run_once({"image": frames[i], "roi": roi}, timestamp=k)
            assert a["face"].points.tobytes() == b["face"].points.tobytes()
            assert a["face"].score == b["face"].score
    finally:
        for g in (ours, floats):
            g.close_all_inputs()
            g.wait_until_done()


def test_lowered_uint8_variant_is_cached_beside_the_model_under_its_own_name(
    model_cache: Path, tmp_path: Path
) -> None:
    path = tmp_path / "mesh.tflite"
    shutil.copyfile(model_path("face_landmark_with_attention"), path)
    TfLiteModel(path)
    TfLiteModel(path, uint8_input=(0.0, 1.0))
    cached = sorted(p.name for p in tmp_path.glob(".mesh.*.tflite"))
    assert len(cached) == 2 and sum("-u8in[0,1]." in n for n in cached) == 1, cached
    # Loaded again from the cache: still the uint8 variant.
    assert TfLiteModel(path, uint8_input=(0.0, 1.0)).input_details[0].dtype == np.uint8


def test_model_reuse_never_hands_a_float_model_to_a_uint8_request(model_cache: Path) -> None:
    path = model_path("face_detection_short_range")
    reuse.enable()
    try:
        TfLiteModel(path)
        reuse.next_run()
        model = TfLiteModel(path, uint8_input=(-1.0, 1.0))
        assert model.input_details[0].dtype == np.uint8
        assert reuse.stats().reuses == 0
    finally:
        reuse.disable()


def test_uint8_input_errors_are_one_clear_line(model_cache: Path, tmp_path: Path) -> None:
    path = model_path("face_detection_short_range")
    with pytest.raises(ValueError, match=r"finite min < max, got \[1.0, 0.0\]"):
        TfLiteModel(path, uint8_input=(1.0, 0.0))
    two_inputs = build_model(
        tensors=[("a", [1, 3], F32, None), ("b", [1, 3], F32, None), ("y", [1, 3], F32, None)],
        ops=[(ADD, [0, 1], [2], None)],
        inputs=[0, 1],
        outputs=[2],
    )
    pair = write(tmp_path, "pair.tflite", two_inputs)
    with pytest.raises(TfLiteModelError, match=r"pair\.tflite: uint8 input needs a model with one"):
        TfLiteModel(pair, uint8_input=(0.0, 1.0))
    model = TfLiteModel(path, uint8_input=(-1.0, 1.0))
    with pytest.raises(TfLiteModelError, match=r"expects uint8\[1, 128, 128, 3\], got float32"):
        model.run(np.zeros((1, 128, 128, 3), np.float32))
    # Node options: the range lives on the model node when the crop emits uint8.
    with pytest.raises(ValidationError, match="range_min apply to float32 output"):
        ImageToTensor.Options(output_width=8, output_height=8, output_type="uint8", range_min=0)
    with pytest.raises(ValidationError, match="finite min < max"):
        FaceLandmarkModel.Options(uint8_input=[1.0, 1.0])  # type: ignore[arg-type]
    assert FaceLandmarkModel.Options(uint8_input=[0, 1]).uint8_input == (0.0, 1.0)  # type: ignore[arg-type]


CROP_AND_MODEL = """
inputs: [image]
outputs: [out]
nodes:
  - calculator: ImageToTensor
    name: crop
    inputs: {{IMAGE: image}}
    outputs: {{TENSOR: tensor}}
    options: {{output_width: 192, output_height: 192, {crop}}}
  - calculator: FaceLandmarkModel
    name: model
    inputs: {{TENSOR: tensor}}
    outputs: {{TENSORS: out}}
    options: {{{model}}}
"""


@pytest.mark.parametrize(
    ("crop", "model", "says"),
    [
        ("output_type: uint8", "threads: 1", "give the model node uint8_input: [min, max]"),
        ("range_min: 0.0", "uint8_input: [0.0, 1.0]", "ImageToTensor output_type: uint8"),
    ],
)
def test_a_crop_and_model_that_disagree_on_uint8_fail_in_one_line_saying_how_to_match(
    model_cache: Path, crop: str, model: str, says: str
) -> None:
    spec = graph_from_yaml(CROP_AND_MODEL.format(crop=crop, model=model))
    graph = Graph(spec, mode="deterministic").start({})
    try:
        with pytest.raises(CalculatorError) as info:
            graph.run_once({"image": np.zeros((48, 64, 3), np.uint8)}, timestamp=0)
    finally:
        graph.close_all_inputs()
        with pytest.raises(CalculatorError):  # the graph failed: waiting reports it again
            graph.wait_until_done()
    # The first line is what the CLI prints (the traceback follows for debugging).
    first = str(info.value).splitlines()[0]
    assert first.startswith("node 'model' (FaceLandmarkModel)") and says in first, first
