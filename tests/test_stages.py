"""ReadAhead / WriteBehind (app/stages.py): order, bounds, errors, close and cancel.

Every wait here is on an event the code under test must set; no test depends on timing
(the only timeouts are a safety net turning a hang into a failure).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from facegraph.app.stages import ReadAhead, StageError, WriteBehind
from facegraph.vision.media import SourceError
from facegraph.vision.writers import OutputError

HANG = 30.0  # seconds: only ever reached when the code under test is broken


class Reading:
    """A source whose progress the test can see: ``produced`` counts the items handed out."""

    def __init__(self, n: int, *, fail_at: int | None = None) -> None:
        self.n = n
        self.fail_at = fail_at
        self.produced = 0
        self.blocked = threading.Event()  # set when the reader waits for room
        self.closed = threading.Event()
        self.closed_on: threading.Thread | None = None
        self.progress = threading.Condition()

    def __iter__(self) -> Iterator[int]:
        try:
            for i in range(self.n):
                if i == self.fail_at:
                    raise OSError(f"bad data at frame {i}")
                with self.progress:
                    self.produced += 1
                    self.progress.notify_all()
                yield i
        finally:
            self.closed_on = threading.current_thread()
            self.closed.set()

    def wait_produced(self, count: int) -> None:
        with self.progress:
            assert self.progress.wait_for(lambda: self.produced >= count, HANG)


def test_read_ahead_keeps_order_and_reads_everything() -> None:
    source = Reading(50)
    with ReadAhead(source, depth=3) as items:
        assert list(items) == list(range(50))
    assert source.closed.is_set()


def test_read_ahead_is_bounded() -> None:
    source = Reading(100)
    ahead = ReadAhead(source, depth=4)
    assert ahead.resume_at == 2
    items = iter(ahead)
    taken = []
    for _ in range(12):
        taken.append(next(items))
        # Whenever the reader waits for room, it holds one item more than the buffer's
        # (at most depth): never further ahead, however long the consumer takes.
        with ahead._cond:
            assert ahead._cond.wait_for(
                lambda: ahead._reader_waits and len(ahead._items) > ahead.resume_at, HANG
            )
            assert len(ahead._items) <= ahead.depth
            assert source.produced == len(taken) + len(ahead._items) + 1
    assert taken == list(range(12))
    ahead.close()
    assert source.produced <= 12 + 4 + 1
    assert source.closed.is_set()


def test_read_ahead_wakes_the_reader_once_per_batch() -> None:
    # A thread switch per frame costs more than the decoding it hides on a busy machine.
    source = Reading(100)
    ahead = ReadAhead(source, depth=4)
    items = iter(ahead)
    assert next(items) == 0
    with ahead._cond:
        assert ahead._cond.wait_for(lambda: ahead._reader_waits, HANG)
        produced = source.produced
    while True:
        with ahead._cond:
            left = len(ahead._items) - 1
        next(items)
        if left <= ahead.resume_at:
            break
        with ahead._cond:  # still above resume_at: the reader was not woken
            assert ahead._reader_waits and source.produced == produced
    # Down to resume_at: the reader refills the buffer in one go.
    with ahead._cond:
        assert ahead._cond.wait_for(
            lambda: ahead._reader_waits and len(ahead._items) == ahead.depth, HANG
        )
    ahead.close()


def test_read_ahead_raises_the_readers_error_after_the_items_before_it() -> None:
    source = Reading(10, fail_at=4)
    got: list[int] = []
    with (
        pytest.raises(StageError) as err,
        ReadAhead(source, name="reading clip.mp4") as items,
    ):
        for item in items:
            got.append(item)
    assert got == [0, 1, 2, 3]  # nothing read before the error is lost
    assert source.closed.is_set()
    # One line naming the stage (its file), the original kept as the cause.
    assert str(err.value) == "reading clip.mp4: OSError: bad data at frame 4"
    assert isinstance(err.value.__cause__, OSError)


def test_facegraph_errors_come_through_unchanged() -> None:
    # They already are one line naming their file (SourceError, OutputError, ...).
    def frames() -> Iterator[int]:
        yield 0
        raise SourceError("cannot decode clip.mp4: damaged")

    with pytest.raises(SourceError, match=r"cannot decode clip\.mp4"), ReadAhead(frames()) as items:
        list(items)

    def fail() -> None:
        raise OutputError("cannot write out.jsonl: No space left on device")

    writes = WriteBehind()
    writes.submit(fail)
    with pytest.raises(OutputError, match=r"out\.jsonl"):
        writes.close()


def test_read_ahead_close_stops_the_reader_and_closes_the_source_on_its_thread() -> None:
    source = Reading(10_000)
    ahead = ReadAhead(source, depth=2, name="reading clip")
    for item in ahead:
        if item == 2:
            break  # leaving the loop closes the generator, which closes the ReadAhead
    assert source.closed.is_set()  # close() waited for the reader
    assert source.closed_on is not None and source.closed_on.name == "reading clip"
    assert not ahead._thread.is_alive()
    assert source.produced < 10_000


def test_read_ahead_closed_before_iterating_never_reads() -> None:
    source = Reading(5)
    ReadAhead(source).close()
    assert source.produced == 0


def test_write_behind_runs_jobs_in_order_and_finishes_them_on_close() -> None:
    done: list[int] = []
    release = threading.Event()

    def job(i: int) -> None:
        if i == 0:
            assert release.wait(HANG)
        done.append(i)

    with WriteBehind(depth=100) as writes:
        for i in range(20):
            writes.submit(lambda i=i: job(i))
        assert done == []  # job 0 is held: nothing ran out of order
        release.set()
    assert done == list(range(20))  # close() ran every job submitted
    assert writes.completed == 20


def test_write_behind_is_bounded() -> None:
    release = threading.Event()
    started = threading.Event()
    writes = WriteBehind(depth=2)

    def held() -> None:
        started.set()
        assert release.wait(HANG)

    writes.submit(held)
    assert started.wait(HANG)  # the thread runs the first job ...
    writes.submit(lambda: None)
    writes.submit(lambda: None)  # ... and two wait: the queue is full
    assert len(writes._jobs) == 2
    submitted = threading.Event()
    waiting = threading.Event()  # the submitter waits for room
    real_wait = writes._cond.wait

    def wait(timeout: float | None = None) -> bool:
        if threading.current_thread().name == "submitter":
            waiting.set()
        return real_wait(timeout)

    writes._cond.wait = wait  # type: ignore[method-assign]

    def submit_one_more() -> None:
        writes.submit(lambda: None)
        submitted.set()

    submitter = threading.Thread(target=submit_one_more, name="submitter")
    submitter.start()
    assert waiting.wait(HANG)  # blocked: a slow disk holds the graph back
    assert not submitted.is_set() and len(writes._jobs) == 2
    release.set()
    assert submitted.wait(HANG)
    submitter.join(HANG)
    writes.close()
    assert writes.completed == 4


def test_write_behind_error_reaches_the_submitter_and_nothing_runs_after_it() -> None:
    done: list[int] = []
    failed = threading.Event()

    def job(i: int) -> None:
        if i == 3:
            failed.set()
            raise OSError("No space left on device")
        done.append(i)

    writes = WriteBehind(depth=100, start_at=1, name="writing out.jsonl")
    for i in range(4):
        writes.submit(lambda i=i: job(i))
    assert failed.wait(HANG)
    with pytest.raises(StageError, match=r"^writing out\.jsonl: OSError: No space left on device$"):
        for i in range(4, 100):
            writes.submit(lambda i=i: job(i))
    writes.close()  # already reported: close does not raise it twice
    assert done == [0, 1, 2]  # no gap: the jobs after the failed one never ran
    assert writes.completed == 3


def test_write_behind_error_is_raised_by_close() -> None:
    writes = WriteBehind(name="writing out.jsonl")

    def fail() -> None:
        raise ValueError("bad record at frame 7")

    writes.submit(fail)
    with pytest.raises(StageError, match=r"^writing out\.jsonl: ValueError: bad record at frame 7"):
        writes.close()


def test_write_behind_keeps_the_blocks_own_exception() -> None:
    done: list[int] = []

    def fail() -> None:
        raise OSError("disk")

    with pytest.raises(KeyboardInterrupt), WriteBehind() as writes:
        writes.submit(lambda: done.append(1))
        writes.submit(fail)
        raise KeyboardInterrupt  # a Ctrl-C: the frames done are still written
    assert done == [1]


def test_write_behind_cancel_drops_the_jobs_not_started() -> None:
    release = threading.Event()
    started = threading.Event()
    done: list[int] = []

    def held() -> None:
        started.set()
        assert release.wait(HANG)
        done.append(0)

    writes = WriteBehind(depth=10, start_at=1)
    writes.submit(held)
    assert started.wait(HANG)
    for i in range(1, 5):
        writes.submit(lambda i=i: done.append(i))
    canceller = threading.Thread(target=writes.cancel)
    canceller.start()
    # cancel() drops the waiting jobs at once, then waits for the running one.
    with writes._cond:
        assert writes._cond.wait_for(lambda: not writes._jobs, HANG)
    release.set()
    canceller.join(HANG)
    assert not canceller.is_alive()
    assert done == [0]
    with pytest.raises(RuntimeError, match="closed"):
        writes.submit(lambda: None)


def test_write_behind_starts_once_per_batch() -> None:
    # A thread switch per frame costs more than the writing it hides on a busy machine.
    done: list[int] = []
    writes = WriteBehind(depth=8)
    assert writes.start_at == 4
    for i in range(3):
        writes.submit(lambda i=i: done.append(i))
    with writes._cond:
        assert writes._cond.wait_for(lambda: writes._worker_waits, HANG)
        assert done == [] and len(writes._jobs) == 3  # waiting for a batch
    writes.submit(lambda: done.append(3))
    with writes._cond:  # a batch: the thread runs until none is left, then waits again
        assert writes._cond.wait_for(lambda: writes._worker_waits and not writes._jobs, HANG)
    assert done == [0, 1, 2, 3]
    writes.close()


def test_flush_waits_for_every_job() -> None:
    done: list[int] = []
    with WriteBehind(depth=3) as writes:
        for i in range(10):
            writes.submit(lambda i=i: done.append(i))
        writes.flush()
        assert done == list(range(10))


@pytest.mark.parametrize("depth", [0, -1])
def test_depth_must_be_positive(depth: int) -> None:
    with pytest.raises(ValueError, match="depth"):
        ReadAhead([], depth=depth)
    with pytest.raises(ValueError, match="depth"):
        WriteBehind(depth=depth)
