"""The live page in a real browser: `facegraph run face_mesh --input sample --serve PORT`
keeps serving the looped, paced sample; headless Chromium sees frames that change, a
non-zero FPS, the tracked face and per-node timings."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.browser import Browser, find_chromium
from tests.cli_helpers import CLI_CTRL_C, cli_env

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="no Chromium on PATH: install Debian's chromium (apt-get install -y chromium; "
    ".ci/run does) to run the live-page browser test",
)

SAMPLE_FRAMES = 125  # the bundled clip: 5 s at 25 fps

# A hash of the <img>'s current pixels (same origin, so the canvas is readable).
FRAME_HASH = """(() => {
  const img = document.getElementById('view');
  if (!img || !img.naturalWidth) return null;
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let h = 0; for (let i = 0; i < d.length; i += 3) h = (h * 31 + d[i]) | 0;
  return [c.width, c.height, h];
})()"""


class _Served:
    """``facegraph run ... --serve 0`` in a subprocess; ``url`` once it is listening."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [*CLI_CTRL_C, *args],  # stop() sends SIGINT
            cwd=cwd,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr: list[str] = []
        self.url: str | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with contextlib.suppress(ValueError):  # communicate() in stop() closes the pipe
            for line in self.proc.stderr:
                self._line(line)
        self._ready.set()

    def _line(self, line: str) -> None:
        self.stderr.append(line)
        found = re.search(r"live view: (http://\S+)", line)
        if found:
            self.url = found.group(1)
            self._ready.set()

    def wait_url(self, timeout: float) -> str:
        self._ready.wait(timeout)
        assert self.url, "no 'live view:' line; stderr:\n" + "".join(self.stderr)
        return self.url

    def stats(self) -> dict:
        assert self.url is not None
        with urllib.request.urlopen(self.url + "stats.json", timeout=10) as response:
            return json.load(response)

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=60)
        self._thread.join(timeout=10)
        return self.proc.returncode, out


def test_live_page_in_chromium_shows_changing_frames_fps_faces_and_timings(
    tmp_path: Path, model_cache: Path
) -> None:
    served = _Served(["run", "face_mesh", "--input", "sample", "--serve", "0"], tmp_path)
    try:
        url = served.wait_url(120)
        assert url.startswith("http://127.0.0.1:")  # loopback only
        with Browser.launch() as browser:
            page = browser.open(url)
            fps = page.wait_for(
                "Number(document.getElementById('fps').textContent)",
                lambda v: isinstance(v, (int, float)) and v > 0,
                timeout=60,
            )
            assert fps > 0  # frames arrive (the pace is a wall-clock figure: not asserted)
            first = page.wait_for(FRAME_HASH, lambda v: v is not None, timeout=30)
            assert first[:2] == [400, 300]
            page.wait_for(FRAME_HASH, lambda v: v is not None and v != first, timeout=30)
            faces = page.wait_for(
                "document.getElementById('facelist').textContent",
                lambda v: "face #" in (v or ""),
                timeout=30,
            )
            assert "face #1" in faces  # the tracked face's id
            rows = page.evaluate("document.querySelectorAll('#nodes tr').length")
            assert rows >= 10  # per-node timings of the face_mesh graph
            names = page.evaluate("document.getElementById('nodes').textContent")
            assert "landmarks/model" in names
        # Still serving after the 5-second clip ended: it loops, with increasing frames.
        deadline_frames = SAMPLE_FRAMES + 10
        done = threading.Event()
        while not done.wait(0.25):
            if served.stats()["frames"] > deadline_frames or served.proc.poll() is not None:
                done.set()
        assert served.proc.poll() is None, "the server stopped at the end of the clip"
        assert served.stats()["frames"] > deadline_frames
    finally:
        code, out = served.stop()
    assert code == 130, "".join(served.stderr)
    assert "stopped by signal" in out or "interrupted" in "".join(served.stderr)


EXTRAS = """\
inputs: [image]
outputs: [faces, blendshapes, head_pose]
nodes:
  - {calculator: face_mesh, inputs: {IMAGE: image}, outputs: {FACES: faces}}
  - calculator: FaceBlendshapes
    inputs: {FACES: faces, IMAGE: image}
    outputs: {BLENDSHAPES: blendshapes}
  - calculator: FaceGeometry
    inputs: {FACES: faces, IMAGE: image}
    outputs: {GEOMETRY: head_pose}
"""


def test_live_page_shows_blendshapes_and_head_pose(tmp_path: Path, model_cache: Path) -> None:
    graph = tmp_path / "extras.yaml"
    graph.write_text(EXTRAS)
    served = _Served(["run", str(graph), "--input", "sample", "--serve", "0"], tmp_path)
    try:
        url = served.wait_url(120)
        with Browser.launch() as browser:
            page = browser.open(url)
            text = page.wait_for(
                "document.getElementById('facelist').textContent",
                lambda v: "blendshapes" in (v or "") and "head_pose" in (v or ""),
                timeout=60,
            )
        assert "face #1" in text
        assert "yaw" in text and "pitch" in text and "roll" in text  # head pose, degrees
    finally:
        code, _ = served.stop()
    assert code == 130
