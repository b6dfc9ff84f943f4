"""What the CLI tests share: running the real command line as a user does, reading its
one-line errors, mounting a small tmpfs, and a PID that is certainly dead."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent
FACES = REPO / "tests" / "fixtures" / "faces"
CLI = [sys.executable, "-c", "from facegraph.cli import main; main()"]
#: The CLI for a test that stops it with SIGINT: Ctrl-C raises in it even if the suite
#: inherited SIGINT ignored (started in the background under nohup), which its children
#: would inherit, Python then installing no KeyboardInterrupt.
CLI_CTRL_C = [
    sys.executable,
    "-c",
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from facegraph.cli import main; main()",
]


@pytest.fixture(scope="module", autouse=True)
def models_cached() -> None:
    """Models in the cache before the subprocesses start (they would fetch on first use).

    Import it into a test module (``from tests.cli_helpers import models_cached``) to
    make it apply there.
    """
    from facegraph.models import fetch, resolve_cache_dir

    fetch(cache_dir=resolve_cache_dir())


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The subprocess environment: no camera probe, no inherited terminal width (output
    that is not a terminal must keep names whole at any width)."""
    env = {**os.environ, "FACEGRAPH_NO_CAMERA": "1", **(extra or {})}
    if extra is None or "COLUMNS" not in extra:
        env.pop("COLUMNS", None)
    return env


def facegraph(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``facegraph ARGS`` in a fresh process, stdout and stderr as pipes (as in
    ``facegraph ... | grep``); a hang fails at ``timeout``."""
    return subprocess.run(
        [*CLI, *args],
        check=False,
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def messages(stderr: str) -> list[str]:
    """stderr without LiteRT's own INFO line (printed when a model loads)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("INFO:")]


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The run failed with exit 1 and exactly one ``error:`` line, no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = messages(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@contextlib.contextmanager
def mounted_tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at ``folder`` (``size=40k``, ``ro,size=64k``); skips the test with
    the reason where this machine does not allow mounting one."""
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"this machine does not allow mounting a tmpfs: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def dead_pid() -> int:
    """The PID of a process that has exited (so its temporaries are stale)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)
