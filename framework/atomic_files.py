"""Outputs that appear whole or not at all: temporaries beside the target, stale-file cleanup.

Every file facegraph writes for a user (landmarks, renderings, traces, batch outputs) is
first written to a hidden temporary beside its final name::

    .NAME.PID.TOKEN.tmp[.EXT]      e.g.  .faces.jsonl.4711.9f3c01ab.tmp
                                          .overlay.mp4.4711.0c1d2e3f.tmp.mp4

(the extension is repeated where a library picks the format from the name: OpenCV's
``VideoWriter`` and ``imencode``) and moved over the final name with ``os.replace`` when
the run ends, so a reader, a crash or a full disk never leaves half a file under the
final name. Being in the same folder makes the move atomic (one file system).

A process killed with ``kill -9`` cannot remove its temporaries; :func:`clean_stale_temps`
removes those whose owner PID is no longer running on this machine, or that are older
than :data:`STALE_SECONDS` (a PID can be reused, and a folder can be shared between hosts).
Writers call it (:func:`clean_stale_temps_of`) for their target when they open.

An output given as a symbolic link is written through it (:func:`final_path`): the
temporary goes beside the file the link points to and replaces that file, so the link
stays a link, as ``echo > link`` would leave it. The link is followed once, when the
temporary is named: the move at the end goes to the file the temporary was made for
(:func:`replace_into_place`), even if the link was pointed elsewhere meanwhile. A loop of
links names no file: it is an error (ELOOP), never a link replaced by a file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

__all__ = [
    "STALE_SECONDS",
    "clean_stale_temps",
    "clean_stale_temps_of",
    "describe_os_error",
    "final_path",
    "pid_alive",
    "replace_into_place",
    "temp_path",
    "write_all_whole",
    "write_whole",
]

#: Temporaries older than this are stale whoever owns them (seconds).
STALE_SECONDS = 24 * 3600.0

_PathT = TypeVar("_PathT", bound="str | os.PathLike[str]")

_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<token>[0-9a-f]{8})\.tmp(\.[^.]+)?$")


def final_path(target: str | os.PathLike[str]) -> Path:
    """The file a write to ``target`` lands in: ``target`` itself, or through a symbolic
    link (a chain of them, or one pointing to a file not yet there) the file it names.

    Raises OSError (``ELOOP``, naming ``target``) for a loop of links, which names no
    file: writing "through" it would replace one of the user's links.
    """
    path = Path(target)
    if not path.is_symlink():
        return path
    try:
        return Path(os.path.realpath(path, strict=True))
    except FileNotFoundError:
        return Path(os.path.realpath(path))  # a link to a file not yet there: that file
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from None


def temp_path(target: str | os.PathLike[str], *, keep_suffix: bool = False) -> Path:
    """A fresh hidden temporary name beside ``target``'s :func:`final_path` (owned by this
    process; in the same folder, so that the move into place is atomic).

    ``keep_suffix`` repeats ``target``'s extension at the end, for writers that choose
    the file format from the name: the name given, which says the format asked for (a
    link ``overlay.mp4`` may name a file without an extension).
    """
    path = final_path(target)
    ext = Path(target).suffix if keep_suffix else ""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{ext}")


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    except OSError:
        return False
    with contextlib.suppress(OSError):  # Linux: a zombie has exited, its files are stale
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[:1] != ["Z"]
    return True


def clean_stale_temps_of(target: str | os.PathLike[str]) -> list[Path]:
    """:func:`clean_stale_temps` for one output: the stale temporaries of ``target``
    where :func:`temp_path` puts them (beside its :func:`final_path`). Writers call it when
    they open; OSError (``ELOOP``) for a loop of symbolic links."""
    final = final_path(target)
    return clean_stale_temps(final.parent, name=final.name)


def clean_stale_temps(
    folder: str | os.PathLike[str], *, name: str | None = None, now: float | None = None
) -> list[Path]:
    """Remove the stale temporaries in ``folder`` (only those of ``name``, if given).

    Stale: the owner PID is not running, or the file is older than :data:`STALE_SECONDS`.
    This process's own temporaries are never touched. Returns the paths removed; a
    folder that cannot be listed is left alone.
    """
    removed: list[Path] = []
    now = time.time() if now is None else now
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or (name is not None and not _owned_by(match["name"], name)):
            continue
        pid = int(match["pid"])
        if pid == os.getpid():
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if pid_alive(pid) and age < STALE_SECONDS:
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def _owned_by(temp_name: str, name: str) -> bool:
    # A temporary of ``name``, or of one of its temporaries (``..NAME.PID.TOKEN.tmp...``:
    # a writer that wrote into another writer's temporary).
    return temp_name == name or (temp_name.startswith(f".{name}.") and ".tmp" in temp_name)


def replace_into_place(temp: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Flush ``temp`` to disk and move it over the file it was made beside: ``target``'s
    :func:`final_path` as it was when :func:`temp_path` named it (atomic; raises OSError).

    A long-lived writer opens early and moves at the end. Resolving ``target`` again
    then would follow a link retargeted during the run, and the move would fail across
    file systems (losing the run's output) or land the output in a file the run never
    chose. The temporary's own name says which file it was made for.
    """
    fd = os.open(temp, os.O_RDONLY)
    try:
        os.fsync(fd)  # the data reaches the disk before the name points at it
    finally:
        os.close(fd)
    temp = Path(temp)
    made_for = _TEMP_NAME.match(temp.name)
    os.replace(temp, temp.parent / made_for["name"] if made_for else final_path(target))


def write_whole(target: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``target`` whole or not at all: to a temporary
    beside it, then moved into place (:func:`write_all_whole` of one file). The temporary
    is removed when anything fails; the OSError raised names ``target`` (its ``filename``;
    :func:`describe_os_error` says why)."""
    write_all_whole({target: data})


def write_all_whole(files: Mapping[_PathT, str | bytes]) -> None:
    """Write several files (text as UTF-8) whole, and none of them unless all were written.

    Every file goes to a temporary beside its final name and reaches the disk first;
    only then is each moved over its final name. When anything fails, every temporary is
    removed and the OSError raised names the final file (its ``filename``, not the
    temporary's; :func:`describe_os_error` says why). The files already there keep their
    bytes: a full disk, a missing folder or a folder where a file goes fails before the
    first move (only a file-system fault during the moves could leave some moved).
    """
    pending: list[tuple[Path, Path, Path]] = []  # (temporary, final path, name given)
    target = Path()
    try:
        for name, data in files.items():
            target = Path(name)
            if target.is_dir():
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
            final = final_path(target)  # resolved once: the temporary goes beside it
            tmp = temp_path(final)
            with open(tmp, "xb") as f:
                pending.append((tmp, final, target))
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
                f.flush()
                os.fsync(f.fileno())  # the data reaches the disk before a name points at it
        for tmp, final, given in pending:
            target = given  # the file a failed move names
            os.replace(tmp, final)
    except OSError as exc:
        for tmp, _, _ in pending:
            tmp.unlink(missing_ok=True)
        if exc.filename == str(target):
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from exc


def describe_os_error(exc: OSError) -> str:
    """A short reason for a failed write, with a hint for the usual causes."""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        return f"{reason} (the disk is full)"
    if exc.errno == errno.EDQUOT:
        return f"{reason} (disk quota exceeded)"
    if exc.errno == errno.EROFS:
        return f"{reason} (read-only file system)"
    return reason
