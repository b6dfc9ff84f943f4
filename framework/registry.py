"""The calculator registry: names in YAML → calculator classes.

Three ways a name resolves, in order:

1. A class registered with :func:`register` (any module the user imported).
2. An entry point in the ``facegraph.calculators`` group, the built-in nodes'
   included (facegraph's own ``pyproject.toml`` declares them like any plugin);
   its target module is imported on first lookup (or the target is a class,
   registered under the entry point's name).
3. ``module:Class`` import paths, only when the caller passes
   ``allow_imports=True``: a YAML file from elsewhere must not run code by itself.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.metadata
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from .calculator import Calculator
from .errors import RegistryError
from .plugins import CALCULATORS, entry_points

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")

C = TypeVar("C", bound=type[Calculator])

_lock = threading.RLock()
_registry: dict[str, type[Calculator]] = {}
_plugins_loaded = False
_plugin_errors: list[str] = []


def register(name: str | None = None) -> Callable[[C], C]:
    """Class decorator: make a calculator usable in YAML as ``calculator: NAME``.

    ``name`` defaults to the class name. Registering a different class under a
    taken name is an error (two plugins fighting over one name must be visible).
    """

    def decorate(cls: C) -> C:
        if not (isinstance(cls, type) and issubclass(cls, Calculator)):
            raise RegistryError(f"@register expects a Calculator subclass, got {cls!r}")
        key = name or cls.__name__
        if not NAME_PATTERN.match(key):
            raise RegistryError(f"invalid calculator name {key!r}")
        with _lock:
            existing = _registry.get(key)
            if existing is not None and _qualname(existing) != _qualname(cls):
                raise RegistryError(
                    f"calculator name {key!r} is already registered by {_qualname(existing)}; "
                    f"cannot register {_qualname(cls)} under it"
                )
            _registry[key] = cls
            cls.registered_name = key
        return cls

    return decorate


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def load_plugins(*, force: bool = False) -> None:
    """Import every ``facegraph.calculators`` entry point (the built-in nodes among them).

    Runs once per process on the first lookup; ``force=True`` rescans entry points
    (after installing a plugin package into a running interpreter).
    """
    global _plugins_loaded
    with _lock:
        if _plugins_loaded and not force:
            return
        _plugins_loaded = True
        _plugin_errors.clear()
        if force:
            entry_points.cache_clear()
        for ep in entry_points(CALCULATORS):
            try:
                target = ep.load()
            except Exception as exc:  # a broken plugin must not break the tool
                _plugin_errors.append(
                    f"plugin entry point {ep.name!r} ({ep.value}) failed to load: {exc}"
                )
                continue
            if isinstance(target, type) and issubclass(target, Calculator):
                register(ep.name)(target)


def plugin_errors() -> list[str]:
    """Messages for plugin entry points that failed to import."""
    load_plugins()
    return list(_plugin_errors)


def names() -> list[str]:
    """All registered calculator names, sorted."""
    load_plugins()
    with _lock:
        return sorted(_registry)


def items() -> Iterator[tuple[str, type[Calculator]]]:
    """(name, class) pairs, sorted by name."""
    load_plugins()
    with _lock:
        snapshot = sorted(_registry.items())
    yield from snapshot


def suggest(name: str, candidates: list[str] | None = None) -> str:
    """ " (did you mean 'X'?)" for a near-miss name, else ""."""
    pool = candidates if candidates is not None else names()
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in pool}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f" (did you mean '{close[0]}'?)" if close else ""


def lookup(
    name: str, *, allow_imports: bool = False, search_paths: Sequence[Path] = ()
) -> type[Calculator]:
    """Resolve a calculator name; raise RegistryError with a did-you-mean otherwise.

    ``search_paths``: folders where a ``module:Class`` import may also find its module
    (the graph file's folder and the current directory), after ``sys.path``.
    """
    load_plugins()
    with _lock:
        cls = _registry.get(name)
    if cls is not None:
        return cls
    if ":" in name:
        if not allow_imports:
            raise RegistryError(
                f"calculator {name!r} is an import path; importing code named in a graph file is "
                "off by default. Register the class (or install its plugin package), or allow "
                "imports explicitly (Python: allow_imports=True; CLI: --allow-imports)."
            )
        return _import_class(name, search_paths)
    raise RegistryError(f"unknown calculator {name!r}{suggest(name)}")


def _import_module(module_name: str, search_paths: Sequence[Path]) -> ModuleType:
    """Import ``module_name`` from ``sys.path``, else from the first search path holding it.

    The folder is put on ``sys.path`` only while importing (the module stays imported);
    a module file beside a graph needs no installing and no PYTHONPATH.
    """
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and not (module_name + ".").startswith(exc.name + "."):
            raise  # the module exists but one of *its* imports is missing
    top = module_name.split(".", maxsplit=1)[0]
    folders = [str(p.resolve()) for p in search_paths]
    for folder in dict.fromkeys(folders):
        if not (Path(folder, f"{top}.py").is_file() or Path(folder, top, "__init__.py").is_file()):
            continue
        with _lock:
            sys.path.insert(0, folder)
            try:
                return importlib.import_module(module_name)
            finally:
                with contextlib.suppress(ValueError):
                    sys.path.remove(folder)
    where = ", ".join(dict.fromkeys(folders)) or "(none)"
    raise RegistryError(
        f"cannot import module {module_name!r}: no {top}.py (or package {top}/) on sys.path "
        f"nor in {where}; put {top}.py beside the graph file or in the current directory, "
        "or install it / add its folder to PYTHONPATH"
    )


def _import_class(path: str, search_paths: Sequence[Path] = ()) -> type[Calculator]:
    module_name, _, attr = path.partition(":")
    try:
        module = _import_module(module_name, search_paths)
    except ImportError as exc:
        raise RegistryError(
            f"cannot import module {module_name!r} for calculator {path!r}: {exc}"
        ) from exc
    except RegistryError as exc:
        raise RegistryError(f"calculator {path!r}: {exc}") from None
    obj: object = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise RegistryError(f"module {module_name!r} has no attribute {attr!r}")
    if not (isinstance(obj, type) and issubclass(obj, Calculator)):
        raise RegistryError(f"{path!r} is not a Calculator subclass")
    return obj


def unregister(name: str) -> None:
    """Remove a registration (tests and interactive sessions)."""
    with _lock:
        _registry.pop(name, None)
