"""wait_holding_lock: a wait stopped by Ctrl-C leaves the condition's lock with its owner."""

from __future__ import annotations

import threading

import pytest
from facegraph.condition_wait import wait_holding_lock


class InterruptedCondition(threading.Condition):
    """A wait stopped by a signal while it takes the lock back: CPython's Condition.wait
    releases the lock, and the interrupted acquire in its ``finally`` raises without it.
    The signal's timing cannot be arranged, so this is that outcome, every time."""

    def wait(self, timeout: float | None = None) -> bool:
        self.release()
        raise KeyboardInterrupt


def test_an_interrupted_wait_raises_with_the_lock_taken_back() -> None:
    cond = InterruptedCondition()
    with pytest.raises(KeyboardInterrupt), cond:
        wait_holding_lock(cond)
    # The `with` released the lock the helper had taken back: free, and released once.
    assert cond.acquire(blocking=False)
    cond.release()


def test_without_it_the_with_block_releases_a_lock_it_no_longer_holds() -> None:
    """The failure the helper prevents: the KeyboardInterrupt is replaced by an error
    about the lock (and, had another thread taken it meanwhile, its hold is broken)."""
    cond = InterruptedCondition()
    with pytest.raises(RuntimeError, match="un-acquired lock"), cond:
        cond.wait()


def test_it_returns_what_wait_returns() -> None:
    cond = threading.Condition()
    with cond:
        assert wait_holding_lock(cond, 0.0) is False  # timed out

    waiting = threading.Event()
    notified: list[bool] = []

    def waiter() -> None:
        with cond:
            waiting.set()
            notified.append(wait_holding_lock(cond, 30.0))

    thread = threading.Thread(target=waiter)
    thread.start()
    assert waiting.wait(30.0)
    with cond:  # the waiter is inside wait() once it has given the lock up
        cond.notify_all()
    thread.join(30.0)
    assert notified == [True]
