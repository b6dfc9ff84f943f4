"""``wait_holding_lock``: ``Condition.wait`` that never returns or raises without the lock.

Why: CPython's ``Condition.wait`` takes its lock back in a ``finally``, and that acquire
can be interrupted by a signal (Ctrl-C). ``wait`` then raises ``KeyboardInterrupt``
without the lock, and the caller's ``with cond:`` releases it on the way out: a lock that
another thread may hold by then (seen in the scheduler: a worker's ``notify_all`` failed
with "cannot notify on un-acquired lock"; elsewhere the ``with`` itself raises "cannot
release un-acquired lock" in place of the ``KeyboardInterrupt``). Every wait that can run
on the main thread (the one Python delivers signals to) goes through this helper.
"""

from __future__ import annotations

import threading

__all__ = ["wait_holding_lock"]


def wait_holding_lock(cond: threading.Condition, timeout: float | None = None) -> bool:
    """``cond.wait(timeout)``; if it raises without the lock, take the lock back first.

    ``cond`` must be built on an ``RLock`` (``threading.Condition()``'s default): a plain
    ``Lock`` cannot tell whether this thread holds it.
    """
    try:
        return cond.wait(timeout)
    except BaseException:
        # ``_is_owned`` is the check Condition itself makes; on an RLock it asks the owner.
        if not cond._is_owned():  # type: ignore[attr-defined]
            cond.acquire()
        raise
