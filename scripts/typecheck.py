"""Run mypy on the source tree under the names it is imported by.

The repository keeps the design card's top-level folders (framework/, calculators/,
graphs/, models/), which setuptools maps onto ``facegraph``, ``facegraph.calculators``
and so on. mypy cannot follow setuptools' editable-install import hook, so this script
mirrors that mapping as a tree of symlinks under ``build/typecheck`` and runs mypy
there, rewriting the reported paths back to the real files.

Usage: ``python scripts/typecheck.py`` (extra arguments go to mypy).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"
# import name -> source folder, as in [tool.setuptools] package-dir.
MAPPING = {
    "facegraph": "framework",
    "facegraph/calculators": "calculators",
    "facegraph/graphs": "graphs",
    "facegraph/models": "models",
    "facegraph/vision": "vision",
    "facegraph/app": "app",
}


def build_tree() -> dict[str, str]:
    """Create the link tree; return a map from tree path prefix to real path prefix."""
    shutil.rmtree(TREE, ignore_errors=True)
    back: dict[str, str] = {}
    for dest, src in MAPPING.items():
        src_dir = ROOT / src
        for path in src_dir.rglob("*.py"):
            rel = path.relative_to(src_dir)
            if "__pycache__" in rel.parts:
                continue
            target = TREE / dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, target)
        back[f"{dest}/"] = f"{src}/"
    (TREE / "facegraph" / "py.typed").touch()
    return back


def main() -> int:
    back = build_tree()
    cmd = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "-p",
        "facegraph",
        *sys.argv[1:],
    ]
    proc = subprocess.run(cmd, cwd=TREE, capture_output=True, text=True, check=False)
    # Longest prefixes first so facegraph/calculators/ wins over facegraph/.
    prefixes = sorted(back, key=len, reverse=True)
    for raw in (proc.stdout + proc.stderr).splitlines():
        line = raw
        for prefix in prefixes:
            if raw.startswith(prefix):
                line = back[prefix] + raw[len(prefix) :]
                break
        print(line)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
