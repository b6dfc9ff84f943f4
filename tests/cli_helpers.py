"""Running ``facegraph`` as a user does: a real subprocess, stdout and stderr as pipes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: The installed command line, through this interpreter.
CLI = [sys.executable, "-c", "from facegraph.cli import main; main()"]


def cli_env() -> dict[str, str]:
    """The environment of the subprocess: no camera probe, no inherited terminal width."""
    env = {**os.environ, "FACEGRAPH_NO_CAMERA": "1"}
    env.pop("COLUMNS", None)
    return env


def facegraph(
    *args: str, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``facegraph ARGS`` to completion; stdout is a pipe, as in ``facegraph ... | grep``."""
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
