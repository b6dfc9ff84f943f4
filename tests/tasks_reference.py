"""MediaPipe Tasks (1.2.3) reference fixtures: ``fixtures/reference_tasks``.

Made by ``scripts/reference_tasks.py`` (array layout in its docstring).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE_TASKS = FIXTURES / "reference_tasks"
IMAGE_CASES = ["astronaut", "face_detection_expected", "tom_hanks", "takeo", "two_faces"]


@cache
def manifest() -> dict[str, object]:
    data: dict[str, object] = json.loads((REFERENCE_TASKS / "manifest.json").read_text("utf-8"))
    return data


@dataclass(frozen=True)
class TasksCase:
    name: str
    width: int
    height: int
    landmarks: np.ndarray  # (T, F, 478, 3)
    blendshapes: np.ndarray  # (T, F, 52)
    matrices: np.ndarray  # (T, F, 4, 4)
    count: np.ndarray  # (T,)
    names: tuple[str, ...]
    input_file: Path
    sha256_rgb: str

    def faces(self, t: int = 0) -> range:
        return range(int(self.count[t]))

    def rgb(self) -> np.ndarray:
        """The input as MediaPipe saw it; skips the test if this decoder differs."""
        bgr = cv2.imread(str(self.input_file), cv2.IMREAD_COLOR)
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        if hashlib.sha256(rgb.tobytes()).hexdigest() != self.sha256_rgb:
            pytest.skip(f"{self.input_file.name} decodes to other pixels than MediaPipe saw")
        return rgb


@cache
def image_case(name: str) -> TasksCase:
    entry = manifest()["cases"][f"image_{name}"]  # type: ignore[index]
    data = np.load(REFERENCE_TASKS / entry["file"])
    height, width = entry["input"]["shape"][:2]
    return TasksCase(
        name,
        width,
        height,
        data["landmarks"],
        data["blendshapes"],
        data["matrices"],
        data["count"],
        tuple(str(n) for n in data["blendshape_names"]),
        FIXTURES / entry["input"]["file"],
        entry["input"]["sha256_rgb"],
    )
