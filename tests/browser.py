"""A headless Chromium driven over the DevTools protocol on a pipe (no extra package).

``chromium --remote-debugging-pipe`` reads protocol commands from file descriptor 3 and
writes replies and events to descriptor 4, each message NUL-terminated JSON: the
lightest reliable way to load a page in a real browser and evaluate JavaScript in it.

::

    with Browser.launch() as browser:          # raises BrowserMissingError without Chromium
        page = browser.open("http://127.0.0.1:8080/")
        page.evaluate("document.title")
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")


class BrowserMissingError(RuntimeError):
    """No Chromium executable on PATH."""


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium process with a DevTools pipe."""

    def __init__(self, proc: subprocess.Popen[bytes], to_browser: int, from_browser: int) -> None:
        self._proc = proc
        self._out = os.fdopen(to_browser, "wb", buffering=0)
        self._in = os.fdopen(from_browser, "rb", buffering=0)
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True, name="cdp reader")
        self._reader.start()

    @classmethod
    def launch(cls) -> Browser:
        exe = find_chromium()
        if exe is None:
            raise BrowserMissingError("no chromium on PATH (Debian: apt-get install -y chromium)")
        profile = tempfile.mkdtemp(prefix="facegraph-chromium-")
        # fds 3 (commands in) and 4 (replies out) of the child, as Chromium expects.
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        args = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]

        def child_fds() -> None:
            # Via fresh copies, in case a pipe end already is fd 3 or 4.
            a, b = os.dup(cmd_r), os.dup(res_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        proc = subprocess.Popen(
            args,
            # 3 and 4 are kept open in the child (it closes every other fd after preexec_fn).
            pass_fds=(3, 4, cmd_r, res_w),
            preexec_fn=child_fds,  # noqa: PLW1509 - only dup2, before exec
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(cmd_r)
        os.close(res_w)
        browser = cls(proc, cmd_w, res_r)
        browser._profile = profile
        return browser

    def _read(self) -> None:
        buffer = b""
        while True:
            chunk = self._in.read(65536)
            if not chunk:
                break
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._cond:
                        self._replies[message["id"]] = message
                        self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        """Send one command; wait (up to 30 s) for its reply; raise on a protocol error."""
        with self._cond:
            self._next_id += 1
            msg_id = self._next_id
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        self._out.write(json.dumps(message).encode() + b"\0")
        with self._cond:
            ok = self._cond.wait_for(
                lambda: msg_id in self._replies or self._proc.poll() is not None, timeout=30
            )
            reply = self._replies.pop(msg_id, None)
        if not ok or reply is None:
            raise RuntimeError(f"chromium gave no reply to {method}")
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def open(self, url: str) -> Page:
        target = self.send("Target.createTarget", {"url": url})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        return Page(self, session["sessionId"])

    def close(self) -> None:
        with contextlib.suppress(Exception):  # it may be gone already
            self.send("Browser.close")
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._out.close()
        self._reader.join(timeout=5)
        self._in.close()
        shutil.rmtree(getattr(self, "_profile", ""), ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Page:
    """A tab attached with a flat session."""

    def __init__(self, browser: Browser, session: str) -> None:
        self._browser = browser
        self._session = session

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        result = self._browser.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            self._session,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, predicate: Callable[[Any], bool], timeout: float) -> Any:
        """Evaluate ``expression`` until ``predicate(value)`` holds; the last value or
        TimeoutError (a deadline for a condition, not a sleep deciding the outcome)."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError as exc:  # the page is still loading (element not there yet)
                value = exc
            if not isinstance(value, RuntimeError) and predicate(value):
                return value
            time.sleep(0.1)
        raise TimeoutError(f"{expression!r} never satisfied the condition; last value {value!r}")
