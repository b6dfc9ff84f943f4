"""Build GraphSpecs in Python for runtime tests, plus a few tiny test calculators and
the helpers several test modules share (:func:`skip_unless_ci`, :func:`run_frames`,
:func:`read_video_frames`, :func:`astronaut_face`, :func:`astronaut_detection`,
:func:`file_size_limit`).

``node("add", Add, inputs={"A": "a", "B": "b"}, outputs={"SUM": "s"})`` reads like
the YAML would; ``"TAG:1"`` keys give indexed ports, a ``"!"`` suffix on a
stream name marks a back edge, and ``keep_latest={"IN": 2}`` limits a queue.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import pytest
from facegraph import (
    STOP,
    Calculator,
    CalculatorContext,
    Graph,
    GraphSpec,
    Input,
    NodeSpec,
    Output,
)
from facegraph.calculator import InputPolicy, Signal
from facegraph.spec import SideBinding, SidePacketSpec, StreamBinding
from pydantic import BaseModel

if TYPE_CHECKING:  # face types only when a test asks for a face (core tests load none)
    from facegraph.vision.face.types import Detection, FaceLandmarks


def _split(key: str) -> tuple[str, int]:
    tag, _, index = key.partition(":")
    return tag, int(index) if index else 0


def node(
    name: str,
    calculator: type[Calculator],
    *,
    inputs: dict[str, str] | None = None,
    outputs: dict[str, str] | None = None,
    side_inputs: dict[str, str] | None = None,
    side_outputs: dict[str, str] | None = None,
    policy: InputPolicy | None = None,
    keep_latest: dict[str, int] | None = None,
    executor: str = "default",
    options: dict[str, Any] | None = None,
) -> NodeSpec:
    keep = keep_latest or {}
    ins = []
    for key, stream in (inputs or {}).items():
        tag, index = _split(key)
        back = stream.endswith("!")
        ins.append(
            StreamBinding(tag, index, stream.rstrip("!"), back_edge=back, keep_latest=keep.get(key))
        )
    outs = [StreamBinding(*_split(k), s) for k, s in (outputs or {}).items()]
    sins = [SideBinding(*_split(k), s) for k, s in (side_inputs or {}).items()]
    souts = [SideBinding(*_split(k), s) for k, s in (side_outputs or {}).items()]
    opts: BaseModel = calculator.Options(**(options or {}))
    return NodeSpec(
        name=name,
        calculator_name=calculator.__name__,
        calculator=calculator,
        options=opts,
        inputs=tuple(ins),
        outputs=tuple(outs),
        side_inputs=tuple(sins),
        side_outputs=tuple(souts),
        input_policy=policy or calculator.input_policy,
        executor=executor,
    )


def graph(
    *nodes: NodeSpec,
    inputs: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
    side: dict[str, SidePacketSpec] | None = None,
    max_queue_size: int = 100,
    executors: dict[str, int] | None = None,
    name: str = "test",
) -> GraphSpec:
    return GraphSpec(
        name=name,
        nodes=tuple(nodes),
        input_streams=inputs,
        output_streams=outputs,
        side_inputs=side or {},
        executors=executors or {"default": 2},
        max_queue_size=max_queue_size,
    )


# ---------------------------------------------------------------- tiny test calculators


class Pass(Calculator):
    """Forwards IN to OUT."""

    IN = Input("IN")
    OUT = Output("OUT")

    def process(self, ctx: CalculatorContext) -> None:
        p = ctx.packet(self.IN)
        if p is not None:
            ctx.emit(self.OUT, p.value)


class DropOdd(Calculator):
    """Forwards only even values: 'no packet' at the other timestamps."""

    IN = Input("IN")
    OUT = Output("OUT")

    def process(self, ctx: CalculatorContext) -> None:
        v = ctx.get(self.IN)
        if v is not None and v % 2 == 0:
            ctx.emit(self.OUT, v)


class Merge(Calculator):
    """Emits the tuple of its indexed inputs (None where missing) if any is present."""

    IN = Input("IN", multiple=True)
    OUT = Output("OUT")

    def process(self, ctx: CalculatorContext) -> None:
        values = tuple(ctx.get(self.IN, i) for i in range(ctx.count(self.IN)))
        if any(v is not None for v in values):
            ctx.emit(self.OUT, values)


class Counter(Calculator):
    """Source: emits 0..N-1 at timestamps 0, 10, 20, ..."""

    class Options(BaseModel):
        n: int = 10
        step: int = 10

    OUT = Output("OUT")
    timestamp_offset = None

    def open(self, ctx: CalculatorContext) -> None:
        self.i = 0

    def process(self, ctx: CalculatorContext) -> Signal | None:
        if self.i >= self.options.n:
            return STOP
        ctx.emit(self.OUT, self.i, timestamp=self.i * self.options.step)
        self.i += 1
        return None


class Boom(Calculator):
    """Raises at the configured value; records its lifecycle in ``events``."""

    class Options(BaseModel):
        at: int = 3

    IN = Input("IN")
    OUT = Output("OUT")
    events: ClassVar[list[str]] = []

    def open(self, ctx: CalculatorContext) -> None:
        Boom.events.append(f"open {ctx.node_name}")

    def process(self, ctx: CalculatorContext) -> None:
        v = ctx.get(self.IN)
        if v == self.options.at:
            raise ValueError(f"bad value {v}")
        ctx.emit(self.OUT, v)

    def close(self, ctx: CalculatorContext) -> None:
        Boom.events.append(f"close {ctx.node_name}")


def in_ci() -> bool:
    """Whether this runs in CI (``CI`` set to anything but empty, ``0`` or ``false``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def skip_unless_ci(reason: str, *, allow_module_level: bool = False) -> NoReturn:
    """Skip for a reason of this machine (another image decoder, a missing graph); in CI
    fail instead, where a skip would silently remove the tests that depend on it."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: this must not be skipped)", pytrace=False)
    pytest.skip(reason, allow_module_level=allow_module_level)


@contextlib.contextmanager
def file_size_limit(max_bytes: int) -> Iterator[None]:
    """Inside, a write past ``max_bytes`` into any file fails with EFBIG ("File too
    large"), as on a full disk, and for root too (RLIMIT_FSIZE, this process only; SIGXFSZ
    ignored so that the write fails instead of the process)."""
    import resource
    import signal

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def run_frames(
    spec: GraphSpec, frames: Sequence[Any], sides: dict[str, Any], stream: str = "image"
) -> dict[str, dict[int, Any]]:
    """Run ``spec`` deterministically on ``frames`` (fed to ``stream`` at 30 FPS
    timestamps, 33333 µs apart) and return each output stream's packets by timestamp."""
    graph = Graph(spec, mode="deterministic")
    got: dict[str, dict[int, Any]] = {s: {} for s in spec.output_streams}
    for name, sink in got.items():
        graph.observe(name, lambda p, sink=sink: sink.__setitem__(p.timestamp, p.value))
    graph.start(sides)
    for i, frame in enumerate(frames):
        graph.add_packet(stream, frame, i * 33333)
    graph.close_all_inputs()
    graph.wait_until_done()
    return got


def read_video_frames(path: str | os.PathLike[str]) -> list[Any]:
    """Every frame of a video file as OpenCV decodes it (BGR arrays), in order."""
    import cv2

    cap = cv2.VideoCapture(os.fspath(path))
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return frames
            frames.append(frame)
    finally:
        cap.release()


#: MediaPipe 0.10.14's static-mode result on fixtures/faces/astronaut.png (512x512).
ASTRONAUT_REFERENCE = (
    Path(__file__).parent / "fixtures" / "reference" / "mesh_static_astronaut_refine.npz"
)


def astronaut_face(score: float) -> FaceLandmarks:
    """MediaPipe's 478 landmarks on astronaut.png as a FaceLandmarks with ``score``."""
    import numpy as np
    from facegraph.vision.face.types import FaceLandmarks

    ref = np.load(ASTRONAUT_REFERENCE)
    return FaceLandmarks(ref["landmarks"][0, 0], score=score)


def astronaut_detection(score: float) -> Detection:
    """MediaPipe's face detection on astronaut.png as a Detection with ``score``."""
    import numpy as np
    from facegraph.vision.face.types import Detection

    ref = np.load(ASTRONAUT_REFERENCE)
    x, y, w, h = (float(v) for v in ref["detections_box"][0, 0])
    return Detection(x, y, w, h, score, ref["detections_keypoints"][0, 0])
