"""facegraph: dataflow graphs of Python calculators, MediaPipe's timing model, and
MediaPipe's Attention Mesh face pipeline as the flagship graph.
"""

from __future__ import annotations

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
