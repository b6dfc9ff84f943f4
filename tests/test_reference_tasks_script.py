"""``scripts/reference_tasks.py`` reproduces the committed Tasks fixtures.

Needs MediaPipe 1.2.3 in its own venv: set ``FACEGRAPH_MEDIAPIPE_TASKS_PYTHON`` to its
Python. Without it the test skips (CI has no MediaPipe; the fixtures are committed).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from .tasks_reference import REFERENCE_TASKS, manifest

ENV = "FACEGRAPH_MEDIAPIPE_TASKS_PYTHON"
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "reference_tasks.py"


def test_image_mode_fixtures_are_reproduced(model_cache: Path, tmp_path: Path) -> None:
    python = os.environ.get(ENV)
    if not python:
        pytest.skip(f"{ENV} is not set (the Python of a mediapipe==1.2.3 venv)")
    bundle = model_cache / "face_landmarker.task"
    done = subprocess.run(
        [python, str(SCRIPT), "image", "--bundle", str(bundle), "--out", str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    fresh = json.loads((tmp_path / "manifest.json").read_text("utf-8"))
    committed = manifest()
    assert fresh["mediapipe_version"] == committed["mediapipe_version"] == "1.2.3"
    assert fresh["bundle_sha256"] == committed["bundle_sha256"]
    cases: dict[str, dict[str, str]] = committed["cases"]  # type: ignore[assignment]
    image_cases = {k: v for k, v in cases.items() if k.startswith("image_")}
    assert set(fresh["cases"]) == set(image_cases)
    for name, entry in image_cases.items():
        assert fresh["cases"][name]["input"] == entry["input"]
        ours, theirs = np.load(tmp_path / entry["file"]), np.load(REFERENCE_TASKS / entry["file"])
        # MediaPipe's own float32 outputs move by a few ulps between CPUs (XNNPACK picks
        # AVX2 or AVX-512 kernels). 1e-6 absolute alone is under one ulp of a matrix's
        # translation (tens of cm: an ulp is 2-8e-6), so 1e-6 relative too (~8 ulps); a
        # wrong input or model is off by far more.
        for key in ("landmarks", "blendshapes", "matrices", "count"):
            np.testing.assert_allclose(
                ours[key], theirs[key], rtol=1e-6, atol=1e-6, err_msg=f"{name} {key}"
            )
