"""Overlap a run's I/O with its graph: a reading thread ahead of it, a writing thread behind.

``facegraph run`` processes one frame at a time (a tracking graph needs frame t's landmarks
for frame t+1), so decoding the next frame and writing the last one would otherwise wait
for the graph, and the graph for them. Two plain threads with bounded buffers take that
work off the graph's thread::

    from facegraph.app.stages import ReadAhead, WriteBehind

    with ReadAhead(source, name=f"reading {path}") as frames, WriteBehind(
        name=f"writing {out}"
    ) as writes:
        for frame in frames:                       # decoded (and converted) on the reader
            result = process(frame)
            writes.submit(lambda r=result: writer.write(r))   # run in order, behind

Both keep order, hold at most ``depth`` items (a slow graph blocks the reader, a slow
disk blocks :meth:`WriteBehind.submit`: memory stays bounded), wake their thread once per
small batch rather than per item (a thread switch per frame costs more than the overlap
gives on a busy 2-core machine), and hand any exception of their thread to the caller's
thread: the reader's where its item would have come (after every item read before it),
the writer's at the next :meth:`~WriteBehind.submit` or at :meth:`~WriteBehind.close`.
facegraph's own errors (which name their file) come unchanged; any other exception comes
as a :class:`StageError` whose one line starts with the stage's name (``reading
clip.mp4``, ``writing out.jsonl``), the original as its ``__cause__``.

Closing is clean either way: :meth:`ReadAhead.close` stops the reader and closes the
source's iterator on the reader's own thread (a generator must not be closed from a
thread other than the one running it); :meth:`WriteBehind.close` runs every job already
submitted (a Ctrl-C keeps every frame done), unless one failed: the jobs after a failed
one are not run, so an output never has a gap. Plain threads, not processes: decoding,
colour conversion, drawing and video encoding spend most of their time in C code that
releases the GIL, and the JSON line (orjson) is cheap.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

from facegraph import Closeable, FacegraphError
from facegraph.condition_wait import wait_holding_lock
from facegraph.models.worker_affinity import note_work_beside

__all__ = ["ReadAhead", "StageError", "WriteBehind"]

T = TypeVar("T")


class StageError(FacegraphError):
    """An unexpected exception on a stage's thread, named after the stage (its file)."""


def _named(exc: BaseException, stage: str) -> BaseException:
    """``exc`` as the caller should see it: facegraph's own errors (one line naming their
    file) and non-``Exception`` ones (KeyboardInterrupt) as they are, others named."""
    if isinstance(exc, FacegraphError) or not isinstance(exc, Exception):
        return exc
    error = StageError(f"{stage}: {type(exc).__name__}: {exc}")
    error.__cause__ = exc  # the original traceback stays in the report
    return error


_END = object()  # the source is exhausted


class ReadAhead(Closeable, Generic[T]):
    """Iterate ``source`` on a thread of its own, up to ``depth`` items ahead of the caller.

    Iterate it once (a context manager: ``with ReadAhead(src) as items: for x in items``).
    An exception raised by ``source`` is raised by the iteration in the caller's thread
    once the items before it have been taken. :meth:`close` (also on leaving the
    ``with``, or at the end of the iteration) stops the reader and waits for it, so the
    source can be closed safely afterwards.
    """

    def __init__(self, source: Iterable[T], *, depth: int = 4, name: str = "read-ahead") -> None:
        if depth < 1:
            raise ValueError(f"ReadAhead depth must be >= 1, got {depth}")
        self.depth = depth
        #: Once full, the reader resumes when the buffer is down to this many: one wake-up
        #: per ``depth - resume_at`` items, not one per item (each costs a thread switch).
        self.resume_at = depth // 2
        self.name = name
        self._source = source
        self._items: deque[object] = deque()
        self._error: BaseException | None = None
        self._cancelled = False
        self._reader_waits = False
        self._consumer_waits = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, name=name, daemon=True)
        self._started = False

    def _read(self) -> None:
        iterator = iter(self._source)
        try:
            for item in iterator:
                note_work_beside()  # this thread decodes beside the models
                with self._cond:
                    if len(self._items) >= self.depth:
                        self._reader_waits = True
                        self._cond.notify_all()  # no one waits on a full buffer: cheap
                        while len(self._items) > self.resume_at and not self._cancelled:
                            wait_holding_lock(self._cond)
                        self._reader_waits = False
                    if self._cancelled:
                        return
                    self._items.append(item)
                    if self._consumer_waits:
                        self._cond.notify_all()
        except BaseException as exc:  # handed to the consumer, whatever it is
            with self._cond:
                self._error = _named(exc, self.name)
        finally:
            # On this thread: a generator is closed by the thread that runs it.
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()
                except BaseException as exc:
                    with self._cond:
                        if self._error is None and not self._cancelled:
                            self._error = _named(exc, self.name)
            with self._cond:
                self._items.append(_END)
                self._cond.notify_all()

    def __iter__(self) -> Iterator[T]:
        if self._started:
            raise RuntimeError(f"{self.name}: a ReadAhead can be iterated once")
        self._started = True
        self._thread.start()
        try:
            while True:
                with self._cond:
                    while not self._items:
                        self._consumer_waits = True
                        wait_holding_lock(self._cond)
                    self._consumer_waits = False
                    item = self._items.popleft()
                    if self._reader_waits and len(self._items) <= self.resume_at:
                        self._cond.notify_all()  # room for the reader
                    if item is _END:
                        error, self._error = self._error, None
                        if error is not None:
                            raise error
                        return
                yield item  # type: ignore[misc]  # every item but _END is a T
        finally:
            self.close()

    def close(self) -> None:
        """Stop the reader (dropping what it read ahead) and wait until it has finished."""
        with self._cond:
            self._cancelled = True
            self._items.clear()
            self._cond.notify_all()
        if self._started and self._thread is not threading.current_thread():
            self._thread.join()


class WriteBehind(Closeable):
    """Run submitted jobs in order on a thread of its own, at most ``depth`` waiting.

    :meth:`submit` blocks while ``depth`` jobs are waiting, and raises the exception of
    a job that failed (the jobs submitted after it are not run: an output has no gap).
    :meth:`close` (also on leaving the ``with``) runs the jobs still waiting, stops the
    thread and raises a job's exception, unless the block is already leaving with one
    of its own (then that one goes on; the failed job's output has already reported
    itself, e.g. as ``failed``). :attr:`completed` counts the jobs that ran without error.

    The thread starts on ``start_at`` waiting jobs (default half of ``depth``) and then
    runs until none is left: one wake-up per batch, not per job (each costs a thread
    switch, and on a busy machine a wait for a core).
    """

    def __init__(
        self, *, depth: int = 8, start_at: int | None = None, name: str = "write-behind"
    ) -> None:
        if depth < 1:
            raise ValueError(f"WriteBehind depth must be >= 1, got {depth}")
        self.depth = depth
        self.start_at = max(1, min(depth, start_at if start_at is not None else depth // 2))
        self.name = name
        #: Jobs that ran to completion.
        self.completed = 0
        self._jobs: deque[Callable[[], object]] = deque()
        self._error: BaseException | None = None
        self._closing = False
        self._flushing = 0  # callers waiting in flush(): run whatever is there
        self._running = False  # a job is being run (taken off the deque, not finished)
        self._worker_waits = False
        self._submitter_waits = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                if not self._jobs:
                    self._cond.notify_all()  # flush() and close() wait for "none left"
                    self._worker_waits = True
                    while (
                        len(self._jobs) < self.start_at and not self._closing and not self._flushing
                    ):
                        wait_holding_lock(self._cond)
                    self._worker_waits = False
                if not self._jobs:
                    if self._closing:
                        return
                    continue  # a flush with nothing to run
                job = self._jobs.popleft()
                self._running = True
                if self._submitter_waits:
                    self._cond.notify_all()  # room for the submitter
            note_work_beside()  # this thread writes beside the models
            try:
                job()
            except BaseException as exc:  # handed to the submitter, whatever it is
                with self._cond:
                    self._error = _named(exc, self.name)
                    self._jobs.clear()  # never write past a failure
                    self._running = False
                    self._cond.notify_all()
                return
            with self._cond:
                self.completed += 1
                self._running = False

    def _raise_error(self) -> None:
        error = self._error
        if error is not None:
            self._error = None
            self._closing = True
            raise error

    def submit(self, job: Callable[[], object]) -> None:
        """Queue ``job`` (waits while ``depth`` are queued); raises an earlier job's error."""
        with self._cond:
            if self._closing and self._error is None:
                raise RuntimeError(f"{self.name}: closed")
            while len(self._jobs) >= self.depth and self._error is None:
                self._submitter_waits = True
                self._cond.notify_all()  # the thread runs while the queue is full
                wait_holding_lock(self._cond)
            self._submitter_waits = False
            self._raise_error()
            self._jobs.append(job)
            if self._worker_waits and len(self._jobs) >= self.start_at:
                self._cond.notify_all()

    def flush(self) -> None:
        """Wait until every submitted job has run; raises a job's error."""
        with self._cond:
            self._flushing += 1
            try:
                self._cond.notify_all()
                while (self._jobs or self._running) and self._error is None:
                    wait_holding_lock(self._cond)
            finally:
                self._flushing -= 1
            self._raise_error()

    def close(self) -> None:
        """Run the jobs still waiting, stop the thread; raises a job's error."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._join()
        with self._cond:
            self._raise_error()

    def _join(self) -> None:
        if self._thread is threading.current_thread():
            return
        try:
            self._thread.join()
        except BaseException:
            # Interrupted (a second Ctrl-C): drop the jobs not started, but wait for the
            # running one, so that no output is closed while it is being written to.
            with self._cond:
                self._jobs.clear()
                self._cond.notify_all()
            self._thread.join()
            raise

    def cancel(self) -> None:
        """Drop the jobs not started yet and stop the thread (after the job it is running)."""
        with self._cond:
            self._jobs.clear()
            self._closing = True
            self._cond.notify_all()
        self._join()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # The frames done so far are still written (a Ctrl-C loses none); a failed write
        # is not raised over the block's own exception, which is the one to report.
        with contextlib.suppress(Exception):
            self.close()
