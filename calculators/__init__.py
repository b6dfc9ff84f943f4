"""Built-in calculators: core flow nodes, sources and sinks, and the face pipeline nodes.

Importing this package registers the core nodes (the registry imports it on the
first name lookup). They are pure Python; nodes with heavy dependencies
(OpenCV, LiteRT) live in modules that only they import.
"""

from __future__ import annotations

from facegraph.calculators import (
    annotate,
    core,
    flow,
    inference,
    live,
    loops,
    media,
    parallel_map,
    render,
    sinks,
    sources,
    vectors,
    writers,
)
from facegraph.calculators.face import blendshapes as face_blendshapes
from facegraph.calculators.face import geometry as face_geometry
from facegraph.calculators.face import landmarker_nodes as face_landmarker_nodes
from facegraph.calculators.face import nodes as face_nodes
from facegraph.calculators.face import smoothing as face_smoothing
from facegraph.calculators.face import yunet as face_yunet

__all__ = [
    "annotate",
    "core",
    "face_blendshapes",
    "face_geometry",
    "face_landmarker_nodes",
    "face_nodes",
    "face_smoothing",
    "face_yunet",
    "flow",
    "inference",
    "live",
    "loops",
    "media",
    "parallel_map",
    "render",
    "sinks",
    "sources",
    "vectors",
    "writers",
]
