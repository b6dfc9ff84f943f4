"""The promises the repository makes to a newcomer: README set-up commands and CI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import skip_unless_ci

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"```[a-z]*\n(.*?)```", text, re.S)
    assert match, "README.md has no code block"
    lines = [line.strip() for line in match.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_readme_first_code_block_holds_exactly_two_commands() -> None:
    commands = _readme_commands()
    assert len(commands) == 2, commands
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = _readme_commands()[1]
    assert test_command in ci.splitlines(), f"{test_command!r} not a line of .ci/run"


def test_environment_skips_become_failures_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    # The parity tests skip when this machine's decoder gives other pixels than MediaPipe
    # saw; CI (CI=true) must fail instead of silently dropping them.
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"decoder.*CI is set"):
        skip_unless_ci("decoder")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="decoder"):
        skip_unless_ci("decoder")
