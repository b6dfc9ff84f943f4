"""The calculator registry: names in YAML → calculator classes.

Three ways a name resolves, in order:

1. A class registered with :func:`register` (any module the user imported).
2. An entry point in the ``facegraph.calculators`` group, the built-in nodes'
   included (facegraph's own ``pyproject.toml`` declares them like any plugin);
   its target module is imported on first lookup (or the target is a class,
   registered under the entry point's name).
3. ``module:Class`` import paths, only when the caller passes
   ``allow_imports=True``: a YAML file from elsewhere must not run code by itself.

The table is a :class:`~facegraph.Registry`, so collisions behave as for every
other registry (custom ops, detector backends, encoders).
"""

from __future__ import annotations

import contextlib
import importlib
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from .calculator import Calculator
from .errors import RegistryError
from .named_registry import Registry, did_you_mean
from .plugins import CALCULATORS

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")

C = TypeVar("C", bound=type[Calculator])


def _is_calculator(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, Calculator)


_named = False

CALCULATOR_REGISTRY: Registry[type[Calculator]] = Registry(
    "calculator", entry_point_group=CALCULATORS, accept=_is_calculator
)


def register(name: str | None = None, *, replace: bool = False) -> Callable[[C], C]:
    """Class decorator: make a calculator usable in YAML as ``calculator: NAME``.

    ``name`` defaults to the class name. Registering a different class under a
    taken name is a :class:`RegistryError` (two plugins fighting over one name
    must be visible); ``replace=True`` overrides on purpose.
    """

    def decorate(cls: C) -> C:
        if not _is_calculator(cls):
            raise RegistryError(f"@register expects a Calculator subclass, got {cls!r}")
        key = name or cls.__name__
        if not NAME_PATTERN.match(key):
            raise RegistryError(f"invalid calculator name {key!r}")
        CALCULATOR_REGISTRY.add(key, cls, replace=replace)
        cls.registered_name = key
        return cls

    return decorate


def load_plugins(*, force: bool = False) -> None:
    """Import every ``facegraph.calculators`` entry point (the built-in nodes among them).

    Runs once per process on the first lookup; ``force=True`` rescans entry points
    (after installing a plugin package into a running interpreter).
    """
    global _named
    if _named and not force:
        return
    CALCULATOR_REGISTRY.load_entry_points(force=force)
    # Classes given directly as entry points were added without @register.
    for name, cls in CALCULATOR_REGISTRY.items():
        if not cls.registered_name:
            cls.registered_name = name
    _named = True


def plugin_errors() -> list[str]:
    """Messages for plugin entry points that failed to import."""
    load_plugins()
    return CALCULATOR_REGISTRY.load_errors()


def names() -> list[str]:
    """All registered calculator names, sorted."""
    load_plugins()
    return CALCULATOR_REGISTRY.names()


def items() -> Iterator[tuple[str, type[Calculator]]]:
    """(name, class) pairs, sorted by name."""
    load_plugins()
    return CALCULATOR_REGISTRY.items()


def suggest(name: str, candidates: list[str] | None = None) -> str:
    """ " (did you mean 'X'?)" for a near-miss name, else ""."""
    return did_you_mean(name, candidates if candidates is not None else names())


def lookup(
    name: str, *, allow_imports: bool = False, search_paths: Sequence[Path] = ()
) -> type[Calculator]:
    """Resolve a calculator name; raise RegistryError with a did-you-mean otherwise.

    ``search_paths``: folders where a ``module:Class`` import may also find its module
    (the graph file's folder and the current directory), after ``sys.path``.
    """
    load_plugins()
    cls = CALCULATOR_REGISTRY.get(name)
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


# sys.path is process-wide: one import from a search path at a time.
_import_lock = threading.RLock()


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
        with _import_lock:
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
    CALCULATOR_REGISTRY.remove(name)
