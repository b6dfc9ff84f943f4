"""Face calculators one by one in small graphs: options validation, the presence gate,
detections → ROIs and association. Parity of the whole pipelines against MediaPipe is
tested on the shipped graphs (test_face_graphs.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from facegraph import Graph, GraphConfigError, load_graph
from facegraph.calculators import inference as _inference  # registers TfLiteInference
from facegraph.calculators.face import nodes as _nodes  # registers the face nodes
from facegraph.config import graph_from_yaml
from facegraph.vision.face.types import Detection, NormalizedRect

from .helpers import run_frames
from .test_face_reference import frames_of

assert _inference and _nodes


def test_flag_gate_drops_faces_below_threshold(model_cache: Path) -> None:
    frame = frames_of({"image": "astronaut"})[0]
    # A threshold of 1.0 drops the face (the gate keeps scores above the threshold): no
    # faces packet, while the detector still reports the face; the default 0.5 keeps it.
    sides = {"with_attention": False, "min_tracking_confidence": 1.0}
    got = run_frames(load_graph("face_mesh_static"), [frame], sides)
    assert got["faces"] == {} and len(got["detections"][0]) == 1
    kept = run_frames(load_graph("face_mesh_static"), [frame], {"with_attention": False})
    assert len(kept["faces"][0]) == 1


ONE_NODE = """
inputs: [a]
outputs: [b]
nodes:
  - calculator: CALCULATOR
    inputs: {INPUT: a}
    outputs: {OUTPUT: b}
    options: OPTIONS
"""


@pytest.mark.parametrize(
    ("calculator", "ports", "options", "message"),
    [
        ("ImageToTensor", ("IMAGE", "TENSOR"),
         "{output_width: 8, output_height: 8, range_min: 2.0}", "range_min"),
        ("RefineLandmarks", ("TENSORS", "LANDMARKS"), "{preset: meshy}", "preset"),
    ],
)  # fmt: skip
def test_node_options_are_validated(
    calculator: str, ports: tuple[str, str], options: str, message: str
) -> None:
    text = ONE_NODE.replace("CALCULATOR", calculator).replace("OPTIONS", options)
    text = text.replace("INPUT", ports[0]).replace("OUTPUT", ports[1])
    with pytest.raises(GraphConfigError, match=message):
        graph_from_yaml(textwrap.dedent(text))


ROIS_ONLY = """
inputs: [detections, image, prev]
outputs: [rois]
nodes:
  - calculator: DetectionsToRois
    inputs: {DETECTIONS: detections, IMAGE: image}
    outputs: {NORM_RECTS: det_rois}
  - calculator: AssociateRois
    inputs: {NORM_RECTS: [det_rois, prev]}
    outputs: {NORM_RECTS: rois}
"""


def test_detections_to_rois_and_association_in_a_graph() -> None:
    spec = graph_from_yaml(textwrap.dedent(ROIS_ONLY))
    graph = Graph(spec, mode="deterministic")
    out: list[tuple[int, list[NormalizedRect]]] = []
    graph.observe("rois", lambda p: out.append((p.timestamp, p.value)))
    graph.start({})
    kps = np.array([[0.4, 0.3], [0.5, 0.3]] + [[0.45, 0.35]] * 4, np.float32)
    det = Detection(0.4, 0.3, 0.2, 0.1, 0.9, kps)
    tracked = NormalizedRect(0.5, 0.35, 0.3, 0.4, 0.0, rect_id=3)
    image = np.zeros((480, 640, 3), np.uint8)
    graph.add_packet("detections", [det], 0)
    graph.add_packet("image", image, 0)
    graph.add_packet("prev", [tracked], 0)
    graph.add_packet("detections", [det], 1)
    graph.add_packet("image", image, 1)
    graph.close_all_inputs()
    graph.wait_until_done()
    # t=0: the tracked rect overlaps the detection's ROI and replaces it; t=1: no
    # previous rects, the detection's ROI (192 px square, level eyes) goes through.
    assert out[0] == (0, [tracked])
    (roi,) = out[1][1]
    assert out[1][0] == 1 and roi.x_center == pytest.approx(0.5)
    assert roi.width == pytest.approx(0.3) and roi.height == pytest.approx(0.4)
    assert roi.rotation == pytest.approx(0.0, abs=1e-7)
