"""OpenCV held at one thread around small per-frame calls (:func:`serial_opencv`).

OpenCV 5's ``warpAffine`` splits every call across OpenCV's thread pool (a
``parallel_for_`` over the output rows, with no minimum size), and the pool's workers
then busy-wait for the next job before they sleep. For a 192×192 face crop the split
saves ~35 µs of wall time, but the spinning worker then burns ~0.5 ms of a core per call
(measured here: 470-670 µs of worker CPU per crop at video rates, against ~80 µs of
actual work), the core that XNNPACK's second thread and the rest of the graph need on a
two-core machine. Held at one thread, the same call leaves no spinning worker.

``cv2.setNumThreads`` is process-wide, so the window is reference-counted: the first of
any concurrent users sets one thread, the last one out restores the setting it found.
OpenCV calls made by other threads inside the window run single-threaded too, which is
slower for them, never different (OpenCV's results do not depend on its thread count).
Setting one thread stops the pool's workers (OpenCV's pthreads pool, the one in the
opencv-python wheels); a parallel call already running in another thread still finishes,
its remaining stripes done by its own thread. Toggling costs well under a microsecond when
nothing else in the process uses the pool; if something does, the pool's threads are
started again by its next parallel call (tens of µs).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["serial_opencv"]

_lock = threading.Lock()
_users = 0
_saved = 0


@contextmanager
def serial_opencv() -> Iterator[None]:
    """OpenCV runs on one thread inside this block (see the module docstring)."""
    import cv2

    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = cv2.getNumThreads()
            if _saved != 1:
                cv2.setNumThreads(1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _saved != 1:
                cv2.setNumThreads(_saved)
