"""The text that says what every unfinished node waits for (stalls, timeouts, cancels)."""

from __future__ import annotations

from ..timestamp import DONE, describe
from .nodes import CLOSED, PHASE, READY, RUNNING
from .state_machine import SchedulerState


def waits_report(state: SchedulerState, headline: str, now: float) -> str:
    """Queued heads and the bounds each unfinished node waits on; ``now`` is monotonic."""
    lines = [f"graph '{state.spec.name}': {headline}"]
    open_inputs = [st for st in state.graph_inputs if st.bound < DONE]
    if open_inputs:
        lines.append(
            "  graph inputs still open: "
            + ", ".join(f"'{st.name}' (bound {describe(st.bound)})" for st in open_inputs)
        )
    for node in state.nodes:
        if node.status is CLOSED:
            continue
        where = node.spec.where()
        if node.status is RUNNING:
            status = "running"
            phase = PHASE.get(node.call_kind)
            if phase is not None:
                took = now - node.call_started
                status = f"running {phase} at timestamp {describe(node.call_ts)} for {took:.1f} s"
        else:
            status = "ready" if node.status is READY else "waiting"
        lines.append(f"  {where} [{node.spec.calculator_name}, {status}]")
        if node.is_source:
            full = state.full_queues_of_source(node)
            if full:
                lines.append(f"    source throttled by full queue(s): {', '.join(full)}")
        for q in node.queues:
            edge = " (back edge)" if q.back_edge else ""
            if q.packets:
                lines.append(
                    f"    input {q.port} stream '{q.stream}'{edge}: {len(q.packets)} queued, "
                    f"head at {describe(q.packets[0].timestamp)}"
                )
            elif q.bound < DONE:
                lines.append(
                    f"    input {q.port} stream '{q.stream}'{edge}: empty, waits on its bound "
                    f"{describe(q.bound)}"
                )
            else:
                lines.append(f"    input {q.port} stream '{q.stream}'{edge}: done")
    return "\n".join(lines)
