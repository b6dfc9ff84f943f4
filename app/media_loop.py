"""Drive a started graph with frames from a source and hand each frame's faces to the outputs.

The loop behind ``facegraph run GRAPH --input SRC --output F --render F --show --serve P``::

    from facegraph import Graph, load_graph
    from facegraph.vision.media import open_source
    from facegraph.app.media_loop import faces_stream_of, run_frames
    from facegraph.vision.writers import LandmarksWriter

    spec = load_graph("face_mesh")
    with open_source("clip.mp4") as source, LandmarksWriter("out.jsonl") as writer:
        graph = Graph(spec).start()
        n = run_frames(graph, source, faces_stream=faces_stream_of(spec), writer=writer)
        graph.close_all_inputs()
        graph.wait_until_done()

Each frame goes in with ``Graph.run_once`` at the frame's own timestamp, which returns as
soon as every graph output has settled that timestamp; so the frame's record is complete
(``"faces": []`` when the graph emitted no faces packet, MediaPipe's convention for "no
face") and outputs come in frame order. Frames are processed one at a time, which is
also what a tracking graph needs (frame t+1 uses frame t's landmarks). With a camera the
source always hands over its newest frame, so a slow graph drops frames instead of lagging.

Ctrl-C raises ``KeyboardInterrupt`` out of :func:`run_frames`; the ``with`` blocks of the
caller then finish every output (JSONL lines are already on disk, ``.json`` is completed,
the video is finalised). Closing the ``--show`` window ends the loop normally.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from facegraph.vision.annotate import Annotator, default_annotators, face_items
from facegraph.vision.media import Frame
from facegraph.vision.writers import FACES_OMITTED, face_extras

if TYPE_CHECKING:
    from facegraph import Graph, GraphSpec
    from facegraph.app.stages import WriteBehind
    from facegraph.vision.live import LiveServer, LiveWindow
    from facegraph.vision.render import Renderer
    from facegraph.vision.writers import LandmarksWriter

__all__ = ["FrameResult", "faces_stream_of", "run_frames"]

#: Graph output streams that carry faces, in order of preference.
FACE_STREAMS: tuple[str, ...] = ("faces", "detections")


@dataclass(slots=True)
class FrameResult:
    """One processed frame: the frame, its faces, every graph output at its timestamp."""

    frame: Frame
    faces: list[Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    drawn: np.ndarray | None = None


def faces_stream_of(spec: GraphSpec) -> str | None:
    """The graph output that carries faces: ``faces``, else ``detections``, else None."""
    for name in FACE_STREAMS:
        if name in spec.output_streams:
            return name
    return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def run_frames(
    graph: Graph,
    frames: Iterable[Frame],
    *,
    input_stream: str = "image",
    faces_stream: str | None = "faces",
    streams: Sequence[str] = (),
    write_faces: bool = True,
    writer: LandmarksWriter | None = None,
    renderer: Renderer | None = None,
    server: LiveServer | None = None,
    window: LiveWindow | None = None,
    overlay: Annotator | None = None,
    max_frames: int | None = None,
    on_frame: Callable[[FrameResult], object] | None = None,
    write_behind: WriteBehind | None = None,
    on_written: Callable[[FrameResult], object] | None = None,
    draw_behind: bool = False,
) -> int:
    """Feed ``frames`` into a started ``graph``; write, draw, show each result. Returns the count.

    The writer gets the faces (from ``faces_stream``, under ``"faces"`` unless
    ``write_faces`` is false) and each of ``streams`` (other graph outputs) under its name.
    ``overlay`` (default: mesh, contours, irises, boxes) draws the faces for the renderer,
    the web page and the window — those of ``faces_stream``, plus landmarks found in any
    other output stream (all face-like values when the graph has no faces stream);
    nothing is drawn when none of them is given.
    ``on_frame`` is called after each frame (progress bars). Stops after ``max_frames``,
    at the end of the source, or when the window is closed.

    ``write_behind`` (:class:`~facegraph.app.stages.WriteBehind`): the record (JSON) and
    the rendered frame are written on its thread while the graph runs the next frame; the
    caller closes it (which finishes the writes). ``on_written(result)`` is called once a
    frame's outputs are written (on that thread then; a frame whose write failed, or came
    after a failed one, never gets it). ``draw_behind`` (with ``write_behind``, when only
    the renderer wants the overlay: no server, no window) draws it on that thread too, so
    ``result.drawn`` is set there (``on_written`` sees it, ``on_frame`` does not).
    """
    drawing = renderer is not None or server is not None or window is not None
    if drawing and overlay is None:
        overlay = default_annotators()
    # Drawn later, on the writing thread, when only the renderer needs the overlay.
    draw_later = (
        write_behind is not None
        and draw_behind
        and renderer is not None
        and server is None
        and window is None
    )
    count = 0
    for frame in frames:
        if max_frames is not None and count >= max_frames:
            break
        outputs = graph.run_once({input_stream: frame.image}, timestamp=frame.info.timestamp_us)
        faces = _as_list(outputs.get(faces_stream)) if faces_stream else []
        result = FrameResult(frame, faces, outputs)
        if drawing and not draw_later:
            assert overlay is not None
            shown = _draw(result, overlay, faces_stream)
            if server is not None:
                assert result.drawn is not None
                server.publish(result.drawn, faces=shown, outputs=outputs)
        write = functools.partial(
            _write_outputs,
            result,
            writer,
            renderer,
            streams,
            write_faces,
            on_written,
            overlay if draw_later else None,
            faces_stream,
        )
        if write_behind is None:
            write()
        elif writer is not None or renderer is not None or on_written is not None:
            write_behind.submit(write)
        count += 1
        if on_frame is not None:
            on_frame(result)
        if window is not None and result.drawn is not None and not window.show(result.drawn):
            break
    return count


def _draw(result: FrameResult, overlay: Annotator, faces_stream: str | None) -> list[Any]:
    """Draw the frame's faces (and face-like outputs) into ``result.drawn``; returns them."""
    outputs = result.outputs
    shown = result.faces + [
        item
        for name, value in outputs.items()
        if name != faces_stream
        for item in face_items(value, landmarks_only=faces_stream is not None)
    ]
    drawn = overlay.annotate_outputs(result.frame.image, shown, outputs)
    drawn.flags.writeable = False
    result.drawn = drawn
    return shown


def _write_outputs(
    result: FrameResult,
    writer: LandmarksWriter | None,
    renderer: Renderer | None,
    streams: Sequence[str],
    write_faces: bool,
    on_written: Callable[[FrameResult], object] | None,
    overlay: Annotator | None = None,
    faces_stream: str | None = None,
) -> None:
    """One frame's record and rendered image (drawn first when ``overlay`` is given)."""
    info, faces, outputs = result.frame.info, result.faces, result.outputs
    if overlay is not None:
        _draw(result, overlay, faces_stream)
    if writer is not None:
        writer.write(
            info,
            faces if write_faces else FACES_OMITTED,
            {name: outputs.get(name) for name in streams},
            face_extras(outputs, len(faces)) if write_faces else None,
        )
    if renderer is not None and result.drawn is not None:
        renderer.write(result.drawn, info)
    if on_written is not None:
        on_written(result)
