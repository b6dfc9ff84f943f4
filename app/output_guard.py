"""Refuse outputs that would destroy an input or another output, before anything is opened.

``facegraph run --input v.mp4 --render v.mp4`` must not write over the video it reads, nor
``--render photos/`` into the folder of photos being read, nor ``--trace`` onto
``--output``. :func:`check_outputs` compares every output with every input and with the
other outputs, through symbolic links (real paths) and hard links (device and inode):

- an output that *is* an input file;
- an output inside an input folder, or matching an input glob (the next run would read it);
- an output folder (``--render overlays/``) holding input files (its images could take
  their names);
- two outputs that are the same file;
- an output that is a loop of symbolic links (it names no file: writing would replace
  one of the links).

The message names both paths and the options they came from.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from facegraph import FacegraphError
from facegraph.atomic_files import final_path

__all__ = ["OutputConflictError", "check_outputs"]

_GLOB_CHARS = frozenset("*?[")


class OutputConflictError(FacegraphError):
    """An output would overwrite an input or another output."""


def _real(path: str) -> str:
    return os.path.realpath(os.path.expanduser(path))


def _inode(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_outputs(
    input_spec: str | None,
    input_files: Iterable[str],
    outputs: Mapping[str, str | os.PathLike[str] | None],
) -> None:
    """Raise :class:`OutputConflictError` when an output would overwrite an input or output.

    ``input_spec`` is the input as the user gave it (a file, folder or glob; None for a
    camera), ``input_files`` the files it expands to, ``outputs`` maps an option name
    (``--output``) to its path (``None`` and ``-`` for stdout are ignored).
    """
    given = {
        label: os.fspath(path)
        for label, path in outputs.items()
        if path is not None and os.fspath(path) != "-"
    }
    files = {_real(f): f for f in input_files}
    inodes = {ino: f for f in input_files if (ino := _inode(f)) is not None}
    folder: str | None = None
    pattern: str | None = None
    if input_spec is not None and input_spec.strip():
        spec = input_spec.strip()
        if os.path.isdir(os.path.expanduser(spec)):
            folder = _real(spec)
        elif not os.path.exists(os.path.expanduser(spec)) and _GLOB_CHARS & set(spec):
            pattern = os.path.abspath(os.path.expanduser(spec))
    seen: dict[str, str] = {}
    seen_inodes: dict[tuple[int, int], str] = {}
    for label, text in given.items():
        real = _real(text)
        what = f"{label} {text}"
        try:
            final_path(os.path.expanduser(text))
        except OSError as exc:
            raise OutputConflictError(
                f"{what} is a loop of symbolic links ({exc.strerror}): it names no file to "
                "write; write it elsewhere"
            ) from None
        if real in files:
            raise OutputConflictError(f"{what} would overwrite the input {files[real]}")
        inode = _inode(text)
        if inode is not None and inode in inodes:
            raise OutputConflictError(
                f"{what} is the input {inodes[inode]} (a hard link to it); it would be overwritten"
            )
        if folder is not None and _inside(real, folder):
            raise OutputConflictError(
                f"{what} lies inside the input folder {input_spec}; write it elsewhere"
            )
        if pattern is not None and (
            fnmatch.fnmatch(real, pattern) or fnmatch.fnmatch(os.path.abspath(text), pattern)
        ):
            raise OutputConflictError(
                f"{what} matches the input pattern {input_spec!r}; write it elsewhere"
            )
        inside = next((f for r, f in files.items() if _inside(r, real) and r != real), None)
        if inside is not None and (os.path.isdir(text) or not Path(text).suffix):
            raise OutputConflictError(
                f"{what} is a folder holding the input {inside}; its files could overwrite "
                "inputs: write it elsewhere"
            )
        other = seen.get(real) or (seen_inodes.get(inode) if inode is not None else None)
        if other is not None:
            raise OutputConflictError(f"{what} is the same file as {other}; give each its own")
        seen[real] = what
        if inode is not None:
            seen_inodes[inode] = what
