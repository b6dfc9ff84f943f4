"""The face graphs' per-face ParallelMap gives exactly what their BeginLoop/EndLoop form gave.

``tests/fixtures/beginloop_graphs`` holds the face graphs as they were
before the switch (BeginLoop -> face_landmark subgraph -> EndLoop); both are run on the
committed two-face inputs and must agree bit for bit, faces, scores, ROIs and detections.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from facegraph import Graph, load_graph

from tests.test_face_reference import video

FIXTURES = Path(__file__).parent / "fixtures"
BEFORE = FIXTURES / "beginloop_graphs"


def _two_faces() -> np.ndarray:
    bgr = cv2.imread(str(FIXTURES / "faces" / "two_faces.png"))
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _outputs(graph_source: str | Path, frames: list[np.ndarray]) -> list[dict[str, Any]]:
    graph = Graph(load_graph(graph_source), mode="deterministic")
    graph.start({"num_faces": 2})
    outs = [graph.run_once({"image": f}, timestamp=i) for i, f in enumerate(frames)]
    graph.close_all_inputs()
    graph.wait_until_done()
    return outs


def _equal(a: Any, b: Any) -> bool:
    """Bit-equal values: arrays element by element, dataclasses field by field."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(
            _equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
        )
    if isinstance(a, (list, tuple)):
        return (
            isinstance(b, (list, tuple))
            and len(a) == len(b)
            and all(_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    return bool(a == b)


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert sorted(x) == sorted(y), f"frame {i}: outputs {sorted(x)} vs {sorted(y)}"
        for name in x:
            assert _equal(x[name], y[name]), f"frame {i}: '{name}' differs"


@pytest.mark.parametrize(
    "graph_name",
    [
        "face_mesh",
        "face_mesh_static",
        "face_mesh_iris",
        "face_landmarker",
        "face_landmarker_static",
    ],
)
def test_two_faces_are_identical_to_the_beginloop_graph(graph_name: str) -> None:
    frames = [_two_faces(), *video("two")[:20]]
    after = _outputs(graph_name, frames)
    before = _outputs(BEFORE / f"{graph_name}_beginloop.yaml", frames)
    _same(after, before)
    # Not vacuous: two faces on most frames.
    assert sum(len(o.get("faces", [])) == 2 for o in after) >= len(frames) // 2
