"""facegraph's yes/no environment switches read one way (framework/env_flags.py): the
usual spellings, and a one-line warning that keeps the default for anything else."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from facegraph.env_flags import env_flag

NAME = "FACEGRAPH_TEST_SWITCH"


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_on_spellings(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(NAME, value)
    assert env_flag(NAME, default=False) is True


@pytest.mark.parametrize("value", ["0", "False", "no", "OFF "])
def test_off_spellings(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(NAME, value)
    assert env_flag(NAME, default=True) is False


@pytest.mark.parametrize("default", [True, False])
def test_unset_or_empty_gives_the_default(monkeypatch: pytest.MonkeyPatch, default: bool) -> None:
    monkeypatch.delenv(NAME, raising=False)
    assert env_flag(NAME, default=default) is default
    monkeypatch.setenv(NAME, "  ")
    assert env_flag(NAME, default=default) is default


def test_a_typo_keeps_the_default_and_says_so_on_one_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(NAME, "of")
    with caplog.at_level(logging.WARNING, logger="facegraph"):
        assert env_flag(NAME, default=True) is True
    [record] = caplog.records
    message = record.getMessage()
    assert "\n" not in message
    assert NAME in message and "'of'" in message and "default (on)" in message


def test_no_camera_false_still_looks_for_a_camera(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``FACEGRAPH_NO_CAMERA=false`` used to skip the camera (any value but 0 did)."""
    from facegraph.app import runner

    looked: list[str] = []

    def glob(self: Path, pattern: str) -> list[Path]:
        looked.append(pattern)
        return [tmp_path / "video0"]

    monkeypatch.setattr(runner.sys, "platform", "linux")
    monkeypatch.setattr(runner.Path, "glob", glob)
    monkeypatch.setenv("FACEGRAPH_NO_CAMERA", "false")
    assert runner._camera_candidates() is True
    assert looked == ["video*"]
    monkeypatch.setenv("FACEGRAPH_NO_CAMERA", "yes")
    assert runner._camera_candidates() is False


def test_scheduler_checks_follow_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    from facegraph.scheduling.driver import CHECK_ENV, checking_enabled

    monkeypatch.setenv(CHECK_ENV, "off")
    assert checking_enabled() is False
    monkeypatch.setenv(CHECK_ENV, "true")
    assert checking_enabled() is True
