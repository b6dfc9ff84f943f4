"""facegraph: dataflow graphs of Python calculators, MediaPipe's timing model, and
MediaPipe's Attention Mesh face pipeline as the flagship graph.
"""

from __future__ import annotations

import importlib
from typing import Any

from .calculator import STOP, Calculator, CalculatorContext, NoOptions
from .config import graph_from_yaml, load_graph
from .errors import (
    CalculatorError,
    FacegraphError,
    GraphClosedError,
    GraphConfigError,
    GraphStalledError,
    Problem,
    RegistryError,
    TimestampError,
)
from .graph import Graph
from .packet import Packet
from .ports import Input, Output, SideInput, SideOutput
from .registry import register
from .spec import GraphSpec, NodeSpec

__version__ = "0.1.0"

__all__ = [
    "STOP",
    "Calculator",
    "CalculatorContext",
    "CalculatorError",
    "FaceMesh",
    "FacegraphError",
    "Graph",
    "GraphClosedError",
    "GraphConfigError",
    "GraphSpec",
    "GraphStalledError",
    "Input",
    "NoOptions",
    "NodeSpec",
    "Output",
    "Packet",
    "Problem",
    "RegistryError",
    "SideInput",
    "SideOutput",
    "TimestampError",
    "__version__",
    "graph_from_yaml",
    "load_graph",
    "register",
]


# Public names that live outside the engine, imported on first access so that
# ``import facegraph`` stays free of OpenCV/LiteRT (the engine never imports calculators
# at import time).
_LAZY = {"FaceMesh": "facegraph.calculators.face.facade"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'facegraph' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
