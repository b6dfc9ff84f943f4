"""A minimal thread pool whose threads never keep the process alive.

``concurrent.futures.ThreadPoolExecutor`` joins its worker threads when the interpreter
exits, so a calculator stuck forever in ``process`` (a dead camera driver, a network
read without timeout) would make the whole program hang at exit even after the graph
was cancelled. These workers are daemon threads: a finished run still joins them
(:meth:`WorkerPool.shutdown` with ``wait=True``), but a stuck one is abandoned at exit.
Only what the scheduler needs: ``submit(fn, *args)``, ``shutdown(wait)`` and
``owns_current_thread()``; and :func:`allowed_cpu_count`, which sizes the pools of
``ParallelMap`` and the model threads of ``threads="auto"``.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Any

_Task = tuple[Callable[..., object], tuple[Any, ...]] | None


def allowed_cpu_count() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one (a container
    or ``taskset`` limits it below ``os.cpu_count()``), else every CPU."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


class WorkerPool:
    """Up to ``size`` daemon threads named ``{prefix}_{i}`` running submitted calls in order."""

    def __init__(self, size: int, prefix: str) -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least one thread, got {size}")
        self.size = size
        self.prefix = prefix
        self._tasks: queue.SimpleQueue[_Task] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._waiting = 0  # workers blocked on the queue
        self._queued = 0  # tasks not yet taken by a worker
        self._lock = threading.Lock()
        self._shutdown = False

    def submit(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on a pool thread (started on demand, at most ``size``)."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError(f"thread pool {self.prefix} is shut down")
            self._tasks.put((fn, args))
            self._queued += 1
            # A new thread only when the waiting ones cannot take every queued task: a
            # worker stuck in a call must not starve the others while room is left.
            if self._queued > self._waiting and len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._work, name=f"{self.prefix}_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._waiting += 1
            task = self._tasks.get()
            with self._lock:
                self._waiting -= 1
                if task is not None:
                    self._queued -= 1
            if task is None:
                return
            fn, args = task
            fn(*args)  # an exception here is a scheduler bug: threading.excepthook shows it

    def owns_current_thread(self) -> bool:
        """True on one of this pool's own threads (by identity, not by name)."""
        current = threading.current_thread()
        with self._lock:
            return any(thread is current for thread in self._threads)

    def shutdown(self, wait: bool = True) -> None:
        """Let the threads end once the queued calls are done; ``wait`` joins them.

        Never joins the calling thread (the scheduler may shut down from a worker).
        """
        with self._lock:
            if not self._shutdown:
                self._shutdown = True
                for _ in self._threads:
                    self._tasks.put(None)
            threads = list(self._threads)
        if wait:
            current = threading.current_thread()
            for thread in threads:
                if thread is not current:
                    thread.join()
