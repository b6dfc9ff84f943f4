"""``Registry[T]``: one name → value table with one collision rule and one error type.

Every pluggable kind in facegraph (calculators, custom TFLite ops, detector backends,
JSON encoders) is a ``Registry``, so they all behave alike:

- registering a *different* object under a taken name raises :class:`RegistryError`
  naming both (two plugins fighting over one name must be visible); registering the
  same object again is a no-op (re-importing a module is harmless);
- ``replace=True`` is the one explicit way to override (tests, hot-reload);
- looking up an unknown name raises :class:`RegistryError` with a did-you-mean;
- entry points of an optional group are loaded on the first lookup.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Generic, TypeVar

from .errors import RegistryError
from .plugins import entry_points

T = TypeVar("T")


def did_you_mean(name: str, candidates: list[str]) -> str:
    """`` (did you mean 'X'?)`` for a near-miss name (or a case-only difference), else ""."""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in candidates}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f" (did you mean '{close[0]}'?)" if close else ""


def describe(value: object) -> str:
    """``module.qualname`` of a class or function, else its repr (for collision messages)."""
    module = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname else repr(value)


class Registry(Generic[T]):
    """A thread-safe table of named values of one kind.

    ``kind`` names the kind in messages ("calculator", "custom op", ...). With
    ``entry_point_group``, each entry point of that group is loaded on the first lookup:
    a target that is a module registers its values by being imported; any other target
    is registered under the entry point's name (after ``accept`` checks it, if given).
    """

    def __init__(
        self,
        kind: str,
        *,
        entry_point_group: str | None = None,
        accept: Callable[[object], bool] | None = None,
    ) -> None:
        self.kind = kind
        self._group = entry_point_group
        self._accept = accept
        self._lock = threading.RLock()
        self._values: dict[str, T] = {}
        self._loaded = entry_point_group is None
        self._load_errors: list[str] = []

    def add(self, name: str, value: T, *, replace: bool = False) -> T:
        """Register ``value`` under ``name``; see the module docstring for collisions."""
        with self._lock:
            existing = self._values.get(name)
            if existing is not None and not replace and not _same(existing, value):
                raise RegistryError(
                    f"{self.kind} name {name!r} is already registered by {describe(existing)}; "
                    f"cannot register {describe(value)} under it (pass replace=True to override)"
                )
            self._values[name] = value
        return value

    def register(self, name: str, *, replace: bool = False) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def decorate(value: T) -> T:
            return self.add(name, value, replace=replace)

        return decorate

    def remove(self, name: str) -> None:
        """Forget ``name`` (no error when it is not registered)."""
        with self._lock:
            self._values.pop(name, None)

    def get(self, name: str) -> T | None:
        """The value registered as ``name``, or None."""
        self.load_entry_points()
        with self._lock:
            return self._values.get(name)

    def lookup(self, name: str) -> T:
        """The value registered as ``name``; RegistryError with a did-you-mean otherwise."""
        value = self.get(name)
        if value is None:
            known = self.names()
            listing = f"; known: {', '.join(known)}" if 0 < len(known) <= 12 else ""
            raise RegistryError(f"unknown {self.kind} {name!r}{did_you_mean(name, known)}{listing}")
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self.load_entry_points()
        with self._lock:
            return sorted(self._values)

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, value) pairs, sorted by name (a snapshot)."""
        self.load_entry_points()
        with self._lock:
            snapshot = sorted(self._values.items())
        yield from snapshot

    def load_errors(self) -> list[str]:
        """Messages for entry points of the group that failed to load."""
        self.load_entry_points()
        return list(self._load_errors)

    def load_entry_points(self, *, force: bool = False) -> None:
        """Load the group's entry points once (``force=True`` rescans, e.g. after an install)."""
        if self._group is None:
            return
        with self._lock:
            if self._loaded and not force:
                return
            self._loaded = True
            self._load_errors.clear()
            if force:
                entry_points.cache_clear()
            for ep in entry_points(self._group):
                try:
                    target = ep.load()
                except Exception as exc:  # a broken plugin must not break the tool
                    self._load_errors.append(
                        f"{self.kind} entry point {ep.name!r} ({ep.value}) failed to load: {exc}"
                    )
                    continue
                if isinstance(target, ModuleType):  # a module: importing it registered
                    continue
                if self._accept is not None and not self._accept(target):
                    self._load_errors.append(
                        f"{self.kind} entry point {ep.name!r} ({ep.value}) is not a {self.kind}"
                    )
                    continue
                try:
                    self.add(ep.name, target)
                except RegistryError as exc:
                    self._load_errors.append(str(exc))


def _same(a: object, b: object) -> bool:
    # A module imported twice (e.g. as __main__ and by name) re-creates its classes:
    # the same qualified name is the same registration, not a collision.
    return a is b or (isinstance(a, type) and isinstance(b, type) and describe(a) == describe(b))
