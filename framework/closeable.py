"""``Closeable``: the one base for objects that hold a resource until ``close()``."""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

_Self = TypeVar("_Self", bound="Closeable")


class Closeable:
    """Context-manager support for anything with a ``close()``.

    ``with X(...) as x:`` closes ``x`` on the way out, also on an exception or Ctrl-C
    (so a writer finishes its file with what was done). Subclasses implement ``close``
    idempotently: it may be called again after the block.
    """

    def close(self) -> None:
        """Release the resource. Safe to call more than once."""

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
