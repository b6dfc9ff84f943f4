"""Run a graph over one input (images, a video or a camera) into outputs: the core of ``run``.

::

    from facegraph.app.runner import run_source

    summary = run_source("face_mesh", "clip.mp4", output="out.jsonl", render="out.mp4")
    print(summary.frames, summary.faces, summary.fps, summary.errors)

:func:`run_source` is what ``facegraph run`` and ``facegraph batch`` call for each input,
so both write identical files. It opens the source (:func:`~.media.open_source`
spelling: ``"0"``, ``"photo.jpg"``, ``"dir/"``, ``"*.png"``, ``"clip.mp4"``), loads and
starts the graph, feeds each frame with ``Graph.run_once`` at the frame's timestamp
(:func:`~.media_loop.run_frames`), writes the faces (JSONL/JSON/stdout), renders the
overlay (video, image or folder), and optionally shows it (window) or serves it (web
page). Cameras keep only their newest frame (a flow limiter: a slow graph drops frames,
counted in :attr:`RunSummary.dropped`, instead of lagging behind).

Stopping: ``stop`` (a :class:`threading.Event`) ends the run after the current frame as
if the input had ended (it also ends a long glob listing); :func:`stop_on_signals` sets
one on Ctrl-C and SIGTERM. A ``KeyboardInterrupt`` also ends it. Either way every output
is finished and moved into place (outputs are written to hidden temporaries beside their
names until then), and the summary says ``stopped``. Files of a directory that cannot
be read are skipped (named on stderr) and listed in :attr:`RunSummary.errors`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from facegraph import FacegraphError
from facegraph.env_flags import env_flag

if TYPE_CHECKING:
    from facegraph import Graph, GraphSpec
    from facegraph.app.media_loop import FrameResult
    from facegraph.profiler import GraphStats
    from facegraph.vision.media import Frame, FrameSource

__all__ = [
    "SAMPLE_VIDEO",
    "RunError",
    "RunSummary",
    "default_input",
    "run_source",
    "sample_video",
    "stop_on_signals",
]

Mode = Literal["threads", "deterministic"]
#: ``"auto"``: deterministic for a file input, the thread pool for a camera or a live page.
RunMode = Literal["threads", "deterministic", "auto"]

#: The bundled sample clip, inside the ``facegraph.graphs`` package.
SAMPLE_VIDEO = "samples/face_sample.mp4"


class RunError(FacegraphError):
    """The run cannot be set up (graph without an input stream, bad option combination)."""


@dataclass(slots=True)
class RunSummary:
    """What one :func:`run_source` call did."""

    graph: str
    """The graph's name."""
    source: str
    """The input, as given (or the sample's path)."""
    frames: int = 0
    """Frames processed."""
    faces: int = 0
    """Faces found, summed over frames."""
    frames_with_faces: int = 0
    """Frames with at least one face."""
    elapsed: float = 0.0
    """Seconds from the first frame requested to the last one finished (graph start excluded)."""
    errors: list[tuple[str, str]] = field(default_factory=list)
    """``(path, reason)`` of every input file that was skipped."""
    dropped: int = 0
    """Camera frames dropped by the flow limiter (the graph was busy)."""
    outputs: list[str] = field(default_factory=list)
    """Files or folders written (landmarks first, then the rendering); ``-`` for stdout."""
    landmarks: str | None = None
    """The landmarks output (``-`` for stdout), if any."""
    rendering: str | None = None
    """The rendered video, image or folder, if any."""
    stopped: str = "end"
    """Why the run ended: ``end`` (input exhausted), ``max_frames``, ``stop`` (stop event:
    Ctrl-C or SIGTERM), ``interrupt`` (KeyboardInterrupt) or ``window`` (closed)."""
    stats: GraphStats | None = None
    """Per-node timings (``profile=True``) and queue stats, taken at the end."""
    live: bool = False
    """The input was a camera."""
    url: str | None = None
    """The live page's address when serving."""
    mode: Mode = "threads"
    """The scheduler mode the graph ran in (``"auto"`` resolved)."""

    @property
    def fps(self) -> float:
        """Frames processed per second of :attr:`elapsed`."""
        return self.frames / self.elapsed if self.elapsed > 0 else 0.0


def sample_video() -> contextlib.AbstractContextManager[Path]:
    """The bundled sample clip as a file path (a context manager, as importlib.resources)."""
    from importlib.resources import as_file, files

    resource = files("facegraph.graphs").joinpath(*SAMPLE_VIDEO.split("/"))
    return as_file(resource)


def _camera_candidates() -> bool:
    """Whether looking for a camera is worth it (Linux: a /dev/video* node exists)."""
    if env_flag("FACEGRAPH_NO_CAMERA", default=False):
        return False
    if sys.platform.startswith("linux"):
        return any(Path("/dev").glob("video*"))
    return True


def _probe_camera(index: int, timeout: float) -> FrameSource | None:
    """Open camera ``index`` within ``timeout`` s and wait for its first frame, else None."""
    import cv2
    from facegraph.vision.media import CameraSource, SourceError

    result: list[Any] = []

    def attempt() -> None:
        log = cv2.utils.logging
        level = log.getLogLevel()
        try:
            log.setLogLevel(log.LOG_LEVEL_ERROR)  # "no camera" is expected here, not a warning
            cap = cv2.VideoCapture(index)
            if cap.isOpened() and cap.grab():
                result.append(cap)
            else:
                cap.release()
        except Exception:  # a broken backend means "no camera" here
            pass
        finally:
            log.setLogLevel(level)

    thread = threading.Thread(target=attempt, name="camera probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive() or not result:
        return None  # a hung driver: give up on it (the daemon thread is abandoned)
    try:
        return CameraSource.from_capture(result[0], f"camera:{index}")
    except SourceError:
        return None


def default_input(*, camera_timeout: float = 3.0) -> tuple[FrameSource | None, str]:
    """The input when none is given: camera 0 if it opens and delivers, else the sample.

    Returns ``(opened camera or None, description)``; with None the caller runs
    :func:`sample_video`. Set ``FACEGRAPH_NO_CAMERA=1`` to skip the camera.
    """
    if _camera_candidates():
        camera = _probe_camera(0, camera_timeout)
        if camera is not None:
            return camera, "camera 0"
        return None, "no camera could be opened"
    return None, "no camera found"


def stop_on_signals(
    event: threading.Event | None = None,
    *,
    on_stop: Callable[[str], object] | None = None,
) -> contextlib.AbstractContextManager[threading.Event]:
    """Within the block, Ctrl-C and SIGTERM set ``event`` (a second Ctrl-C interrupts hard).

    ``on_stop(signal_name)`` is called from the handler (a message such as "stopping
    after this frame"; or an exception, raised in the main thread, to stop at once). Outside
    the main thread this does nothing but yield the event.
    """
    return _stop_on_signals(event if event is not None else threading.Event(), on_stop)


@contextlib.contextmanager
def _stop_on_signals(
    event: threading.Event, on_stop: Callable[[str], object] | None
) -> Iterator[threading.Event]:
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    previous: dict[int, Any] = {}

    def handler(signum: int, _frame: Any) -> None:
        if event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the user insists: stop now (outputs still closed)
        event.set()
        if on_stop is not None:
            on_stop(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is signal.SIG_IGN:
            continue  # ignored by whoever started us (nohup, a background job): keep it so
        previous[sig] = signal.signal(sig, handler)
    try:
        yield event
    finally:
        for number, old in previous.items():
            # None: a handler not set from Python; the default is the closest to restore.
            signal.signal(number, signal.SIG_DFL if old is None else old)


def _frames_until(
    source: Iterable[Frame], stop: threading.Event | None, state: dict[str, str]
) -> Iterator[Frame]:
    """The source's frames, ending early (cleanly) once ``stop`` is set."""
    for frame in source:
        if stop is not None and stop.is_set():
            state["stopped"] = "stop"
            return
        yield frame
    if stop is not None and stop.is_set():
        state["stopped"] = "stop"


def _looped(first: FrameSource, reopen: Callable[[], FrameSource]) -> Iterator[Frame]:
    """``first``'s frames, then those of ``reopen()`` again and again (``--loop``).

    Each pass continues the frame indices and timestamps of the one before (one frame
    interval after its last frame), because a graph's timestamps must keep increasing.
    A pass without any frame ends the loop instead of spinning.
    """
    source: FrameSource = first
    index_offset, ts_offset = 0, 0
    step = round(1e6 / (first.fps or 30.0))
    try:
        while True:
            last: Frame | None = None
            for frame in source:
                info = frame.info
                last = replace(
                    frame,
                    info=replace(
                        info,
                        index=info.index + index_offset,
                        timestamp_us=info.timestamp_us + ts_offset,
                    ),
                )
                yield last
            if last is None:
                return
            index_offset = last.info.index + 1
            ts_offset = last.info.timestamp_us + step
            if source is not first:
                source.close()
            source = reopen()
    finally:
        if source is not first:
            source.close()


def _paced(frames: Iterable[Frame], stop: threading.Event | None) -> Iterator[Frame]:
    """Frames released at their timestamps' pace from the first one (``--realtime``).

    Waits on ``stop`` so that Ctrl-C is not delayed by a long pause.
    """
    waiter = stop if stop is not None else threading.Event()
    start: tuple[float, int] | None = None
    for frame in frames:
        if start is None:
            start = (time.monotonic(), frame.info.timestamp_us)
        due = start[0] + (frame.info.timestamp_us - start[1]) / 1e6
        delay = due - time.monotonic()
        if delay > 0 and waiter.wait(delay):
            yield frame  # stopping: the loop above ends after this frame
            return
        yield frame


def select_streams(spec: GraphSpec, names: Sequence[str] | None) -> list[str]:
    """The graph outputs to write: ``names`` checked against the graph's (default: all).

    Raises :class:`RunError` naming an unknown stream, the graph's outputs and a near miss.
    """
    outputs = list(spec.output_streams)
    if names is None:
        return outputs
    chosen: list[str] = []
    for name in names:
        if name not in outputs:
            from facegraph.named_registry import did_you_mean

            raise RunError(
                f"--streams: graph '{spec.name}' has no output stream "
                f"'{name}'{did_you_mean(name, outputs)}; "
                f"its outputs: {', '.join(outputs) or 'none'}"
            )
        if name not in chosen:
            chosen.append(name)
    return chosen


def _input_stream(spec: GraphSpec) -> str:
    if "image" in spec.input_streams:
        return "image"
    if len(spec.input_streams) == 1:
        return spec.input_streams[0]
    if not spec.input_streams:
        raise RunError(
            f"graph '{spec.name}' has no input stream, so it cannot take --input "
            "(it runs its own sources: run it without --input)"
        )
    raise RunError(
        f"graph '{spec.name}' has several input streams ({', '.join(spec.input_streams)}) "
        "and none is named 'image'; cannot tell where frames go"
    )


class _Progress:
    """A rich progress bar on stderr (frames, frames/s, ETA) for file inputs on a terminal."""

    def __init__(self, total: int | None, description: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>6.1f} frames/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task(description, total=total, rate=0.0)
        self._t0 = time.perf_counter()
        self._n = 0
        self._progress.start()

    def advance(self) -> None:
        self._n += 1
        dt = time.perf_counter() - self._t0
        self._progress.update(self._task, advance=1, rate=self._n / dt if dt > 0 else 0.0)

    def close(self) -> None:
        self._progress.stop()


def _want_progress(source: FrameSource) -> bool:
    if source.live or not source.frame_count or source.frame_count < 2:
        return False
    return sys.stderr.isatty() and sys.stdout.isatty()


def run_source(
    graph: str | os.PathLike[str] | GraphSpec,
    source: str | os.PathLike[str] | FrameSource,
    *,
    output: str | os.PathLike[str] | None = None,
    render: str | os.PathLike[str] | None = None,
    side_packets: Mapping[str, Any] | None = None,
    max_frames: int | None = None,
    progress: bool = False,
    mode: RunMode = "threads",
    profile: bool = False,
    trace: str | os.PathLike[str] | None = None,
    on_frame: Callable[[FrameResult], object] | None = None,
    show: bool = False,
    serve: str | int | None = None,
    stop: threading.Event | None = None,
    allow_imports: bool = False,
    fps: float | None = None,
    on_start: Callable[[RunSummary], object] | None = None,
    streams: Sequence[str] | None = None,
    realtime: bool | None = None,
    loop: bool | None = None,
) -> RunSummary:
    """Run ``graph`` over every frame of ``source``; write, render, show; return a summary.

    - ``graph``: a shipped graph name, a YAML path or a loaded :class:`~facegraph.GraphSpec`;
      frames go to its ``image`` input (or its only input), faces come from ``faces`` (or
      ``detections``).
    - ``source``: an input spelling for :func:`~.media.open_source` or an opened
      :class:`~.media.FrameSource` (closed at the end either way).
    - ``output``: ``.jsonl``, ``.json`` or ``"-"`` (stdout); ``render``: a video file, an
      image file (one frame) or a folder.
    - ``progress``: show a bar on stderr when both stdout and stderr are terminals and the
      input is a file with a known length.
    - ``on_frame(result)`` after each frame; ``on_start(summary)`` once everything is
      open (``summary.url`` is set when serving).
    - ``serve``: ``PORT`` or ``HOST:PORT`` for the live page (loopback by default);
      ``show``: an OpenCV window (needs a GUI build of OpenCV).
    - ``fps``: frame rate used for the timestamps of image inputs (default 30).
    - ``streams``: the graph outputs written to ``output`` (default: all). The faces
      stream is written under ``"faces"``, every other stream under its own name.
    - ``mode``: the scheduler (:class:`~facegraph.Graph`); ``"auto"`` runs a file input
      deterministically (one frame at a time on this thread: with ``run_once`` per frame
      the pool's thread handoffs cost more than the little parallelism they allow), and a
      camera or a served page in the thread pool (the page reads the profiler while the
      graph runs).
    - ``realtime``: release file frames at their frame rate; ``loop``: start a file input
      again at its end, until stopped (needs a source given by name, so that it can be
      reopened). Both default to on when serving, off otherwise; cameras ignore them.

    Before anything is written, every output is checked against the inputs and the other
    outputs (:func:`~.output_guard.check_outputs`) and opened as a hidden temporary beside
    its name; the outputs are moved into place when the run ends. Raises
    :class:`~facegraph.FacegraphError` subclasses with one-line messages (missing input,
    an output that would overwrite an input, unwritable output, graph problems). A run
    that fails before its first frame leaves existing files untouched; a later failure
    raises after every output has been finished with the frames done so far (listed in
    ``on_start``'s ``summary.outputs``). ``KeyboardInterrupt`` is not raised but reported
    as ``stopped == "interrupt"``.
    """
    from facegraph import Graph, GraphSpec, load_graph
    from facegraph.app.media_loop import faces_stream_of, run_frames
    from facegraph.app.output_guard import check_outputs
    from facegraph.app.stages import ReadAhead, WriteBehind
    from facegraph.vision.media import FrameSource, ImageFiles, open_source

    spec = graph if isinstance(graph, GraphSpec) else load_graph(graph, allow_imports=allow_imports)
    input_stream = _input_stream(spec)
    faces_stream = faces_stream_of(spec)
    written = select_streams(spec, streams)
    if loop and isinstance(source, FrameSource):
        raise RunError("loop=True needs the input by name (it is reopened at its end)")
    source_name = None if isinstance(source, FrameSource) else os.fspath(source)
    if loop is None:
        loop = serve is not None and not isinstance(source, FrameSource)
    if realtime is None:
        realtime = serve is not None

    with contextlib.ExitStack() as stack:
        if isinstance(source, FrameSource):
            frames_source = source
        else:
            frames_source = open_source(os.fspath(source), fps=fps, stop=stop)
        stack.callback(frames_source.close)
        summary = RunSummary(
            graph=spec.name, source=frames_source.name or str(source), live=frames_source.live
        )
        if mode == "auto":
            live = frames_source.live or serve is not None
            summary.mode = "threads" if live else "deterministic"
        else:
            summary.mode = mode
        # Before anything is written: no output may overwrite an input or another output.
        check_outputs(
            None if isinstance(source, FrameSource) else os.fspath(source),
            frames_source.input_files(),
            {"--output": output, "--render": render, "--trace": trace},
        )
        outputs = _Outputs()
        try:
            renderer, writer, trace_file = _open_outputs(
                outputs, output, render, trace, fps=frames_source.fps, summary=summary
            )
            window = None
            if show:
                from facegraph.vision.live import LiveWindow

                window = LiveWindow(f"facegraph: {spec.name}")
                stack.callback(window.close)

            # The live page shows per-node timings: they need the graph's profiler.
            g = Graph(
                spec,
                mode=summary.mode,
                profile=profile or serve is not None,
                trace=None if trace_file is None else trace_file.temp,
            )
            if trace_file is not None:
                trace_file.graph = g
            server = None
            if serve is not None:
                from facegraph.vision.live import LiveServer, graph_stats_dict, parse_serve_address

                host, port = parse_serve_address(serve)
                server = stack.enter_context(
                    LiveServer(host, port, stats=lambda: graph_stats_dict(g.stats()))
                )
                summary.url = server.url
            g.start(side_packets or {})
        except BaseException:
            outputs.finish(keep=False)  # nothing ran: earlier files stay as they were
            raise

        bar: _Progress | None = None

        def frame_written(result: FrameResult) -> None:
            # Counted once its outputs are written (on the writing thread): a failed write
            # leaves the count at the frames the kept outputs really hold.
            n = len(result.faces)
            summary.faces += n
            summary.frames_with_faces += n > 0
            summary.frames += 1

        def frame_done(result: FrameResult) -> None:
            summary.elapsed = time.perf_counter() - t0
            if bar is not None:
                bar.advance()
            if on_frame is not None:
                on_frame(result)

        state = {"stopped": "end"}
        try:
            if on_start is not None:
                on_start(summary)
            if progress and _want_progress(frames_source):
                total = frames_source.frame_count
                if total is not None and max_frames is not None:
                    total = min(total, max_frames)
                bar = _Progress(total, Path(summary.source).name or "frames")
                stack.callback(bar.close)
            t0 = time.perf_counter()
            failed = True
            try:
                # Leaving the block finishes every write of the frames done (also on
                # Ctrl-C) and stops the reader before the source is closed; a write that
                # failed is raised here unless an error of the run itself is on its way.
                with contextlib.ExitStack() as stages:
                    from facegraph.vision.writers import FACE_EXTRA_STREAMS

                    write_faces = faces_stream is not None and faces_stream in written
                    frames: Iterable[Frame] = frames_source
                    if loop and not frames_source.live:
                        frames = _looped(
                            frames_source, lambda: open_source(str(source_name), fps=fps)
                        )
                    if not frames_source.live:
                        # Decode (and convert) frame t+1 while the graph runs frame t. Not for
                        # a camera: it already reads on a thread and hands over its newest frame.
                        frames = stages.enter_context(
                            ReadAhead(frames, name=f"reading {summary.source}")
                        )
                    if realtime and not frames_source.live:
                        frames = _paced(frames, stop)
                    # Write frame t (JSON, video encoding) while the graph runs frame t+1; on
                    # leaving, every frame done is written (closed before the outputs are).
                    behind = stages.enter_context(
                        WriteBehind(name=f"writing {', '.join(outputs.paths) or 'the outputs'}")
                    )
                    count = run_frames(
                        g,
                        _frames_until(frames, stop, state),
                        input_stream=input_stream,
                        faces_stream=faces_stream,
                        # blendshapes / geometry go into each face's object (face_extras)
                        streams=[
                            s
                            for s in written
                            if s != faces_stream and not (write_faces and s in FACE_EXTRA_STREAMS)
                        ],
                        write_faces=write_faces,
                        writer=writer,
                        renderer=renderer,
                        server=server,
                        window=window,
                        max_frames=max_frames,
                        on_frame=frame_done,
                        write_behind=behind,
                        on_written=frame_written,
                        # A caller's on_frame may look at result.drawn: then draw here.
                        draw_behind=on_frame is None,
                    )
                failed = False
            except KeyboardInterrupt:
                state["stopped"] = "interrupt"
                failed = False
                count = summary.frames
            finally:
                summary.elapsed = time.perf_counter() - t0
                if failed:
                    g.cancel()
                summary.errors = list(getattr(frames_source, "skipped", []))
                summary.dropped = int(getattr(frames_source, "dropped", 0))
            if state["stopped"] == "end":
                if max_frames is not None and count >= max_frames:
                    state["stopped"] = "max_frames"
                elif window is not None and not getattr(window, "_open", True):
                    state["stopped"] = "window"
            summary.stopped = state["stopped"]
            if summary.stopped == "interrupt":
                g.cancel()
                if trace_file is not None:
                    trace_file.required = False  # a cancelled graph may not write it
            else:
                g.close_all_inputs()
                g.wait_until_done()
        except BaseException as exc:
            # A run that fails before its first frame leaves existing files untouched; a
            # later failure keeps what was done (and says so).
            problems = outputs.finish(keep=summary.frames > 0)
            summary.outputs = list(outputs.kept)  # what the caller can tell the user it kept
            if problems and isinstance(exc, FacegraphError):
                raise RunError(f"{exc}; also: {'; '.join(problems)}") from exc
            raise
        problems = outputs.finish(keep=True)
        if problems:
            summary.outputs = list(outputs.kept)
            raise RunError("; ".join(problems))
        summary.stats = g.stats()
        if isinstance(frames_source, ImageFiles):
            summary.errors = list(frames_source.skipped)
    return summary


class _TraceFile:
    """The ``--trace`` file: the graph writes a temporary, moved into place at the end."""

    def __init__(self, path: str) -> None:
        from facegraph.atomic_files import clean_stale_temps_of, describe_os_error, temp_path

        self.path = path
        #: A missing trace is an error (not after a hard interrupt: the graph was cancelled).
        self.required = True
        #: The graph writing the temporary (its ``trace_error`` says why a write failed).
        self.graph: Graph | None = None
        target = Path(path)
        if target.is_dir():
            raise RunError(f"cannot write the trace {path}: it is a folder")
        try:
            clean_stale_temps_of(target)
        except OSError as exc:  # a loop of symbolic links
            raise RunError(f"cannot write the trace {path}: {describe_os_error(exc)}") from None
        self.temp = str(temp_path(target))
        try:
            with open(self.temp, "x"):  # proves the folder takes new files, now
                pass
        except OSError as exc:
            raise RunError(f"cannot write the trace {path}: {describe_os_error(exc)}") from None

    def close(self) -> None:
        from facegraph.atomic_files import describe_os_error, replace_into_place

        try:
            with open(self.temp, encoding="utf-8") as f:
                json.load(f)  # the graph writes it at the end; a full disk leaves half of it
        except (OSError, ValueError):
            if not self.required:
                self.discard()
                return
            error = None if self.graph is None else self.graph.trace_error
            if error is not None:  # the graph's write failed (and left no temporary)
                reason = describe_os_error(error)
            else:
                reason = "the graph wrote no complete trace"
                with contextlib.suppress(OSError):
                    if os.statvfs(os.path.dirname(self.temp) or ".").f_bavail == 0:
                        reason = "No space left on device (the disk is full)"
            self.discard()
            raise RunError(f"cannot write the trace {self.path}: {reason}") from None
        try:
            replace_into_place(self.temp, self.path)
        except OSError as exc:
            raise RunError(
                f"cannot write the trace {self.path}: {describe_os_error(exc)}"
            ) from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(self.temp)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.temp)


class _Outputs:
    """The run's files (landmarks, rendering, trace): all kept or all dropped at the end."""

    def __init__(self) -> None:
        self._items: list[Any] = []
        self.paths: list[str] = []
        self.kept: list[str] = []

    def add(self, item: Any, path: str) -> Any:
        self._items.append(item)
        self.paths.append(path)
        return item

    def finish(self, *, keep: bool) -> list[str]:
        """Close (move into place) or discard every output; the messages of those that failed.

        Afterwards :attr:`kept` lists the outputs now in place.
        """
        problems: list[str] = []
        for item, path in zip(self._items, self.paths, strict=True):
            try:
                if keep and not getattr(item, "failed", False):
                    item.close()
                    self.kept.append(path)
                else:
                    item.discard()
            except FacegraphError as exc:
                problems.append(str(exc))
        self._items.clear()
        return problems


def _open_outputs(
    outputs: _Outputs,
    output: str | os.PathLike[str] | None,
    render: str | os.PathLike[str] | None,
    trace: str | os.PathLike[str] | None,
    *,
    fps: float | None,
    summary: RunSummary,
) -> tuple[Any, Any, _TraceFile | None]:
    """Open the outputs as temporaries (nothing existing is touched yet)."""
    for target in (output, render, trace):
        # "out/landmarks.jsonl" works without creating "out/" first.
        text = None if target is None else os.fspath(target)
        if text is not None and text != "-":
            _make_parent(text)
    renderer = None
    if render is not None:
        from facegraph.vision.render import open_renderer

        renderer = outputs.add(open_renderer(render, fps=fps), os.fspath(render))
        summary.rendering = os.fspath(render)
    writer = None
    if output is not None:
        from facegraph.vision.writers import LandmarksWriter

        writer = outputs.add(LandmarksWriter(output), os.fspath(output))
        summary.landmarks = writer.path
    trace_file = None
    if trace is not None:
        trace_file = outputs.add(_TraceFile(os.fspath(trace)), os.fspath(trace))
    summary.outputs = [p for p in (summary.landmarks, summary.rendering) if p is not None]
    return renderer, writer, trace_file


def _make_parent(path: str) -> None:
    parent = Path(path).parent
    if parent.is_dir():
        return
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in [parent, *parent.parents] if p.is_file()), parent)
        raise RunError(f"cannot write {path}: {blocker} is a file, not a folder") from None
    except OSError as exc:
        raise RunError(f"cannot create the folder of {path}: {exc.strerror or exc}") from None
