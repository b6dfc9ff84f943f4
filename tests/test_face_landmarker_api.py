"""facegraph.FaceLandmarker: MediaPipe Tasks' API shape, modes, errors and live stream."""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from facegraph import (
    BaseOptions,
    FaceLandmarker,
    FaceLandmarkerOptions,
    Image,
    ImageFormat,
    RunningMode,
)
from facegraph.models import ModelError, model_path

FACES = Path(__file__).parent / "fixtures" / "faces"


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    bgr = cv2.imread(str(FACES / "astronaut.png"))
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def test_detect_returns_mediapipe_shaped_result(astronaut: np.ndarray) -> None:
    with FaceLandmarker.create_from_options(FaceLandmarkerOptions()) as landmarker:
        result = landmarker.detect(Image(image_format=ImageFormat.SRGB, data=astronaut))
    assert len(result.face_landmarks) == 1 and len(result.face_landmarks[0]) == 478
    nose = result.face_landmarks[0][1]
    h, w = astronaut.shape[:2]
    # The nose tip lies inside the face's landmark box, in normalised coordinates.
    arr = result.landmarks_array()
    assert arr.shape == (1, 478, 3) and arr.dtype == np.float32
    assert arr[0, :, 0].min() < nose.x < arr[0, :, 0].max()
    assert 0 < nose.x * w < w and 0 < nose.y * h < h
    assert result.face_blendshapes == [] and result.facial_transformation_matrixes == []


def test_image_formats_convert_to_rgb(astronaut: np.ndarray) -> None:
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    with FaceLandmarker.create_from_model_path(model_path("face_landmarker")) as landmarker:
        a = landmarker.detect(astronaut).landmarks_array()
        b = landmarker.detect(Image(ImageFormat.SRGBA, rgba)).landmarks_array()
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="SRGB needs 3 channel"):
        Image(ImageFormat.SRGB, rgba)


def test_wrong_method_for_the_mode_is_refused(astronaut: np.ndarray) -> None:
    with FaceLandmarker.create_from_options(FaceLandmarkerOptions()) as landmarker:
        with pytest.raises(ValueError, match="not initialized with the video mode"):
            landmarker.detect_for_video(astronaut, 0)
        with pytest.raises(ValueError, match="not initialized with the live_stream mode"):
            landmarker.detect_async(astronaut, 0)
    video = FaceLandmarkerOptions(running_mode=RunningMode.VIDEO)
    with (
        FaceLandmarker.create_from_options(video) as landmarker,
        pytest.raises(ValueError, match="not initialized with the image mode"),
    ):
        landmarker.detect(astronaut)


def test_callbacks_belong_to_live_stream_only() -> None:
    with pytest.raises(ValueError, match="result callback must be provided"):
        FaceLandmarker.create_from_options(
            FaceLandmarkerOptions(running_mode=RunningMode.LIVE_STREAM)
        )
    with pytest.raises(ValueError, match="callback should not be provided"):
        FaceLandmarker.create_from_options(FaceLandmarkerOptions(result_callback=lambda *a: None))


def test_video_timestamps_must_increase_and_the_instance_survives(astronaut: np.ndarray) -> None:
    options = FaceLandmarkerOptions(running_mode=RunningMode.VIDEO)
    with FaceLandmarker.create_from_options(options) as landmarker:
        assert len(landmarker.detect_for_video(astronaut, 0).face_landmarks) == 1
        assert len(landmarker.detect_for_video(astronaut, 40).face_landmarks) == 1
        with pytest.raises(ValueError, match="monotonically increasing: got 40 ms after 40"):
            landmarker.detect_for_video(astronaut, 40)
        with pytest.raises(ValueError, match="monotonically increasing: got 10 ms after 40"):
            landmarker.detect_for_video(astronaut, 10)
        with pytest.raises(TypeError, match="uint8"):
            landmarker.detect_for_video(astronaut.astype(np.float32), 80)
        assert len(landmarker.detect_for_video(astronaut, 80).face_landmarks) == 1


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="num_faces"):
        FaceLandmarker.create_from_options(FaceLandmarkerOptions(num_faces=0))
    with pytest.raises(ValueError, match="min_face_presence_confidence"):
        FaceLandmarker.create_from_options(FaceLandmarkerOptions(min_face_presence_confidence=2))


def test_live_stream_delivers_results_on_a_worker_thread(astronaut: np.ndarray) -> None:
    got: list[tuple[int, int, int]] = []
    first, done = threading.Event(), threading.Event()

    def on_result(result: Any, image: Image, timestamp_ms: int) -> None:
        got.append((len(result.face_landmarks), timestamp_ms, threading.get_ident()))
        if timestamp_ms == 7:
            first.set()
            raise RuntimeError("user bug")  # reported; the task keeps running
        if timestamp_ms == 8:
            done.set()

    options = FaceLandmarkerOptions(running_mode=RunningMode.LIVE_STREAM, result_callback=on_result)
    with FaceLandmarker.create_from_options(options) as landmarker:
        landmarker.detect_async(astronaut, 7)
        # Frame 8 is sent after frame 7's callback, so that it cannot replace frame 7.
        assert first.wait(60), "no result for frame 7"
        landmarker.detect_async(astronaut, 8)
        assert done.wait(60), "no result for frame 8"
        with pytest.raises(ValueError, match="monotonically increasing"):
            landmarker.detect_async(astronaut, 8)
    assert [(n, t) for n, t, _ in got] == [(1, 7), (1, 8)]
    assert all(ident != threading.get_ident() for *_, ident in got)
    assert [str(e) for e in landmarker.callback_errors] == ["user bug"]


def test_a_failing_frame_leaves_the_landmarker_usable(astronaut: np.ndarray) -> None:
    options = FaceLandmarkerOptions(running_mode=RunningMode.VIDEO)
    with FaceLandmarker.create_from_options(options) as landmarker:
        assert len(landmarker.detect_for_video(astronaut, 0).face_landmarks) == 1
        # 200000 rows: the face's crop window alone is taller than OpenCV's remap takes
        # (32767; the fast crop leaves such sources to the exact one); the crop fails.
        with pytest.raises(RuntimeError, match="this frame failed: node 'landmarks/crop'") as info:
            landmarker.detect_for_video(np.zeros((200000, 2, 3), np.uint8), 40)
        assert "\n" not in str(info.value) and "Traceback" not in str(info.value)
        assert len(landmarker.detect_for_video(astronaut, 80).face_landmarks) == 1


def test_use_after_close_is_an_error(astronaut: np.ndarray) -> None:
    landmarker = FaceLandmarker.create_from_options(FaceLandmarkerOptions())
    landmarker.close()
    landmarker.close()
    with pytest.raises(RuntimeError, match="after close"):
        landmarker.detect(astronaut)


def _rezip(tmp_path: Path, drop: str | None = None) -> Path:
    src = model_path("face_landmarker")
    out = tmp_path / "user.task"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            if item.filename != drop:
                zout.writestr(item, zin.read(item.filename))
    return out


def test_user_task_bundle_runs_and_bad_bundles_say_why(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    user = _rezip(tmp_path)
    options = FaceLandmarkerOptions(base_options=BaseOptions(model_asset_path=user))
    with FaceLandmarker.create_from_options(options) as landmarker:
        assert len(landmarker.detect(astronaut).face_landmarks) == 1
    buffer = FaceLandmarkerOptions(base_options=BaseOptions(model_asset_buffer=user.read_bytes()))
    with FaceLandmarker.create_from_options(buffer) as landmarker:
        assert len(landmarker.detect(astronaut).face_landmarks) == 1

    truncated = tmp_path / "truncated.task"
    truncated.write_bytes(user.read_bytes()[:5000])
    with pytest.raises(ModelError, match=r"truncated\.task"):
        FaceLandmarker.create_from_model_path(truncated)
    (tmp_path / "m").mkdir()
    missing = _rezip(tmp_path / "m", drop="face_landmarks_detector.tflite")
    with pytest.raises(ModelError, match=r"face_landmarks_detector\.tflite"):
        FaceLandmarker.create_from_model_path(missing)


def test_live_stream_keeps_only_the_newest_waiting_frame(astronaut: np.ndarray) -> None:
    seen: list[int] = []
    busy, release = threading.Event(), threading.Event()

    def on_result(result: Any, image: Image, timestamp_ms: int) -> None:
        seen.append(timestamp_ms)
        if timestamp_ms == 1:
            busy.set()
            assert release.wait(60)

    options = FaceLandmarkerOptions(running_mode=RunningMode.LIVE_STREAM, result_callback=on_result)
    with FaceLandmarker.create_from_options(options) as landmarker:
        landmarker.detect_async(astronaut, 1)
        assert busy.wait(60)  # the worker is inside frame 1's callback
        for t in (2, 3, 4):  # a camera faster than the graph: 2 and 3 are replaced
            landmarker.detect_async(astronaut, t)
        release.set()
    # Frames 2 and 3 were replaced while waiting; close() finished frame 4.
    assert seen == [1, 4]
