"""The scheduler: a pure state core driven by a thin driver.

- :mod:`.state_machine`: every piece of scheduling state, changed only by events
  (the timing model is written out at its top); ``validate_state()`` checks it.
- :mod:`.input_policies`: when a node runs (``sync``, ``immediate``, ``keep_latest``;
  register more in :data:`INPUT_POLICIES`).
- :mod:`.nodes`: node and stream state, the node status enum and its transitions.
- :mod:`.wiring`: from a GraphSpec to connected runtime objects, once.
- :mod:`.driver`: :class:`Scheduler`, threads or deterministic; locks, calls, waiting.
- :mod:`.report`: what each unfinished node waits for (stalls, timeouts).
"""

from __future__ import annotations

from .driver import Scheduler
from .input_policies import INPUT_POLICIES, InputPolicy
from .nodes import TRANSITIONS, NodeStatus, SchedulerStateError
from .state_machine import SchedulerState

__all__ = [
    "INPUT_POLICIES",
    "TRANSITIONS",
    "InputPolicy",
    "NodeStatus",
    "Scheduler",
    "SchedulerState",
    "SchedulerStateError",
]
