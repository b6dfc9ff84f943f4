"""``threads="auto"``: run a model on one thread or on two, whichever is faster now.

XNNPACK with two threads cuts the face models' invoke time by 25-45 % on an idle machine
(Attention Mesh 0.90 → 0.67 ms, Tasks V2 2.9 → 1.6 ms), but on a busy machine the second
thread waits for a core and the same call gets slower than on one thread. Neither fixed
setting wins everywhere, and the machine's load changes while a video runs. So a model
built with ``threads="auto"`` keeps two interpreters of the same flatbuffer (one thread,
``n`` threads) and a :class:`ThreadChooser` that times every invoke and picks the
interpreter with the lower recent median, trying the other one now and then to notice
that the load changed.

Outputs do not depend on the choice: :class:`~facegraph.models.inference.TfLiteModel`
checks at load that both interpreters give the same bits on the same input, and keeps
only the one-thread interpreter if they don't (XNNPACK's kernels partition work across
threads without changing any sum's order for these models, but that is checked, not
assumed).

The chooser is plain bookkeeping, without clocks of its own, so its policy is tested
with made-up timings. It is not asked while the model's invokes overlap another's on a
machine they fill (two faces side by side on two CPUs): the model then runs one thread,
untimed (:class:`~facegraph.models.inference.TfLiteModel`, :meth:`ThreadChooser.record_untimed`).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from typing import Literal

from facegraph.workers import allowed_cpu_count

__all__ = ["ThreadChooser", "Threads", "auto_thread_count", "check_threads"]

#: A model's thread setting: a fixed count, or "auto" (see the module docstring).
Threads = int | Literal["auto"]


def auto_thread_count() -> int:
    """The second arm of ``"auto"``: two threads, or one on a single-CPU machine.

    Two, not all CPUs: these models are small (a few ms), and a third thread measured
    no faster while costing CPU time in XNNPACK's spinning workers.
    """
    return min(2, allowed_cpu_count())


def check_threads(threads: object) -> Threads:
    """``threads`` if it is an int ≥ 1 or ``"auto"``; else a ValueError saying so."""
    if threads == "auto" or (
        isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1
    ):
        return threads
    raise ValueError(f"threads must be an integer >= 1 or 'auto', got {threads!r}")


class ThreadChooser:
    """Picks which of several interpreters (``arms``: their thread counts) runs next.

    - Only warm runs count. A call on another arm than the call before it is cold: that
      interpreter's packed weights and buffers are out of the cache, and its first call
      was measured 10-30 % slower than the same arm run continuously. Counting such calls
      made the arm in use look better than the one only explored, so the choice stuck.
      (Each arm's very first run is cold too: XNNPACK packs weights and wakes threads.)
    - Warm-up: one arm at a time until each has ``warmup`` counted runs.
    - Then the arm with the lowest median of its last ``window`` counted runs is used, and
      about every ``explore_every`` calls another arm runs ``burst`` calls in a row (the
      first cold, the rest counted), so a change of load shows up in its figures too. On a
      steady machine that costs ``burst`` slower calls, plus one uncounted call back on
      the best arm, in ``explore_every``.
    - An exploration whose counted call beats the arm in use (below its median) says the
      load changed since the explored arm last ran: its older figures are dropped and it
      runs on until it has ``warmup`` fresh counted runs, which then decide. Otherwise a
      window of figures from a busy spell kept an arm out long after the spell ended:
      ``face_mesh_static``'s detector stayed on one thread (1.1 ms) for about 150 calls
      while each exploration measured two at 0.7 ms, one figure replacing one busy 1.2 ms
      figure every ~50 calls.
    - The gaps between explorations vary at random (0.5-1.5 × ``explore_every``, from a
      seeded generator, so a run is reproducible). A fixed period aliases with periodic
      work: frames in blocks of 10 after a pause, as ``facegraph bench`` runs them, put
      every exploration's counted call on a block's cold first frame, so two threads
      were judged on their slowest calls (0.82 ms there, 0.40-0.46 ms later in a block,
      where one thread took 0.64) and not chosen again.

    Call :meth:`pick`, run that arm, then :meth:`record` its time in seconds.
    Not thread-safe: one per model, like the model.
    """

    def __init__(
        self,
        arms: Sequence[int],
        *,
        window: int = 9,
        warmup: int = 3,
        explore_every: int = 50,
        burst: int = 2,
        seed: int = 0,
    ) -> None:
        if len(arms) < 2:
            raise ValueError(f"a chooser needs at least two arms, got {list(arms)}")
        if not 1 <= warmup <= window or not 2 <= burst < explore_every:
            raise ValueError("need 1 <= warmup <= window and 2 <= burst < explore_every")
        self.arms = tuple(arms)
        self.warmup = warmup
        self.explore_every = explore_every
        self.burst = burst
        self._times: list[deque[float]] = [deque(maxlen=window) for _ in self.arms]
        self._runs = [0] * len(self.arms)
        self._best = 0
        self._calls = 0
        self._explored = 0
        self._random = random.Random(seed)
        self._next_explore = self._gap()
        self._streak = (0, 0)  # (arm, calls still due on it): an exploration burst
        self._exploring: int | None = None  # an explored arm before its first counted run
        self._previous: int | None = None  # the arm of the last recorded call

    @property
    def best(self) -> int:
        """Index of the arm used outside exploration (the lowest median so far)."""
        return self._best

    @property
    def runs(self) -> dict[int, int]:
        """Calls made so far on each arm, by thread count."""
        return dict(zip(self.arms, self._runs, strict=True))

    def pick(self) -> int:
        """Index (into :attr:`arms`) of the arm to run next."""
        self._calls += 1
        arm, due = self._streak
        if due:
            self._streak = (arm, due - 1)
            return arm
        # Warm-up, one arm at a time (so that only its first call is cold): the arm of the
        # last call until it has enough counted runs, then the one with the fewest.
        last = self._previous
        if last is not None and len(self._times[last]) < self.warmup:
            return last
        short = min(range(len(self.arms)), key=lambda i: len(self._times[i]))
        if len(self._times[short]) < self.warmup:
            return short
        if self._calls >= self._next_explore:
            self._next_explore = self._calls + self._gap()
            others = [i for i in range(len(self.arms)) if i != self._best]
            self._explored += 1
            arm = others[self._explored % len(others)]
            self._streak = (arm, self.burst - 1)
            self._exploring = arm
            return arm
        return self._best

    def _gap(self) -> int:
        """Calls until the next exploration: 0.5-1.5 × explore_every (see the class)."""
        half = self.explore_every // 2
        return self.explore_every - half + self._random.randrange(2 * half + 1)

    def record_untimed(self, arm: int) -> None:
        """A call on ``arm`` that :meth:`pick` did not choose and whose time says nothing
        about the arms (the model ran beside another invoke): counted in :attr:`runs`,
        and the next call on another arm is cold."""
        self._previous = arm
        self._runs[arm] += 1

    def record(self, arm: int, seconds: float) -> None:
        """The time ``arm`` (an index from :meth:`pick`) took."""
        cold = arm != self._previous  # also an arm's first run: never the previous one
        self._previous = arm
        self._runs[arm] += 1
        if cold:
            return
        if arm == self._exploring:
            self._exploring = None  # only its first counted run decides
            if seconds < _median(self._times[self._best]):
                # The load changed since this arm last ran: judge it on fresh runs only
                # (the warm-up rule in pick runs it on until it has ``warmup`` of them).
                self._times[arm].clear()
        self._times[arm].append(seconds)
        if all(len(t) >= self.warmup for t in self._times):
            medians = [_median(t) for t in self._times]
            self._best = min(range(len(self.arms)), key=medians.__getitem__)


def _median(values: deque[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])
