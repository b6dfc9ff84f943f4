"""Reuse loaded models across successive runs of graphs in one process (batch workers).

Loading the face mesh graph's models (LiteRT interpreters, XNNPACK delegates, the split
Attention Mesh) costs about 0.2 s, as much as processing a dozen frames. A worker that
runs one graph after another over many short inputs can keep them::

    from facegraph.models import reuse

    reuse.enable()                 # once per process (off by default)
    for clip in clips:
        reuse.next_run()           # the previous run's graph is finished: its models are free
        run_source(spec, clip, output=...)
    reuse.stats()                  # ReuseStats(loads=3, reuses=21)

While enabled, each :class:`~facegraph.models.inference.TfLiteModel` built with the
same file (path, size, mtime) and load options (``threads``, ``uint8_input``) takes
over the loaded state of an instance from an earlier run instead of loading it again.
Within one run every request gets its own instance (two nodes of a graph that use the
same model never share one, as a model is not thread-safe). The caller promises that
runs do not overlap: call :func:`next_run` only once the previous graph is done (every
node closed), which is what a worker processing one input at a time does.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ReuseStats", "claim", "disable", "enable", "enabled", "next_run", "offer", "stats"]

_Key = tuple[str, int, int, Hashable]


@dataclass(frozen=True, slots=True)
class ReuseStats:
    """Models loaded from their files, and requests served by an already loaded one."""

    loads: int
    reuses: int


class _Pool:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.instances: dict[_Key, list[Any]] = {}
        self.claimed: dict[_Key, int] = {}
        self.loads = 0
        self.reuses = 0


_POOL: _Pool | None = None


def enable() -> None:
    """Start keeping loaded models in this process (idempotent)."""
    global _POOL
    if _POOL is None:
        _POOL = _Pool()


def disable() -> None:
    """Stop reusing and drop every kept model."""
    global _POOL
    _POOL = None


def enabled() -> bool:
    return _POOL is not None


def next_run() -> None:
    """Mark every kept model free: the previous run is over (its graph is done)."""
    pool = _POOL
    if pool is not None:
        with pool.lock:
            pool.claimed.clear()


def stats() -> ReuseStats:
    """Loads and reuses counted since :func:`enable` (zeros when disabled)."""
    pool = _POOL
    if pool is None:
        return ReuseStats(0, 0)
    with pool.lock:
        return ReuseStats(pool.loads, pool.reuses)


def _key(path: Path, options: Hashable) -> _Key:
    st = os.stat(path)
    return (os.path.abspath(path), st.st_size, st.st_mtime_ns, options)


def claim(path: Path, options: Hashable) -> Any | None:
    """A loaded model free in this run for (``path``, its load ``options``), else None.

    Returns None when reuse is disabled; the caller then loads the model and passes it to
    :func:`offer`.
    """
    pool = _POOL
    if pool is None:
        return None
    try:
        key = _key(path, options)
    except OSError:
        return None  # the loader reports the missing file
    with pool.lock:
        index = pool.claimed.get(key, 0)
        pool.claimed[key] = index + 1
        kept = pool.instances.get(key, [])
        # Instances loaded during this run are appended at indexes below the claim count,
        # so a later claim in the same run never returns one that is in use.
        if index < len(kept):
            pool.reuses += 1
            return kept[index]
        return None


def offer(path: Path, options: Hashable, model: Any) -> None:
    """Keep a freshly loaded ``model`` for later runs (no-op when disabled)."""
    pool = _POOL
    if pool is None:
        return
    try:
        key = _key(path, options)
    except OSError:
        return
    with pool.lock:
        pool.instances.setdefault(key, []).append(model)
        pool.loads += 1
