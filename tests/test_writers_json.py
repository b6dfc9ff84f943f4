"""The landmark lines keep json.dumps' exact text when orjson writes them (vision/writers.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from facegraph.vision.face.types import FaceLandmarks, NormalizedRect
from facegraph.vision.media import FrameInfo
from facegraph.vision.writers import LandmarksWriter, _maybe_different, dumps_record, frame_record
from hypothesis import given, settings
from hypothesis import strategies as st

REFERENCE = Path(__file__).parent / "fixtures" / "reference"


def old_text(record: Any) -> str:
    """What LandmarksWriter wrote before orjson: the text every line must keep."""
    return json.dumps(record, separators=(",", ":"), allow_nan=False)


def real_faces() -> list[FaceLandmarks]:
    """MediaPipe 0.10.14's own landmarks of the reference photos and clips."""
    faces = []
    for path in sorted(REFERENCE.glob("mesh_*.npz")):
        with np.load(path) as data:
            # Frames are padded with NaN up to the largest face count: take the real ones.
            for frame, count in zip(data["landmarks"], data["landmarks_count"], strict=True):
                for points in frame[:count]:
                    roi = NormalizedRect(0.5, 0.5, 0.4, 0.4, 0.1, rect_id=len(faces))
                    faces.append(FaceLandmarks(points, score=0.987654321, roi=roi))
    assert len(faces) >= 10
    return faces


@pytest.mark.parametrize("digits", [3, None])
def test_real_landmark_records_have_the_same_text(digits: int | None) -> None:
    faces = real_faces()
    for i, face in enumerate(faces):
        for width, height in ((640, 480), (1, 1), (7, 100_000)):
            info = FrameInfo(i, i * 33_333, "clip.mp4", width, height)
            record = frame_record(info, [face, face], digits=digits)
            assert dumps_record(record) == old_text(record)


EDGE_FLOATS = [
    0.0,
    -0.0,
    1e-7,
    -1e-7,
    1e-5,
    1.5212603486793025e-05,
    9.99999e-5,
    1e-4,
    0.0001234,
    10.00001,
    123456789012345.0,
    1e15,
    1e16,
    1.5e16,
    -2.5e22,
    1e300,
    1.7976931348623157e308,
    5e-324,
    2.0**53,
    0.1 + 0.2,
]


@pytest.mark.parametrize("value", EDGE_FLOATS)
def test_edge_floats_have_the_same_text(value: float) -> None:
    record = {"frame": 1, "faces": [{"score": value, "keypoints": [{"x": value, "y": -value}]}]}
    assert dumps_record(record) == old_text(record)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    "place",
    [
        lambda v: {"faces": [{"x": v}]},
        lambda v: {"detections": None, "faces": [{"x": v}]},  # one null is a None
        lambda v: {"detections": None, "head": v},
        lambda v: {"a": None, "b": [None, v]},
        lambda v: [None, v],
        lambda v: v,
    ],
)
def test_non_finite_floats_are_refused_as_before(value: float, place: Any) -> None:
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        dumps_record(place(value))


def test_a_real_record_with_a_stream_without_packet_takes_the_fast_path() -> None:
    face = real_faces()[0]
    record = frame_record(
        FrameInfo(0, 0, "clip.mp4", 400, 300), [face], streams={"detections": None}
    )
    assert '"detections":null' in dumps_record(record) == old_text(record)
    assert not _maybe_different(orjson.dumps(record), record)


@pytest.mark.parametrize(
    "record",
    [
        {"source": "clé/vidéo 😀.mp4"},  # json.dumps escapes everything beyond ASCII
        {"source": 'del\x7f and \x01\x1f\n\t"\\/'},
        {3: "int key", 2.5: "float key", None: "null key", True: "bool key"},
        {"x": np.float64(0.25), "n": 2**70, "t": (1, 2)},
        {"stream": None, "nested": [[], {}, [None, 1.0]]},
        {"source": "null.mp4", "detections": None},
    ],
)
def test_other_values_have_the_same_text(record: dict[Any, Any]) -> None:
    assert dumps_record(record) == old_text(record)


def test_types_json_refuses_are_still_refused() -> None:
    import dataclasses
    import datetime

    @dataclasses.dataclass
    class Point:
        x: float

    for value in (np.float32(0.5), Point(1.0), datetime.date(2024, 1, 1), {1, 2}):
        with pytest.raises(TypeError):
            old_text({"v": value})
        with pytest.raises(TypeError):
            dumps_record({"v": value})


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_finite_float_has_the_same_text(value: float) -> None:
    assert dumps_record([value, {"v": value}]) == old_text([value, {"v": value}])


@pytest.mark.parametrize("name", ["faces.jsonl", "faces.json"])
def test_the_written_file_is_the_old_text(tmp_path: Path, name: str) -> None:
    faces = real_faces()[:3]
    infos = [FrameInfo(i, i * 40_000, "clip.mp4", 400, 300) for i in range(3)]
    target = tmp_path / name
    with LandmarksWriter(target) as writer:
        records = [writer.write(info, [face]) for info, face in zip(infos, faces, strict=True)]
    lines = [old_text(r) for r in records]
    if name.endswith(".jsonl"):
        expected = "".join(line + "\n" for line in lines)
    else:
        expected = "[\n" + ",\n".join(lines) + "\n]\n"
    assert target.read_text() == expected
