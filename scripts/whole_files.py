"""Whole-file writes for the scripts: ``facegraph.atomic_files``, loaded from this checkout.

The reference scripts run in MediaPipe's own venvs, where facegraph is not installed, so
``framework/atomic_files.py`` (standard library only) is imported by path
(:func:`import_from_checkout`, which also gives them ``app/synthetic.py``). Each write
function writes its file to a temporary beside the final name and moves it into place,
so an earlier fixture is only ever replaced by a complete one; a failed write ends the
script with one line naming the file (``SystemExit``), not a traceback::

    from whole_files import write, write_npz, write_png   # scripts/ is on sys.path
"""

from __future__ import annotations

import importlib.util
import io
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def import_from_checkout(path: str, name: str) -> Any:
    """Import this checkout's ``path`` (e.g. ``app/synthetic.py``) as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look the module up while decorating
    spec.loader.exec_module(module)
    return module


_atomic = import_from_checkout("framework/atomic_files.py", "facegraph_atomic_files")


def write(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` whole, or exit with one line."""
    try:
        _atomic.write_whole(path, data)
    except OSError as exc:
        raise SystemExit(f"error: cannot write {path}: {_atomic.describe_os_error(exc)}") from None


def write_npz(path: str | os.PathLike[str], arrays: dict[str, Any]) -> None:
    """``np.savez_compressed(path, **arrays)``, written whole (or exit with one line)."""
    import numpy as np

    data = io.BytesIO()
    np.savez_compressed(data, **arrays)
    write(path, data.getvalue())


def write_png(path: str | os.PathLike[str], bgr: Any) -> None:
    """``cv2.imwrite(path, bgr)`` as PNG, written whole (or exit with one line)."""
    import cv2

    ok, data = cv2.imencode(".png", bgr)
    if not ok:
        raise SystemExit(f"error: cannot encode {path} as PNG")
    write(path, data.tobytes())
