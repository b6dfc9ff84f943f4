"""serial_opencv: OpenCV on one thread inside the block, the caller's setting after it,
also when several threads are inside at once (the face crops of a ParallelMap)."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
from facegraph.vision.face.image_to_tensor import image_to_tensor
from facegraph.vision.face.types import NormalizedRect
from facegraph.vision.opencv_threads import serial_opencv


@pytest.fixture
def opencv_threads():
    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    yield
    cv2.setNumThreads(before)


def test_one_thread_inside_and_the_setting_restored_after(opencv_threads):
    with serial_opencv():
        assert cv2.getNumThreads() == 1
    assert cv2.getNumThreads() == 2


def test_restored_after_an_error_inside(opencv_threads):
    with pytest.raises(RuntimeError), serial_opencv():
        raise RuntimeError("boom")
    assert cv2.getNumThreads() == 2


def test_overlapping_users_restore_only_when_the_last_leaves(opencv_threads):
    inside = threading.Event()
    release = threading.Event()
    seen: list[int] = []

    def other() -> None:
        with serial_opencv():
            inside.set()
            release.wait(10)
            seen.append(cv2.getNumThreads())

    t = threading.Thread(target=other)
    t.start()
    assert inside.wait(10)
    with serial_opencv():
        assert cv2.getNumThreads() == 1
    # This thread left first: the other one is still inside, so still one thread.
    assert cv2.getNumThreads() == 1
    release.set()
    t.join(10)
    assert seen == [1]
    assert cv2.getNumThreads() == 2


def test_the_fast_crop_leaves_opencvs_setting_as_it_found_it(opencv_threads):
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8)
    rect = NormalizedRect(0.5, 0.5, 0.4, 0.5, 0.2)
    fast = image_to_tensor(image, rect, 192, 192, warp="fast").tensor
    assert cv2.getNumThreads() == 2
    cv2.setNumThreads(1)  # the user's own setting is kept too, and gives the same pixels
    again = image_to_tensor(image, rect, 192, 192, warp="fast").tensor
    assert cv2.getNumThreads() == 1
    assert np.array_equal(fast, again)
