"""Every error facegraph raises on purpose derives from :class:`FacegraphError`.

Messages name the place the user can fix: the YAML file and line, the node,
the stream and the timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass


class FacegraphError(Exception):
    """Base class of facegraph's own errors."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found while loading or validating a graph."""

    message: str
    file: str | None = None
    line: int | None = None
    node: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
        elif self.line is not None:
            where = f"line {self.line}"
        parts = [p for p in (where, f"node '{self.node}'" if self.node else "") if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class GraphConfigError(FacegraphError):
    """A graph could not be loaded or failed validation; holds every problem found."""

    def __init__(self, problems: list[Problem], more: int = 0) -> None:
        #: The problems listed (at most ``facegraph.graph_limits.MAX_PROBLEMS``).
        self.problems = list(problems)
        #: Further problems that were counted but not kept.
        self.more = more
        count = self.total
        header = f"graph is invalid ({count:,} problem{'s' if count != 1 else ''}):"
        lines = [header, *(f"  - {p}" for p in self.problems)]
        if more:
            lines.append(f"  … and {more:,} more")
        super().__init__("\n".join(lines))

    @property
    def total(self) -> int:
        """Every problem found, listed or not."""
        return len(self.problems) + self.more


class RegistryError(FacegraphError):
    """A calculator name could not be resolved or registered."""


class TimestampError(FacegraphError):
    """A packet violated a stream's timestamp bound."""


class CalculatorError(FacegraphError):
    """A calculator raised; names the node, the timestamp and keeps the original traceback."""

    def __init__(
        self,
        node: str,
        calculator: str,
        phase: str,
        timestamp: str,
        original: BaseException,
        traceback_text: str,
    ) -> None:
        self.node = node
        self.calculator = calculator
        self.phase = phase
        self.timestamp = timestamp
        self.original = original
        self.traceback_text = traceback_text
        super().__init__(
            f"node '{node}' ({calculator}) failed in {phase} at timestamp {timestamp}: "
            f"{type(original).__name__}: {original}\n--- original traceback ---\n{traceback_text}"
        )


class GraphStalledError(FacegraphError):
    """The graph can make no progress; the message says which node waits on what."""


class GraphClosedError(FacegraphError):
    """An operation needs a running graph, but the graph has finished or was cancelled."""
