"""facegraph: dataflow graphs of Python calculators, MediaPipe's timing model, and
MediaPipe's Attention Mesh face pipeline as the flagship graph.
"""

from __future__ import annotations

from typing import Any

from .calculator import STOP, Calculator, CalculatorContext, NoOptions, StrictOptions
from .closeable import Closeable
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
from .named_registry import Registry
from .packet import Packet
from .plugins import api_target
from .ports import Input, Output, SideInput, SideOutput
from .registry import register
from .spec import GraphSpec, NodeSpec

__version__ = "0.1.0"

__all__ = [
    "STOP",
    "Calculator",
    "CalculatorContext",
    "CalculatorError",
    "Closeable",
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
    "Registry",
    "RegistryError",
    "SideInput",
    "SideOutput",
    "StrictOptions",
    "TimestampError",
    "__version__",
    "graph_from_yaml",
    "load_graph",
    "register",
]


def __getattr__(name: str) -> Any:
    # Public names that live outside the engine (FaceMesh, ...) are ``facegraph.api``
    # entry points, imported on first access: ``import facegraph`` stays free of
    # OpenCV and LiteRT, and the engine names no module of the application.
    ep = api_target(name)
    if ep is None:
        raise AttributeError(f"module 'facegraph' has no attribute {name!r}")
    value = ep.load()
    globals()[name] = value
    return value
