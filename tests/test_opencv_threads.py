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


def test_other_threads_parallel_opencv_calls_stay_correct_while_crops_toggle_the_pool(
    opencv_threads,
):
    """A user's thread running OpenCV's parallel calls while face crops toggle the pool:
    every result equals the one computed alone, and nothing deadlocks."""
    rng = np.random.default_rng(1)
    big = rng.integers(0, 256, (720, 1280, 3), np.uint8)
    expected = cv2.GaussianBlur(big, (9, 9), 2.0)
    image = rng.integers(0, 256, (480, 640, 3), np.uint8)
    rect = NormalizedRect(0.5, 0.5, 0.4, 0.5, 0.2)
    crop = image_to_tensor(image, rect, 192, 192, warp="fast").tensor
    start = threading.Event()
    stop = threading.Event()
    wrong: list[int] = []
    done: list[int] = []

    def user() -> None:
        start.wait(10)
        n = 0
        while not stop.is_set() or n < 5:
            if not np.array_equal(cv2.GaussianBlur(big, (9, 9), 2.0), expected):
                wrong.append(n)
            n += 1
        done.append(n)

    t = threading.Thread(target=user)
    t.start()
    start.set()
    for _ in range(200):
        assert np.array_equal(image_to_tensor(image, rect, 192, 192, warp="fast").tensor, crop)
    stop.set()
    t.join(60)
    assert not t.is_alive() and done and not wrong
    assert cv2.getNumThreads() == 2
