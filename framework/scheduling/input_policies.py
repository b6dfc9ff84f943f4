"""Input policies: when a node runs, and which packets its call sees.

MediaPipe calls these InputStreamHandlers. Each node gets one policy object, made by
the class registered under the node's ``input_policy`` name in :data:`INPUT_POLICIES`.
A policy answers two questions for the scheduler's state core:

- :meth:`InputPolicy.readiness`: is the node ready, for which call, at which timestamp?
- :meth:`InputPolicy.take`: fill the call's input set (and the input bounds it sees).

It never touches other nodes, streams or threads. The rules each policy implements
are written out in :mod:`facegraph.scheduling.state_machine`.
"""

from __future__ import annotations

from typing import ClassVar

from ..named_registry import Registry
from ..timestamp import DONE, MIN, POST_STREAM, Timestamp
from .nodes import BOUND, CLOSE, NONE, PACKET, PROPAGATE, CallKind, InputQueue, NodeState

_ABOVE_DONE = DONE + 1  # sentinel larger than any bound
NOT_READY: tuple[CallKind, Timestamp] = (NONE, 0)
CLOSE_NOW: tuple[CallKind, Timestamp] = (CLOSE, POST_STREAM)


def scan(queues: list[InputQueue]) -> tuple[Timestamp, Timestamp]:
    """(lowest head timestamp of the non-empty queues, lowest bound of the empty ones).

    Either is above ``DONE`` when there is no such queue. Their minimum is the node's
    *settled* timestamp: the lowest timestamp it may still receive.
    """
    min_head = min_empty = _ABOVE_DONE
    for q in queues:
        pk = q.packets
        if pk:
            h = pk[0].timestamp
            if h < min_head:  # noqa: PLR1730 (not min(): runs per queue per readiness check)
                min_head = h
        elif q.bound < min_empty:
            min_empty = q.bound
    return min_head, min_empty


def settled(queues: list[InputQueue]) -> Timestamp:
    """The lowest timestamp a node with these inputs may still receive (``DONE`` at most)."""
    min_head, min_empty = scan(queues)
    return min(min_head, min_empty, DONE)


class InputPolicy:
    """Base class: one instance per node. Subclasses implement :meth:`readiness`."""

    #: The ``input_policy`` name graphs use for it.
    name: ClassVar[str] = ""
    #: Whether its queues hold packets back (full queues throttle producers) or drop.
    limits_queues: ClassVar[bool] = True

    __slots__ = ("node", "queues")

    def __init__(self, node: NodeState) -> None:
        self.node = node
        self.queues = node.queues

    def readiness(self) -> tuple[CallKind, Timestamp]:
        """What the node is ready for now. Calling it again without a change is a no-op."""
        raise NotImplementedError

    def take(self, kind: CallKind, ts: Timestamp) -> None:
        """Fill the input set of a call of ``kind`` at ``ts`` (consuming its packets)."""
        ctx = self.node.ctx
        inputs = ctx.inputs
        # Snapshot each input's bound together with the input set, so that
        # ctx.input_bound() is consistent with the packets delivered (and the same
        # in both modes), however the queues change while the call runs.
        bounds = ctx.in_bounds
        if kind is PACKET:
            for i, q in enumerate(self.queues):
                pk = q.packets
                if pk and pk[0].timestamp == ts:
                    inputs[i] = pk.popleft()
                else:
                    inputs[i] = None
                bounds[i] = pk[0].timestamp if pk else q.bound
        else:
            for i, q in enumerate(self.queues):
                inputs[i] = None
                pk = q.packets
                bounds[i] = pk[0].timestamp if pk else q.bound

    def _propagate(self, settled: Timestamp) -> tuple[CallKind, Timestamp]:
        """No call is due: pass the settled bound on if the node's outputs lag behind it."""
        node = self.node
        if node.offset_zero:
            for b in node.ctx.out_bounds:
                if b < settled:
                    return PROPAGATE, settled
        return NOT_READY


#: Input policies by name; register a subclass to add one.
INPUT_POLICIES: Registry[type[InputPolicy]] = Registry("input policy")


@INPUT_POLICIES.register("sync")
class SyncPolicy(InputPolicy):
    """MediaPipe's DefaultInputStreamHandler: run once a timestamp is settled on all inputs."""

    name = "sync"
    __slots__ = ()

    def readiness(self) -> tuple[CallKind, Timestamp]:
        # scan(self.queues), inlined: the default policy's check runs ~3 times per call.
        min_head = min_empty = _ABOVE_DONE
        for q in self.queues:
            pk = q.packets
            if pk:
                h = pk[0].timestamp
                if h < min_head:  # noqa: PLR1730
                    min_head = h
            elif q.bound < min_empty:
                min_empty = q.bound
        if min_head < min_empty:
            return PACKET, min_head
        settled = min_empty  # <= min_head here
        if settled >= DONE:
            return CLOSE_NOW
        node = self.node
        if node.pob:
            if settled - 1 > node.last_ts and settled > MIN:
                return BOUND, settled - 1
            return NOT_READY
        if node.offset_zero:  # self._propagate(settled), inlined
            for b in node.ctx.out_bounds:
                if b < settled:
                    return PROPAGATE, settled
        return NOT_READY


@INPUT_POLICIES.register("immediate")
class ImmediatePolicy(InputPolicy):
    """MediaPipe's ImmediateInputStreamHandler: run on each packet as it arrives."""

    name = "immediate"
    __slots__ = ("seen",)

    def __init__(self, node: NodeState) -> None:
        super().__init__(node)
        #: Per input, its bound as of the last call (process_on_bounds: what is new).
        self.seen: list[Timestamp] = [q.bound for q in self.queues]

    def readiness(self) -> tuple[CallKind, Timestamp]:
        min_head, settled = scan(self.queues)
        if min_head < _ABOVE_DONE:
            return PACKET, min_head
        if settled >= DONE:
            return CLOSE_NOW
        if self.node.pob:
            best = MIN  # only a bound above MIN gives a valid call timestamp (best - 1)
            for q, seen in zip(self.queues, self.seen, strict=True):
                b = q.bound
                if b > seen and b > best:
                    best = b
            if best > MIN:
                return BOUND, best - 1
            return NOT_READY
        return self._propagate(settled)

    def take(self, kind: CallKind, ts: Timestamp) -> None:
        super().take(kind, ts)
        if self.node.pob:
            seen = self.seen
            for i, q in enumerate(self.queues):
                seen[i] = q.bound


@INPUT_POLICIES.register("keep_latest")
class KeepLatestPolicy(SyncPolicy):
    """MediaPipe's FixedSizeInputStreamHandler (target size 1): sync, newest first.

    Before each readiness check, every timestamp older than the newest one queued on
    *all* inputs is dropped (counted in the queue stats), so a slow node always
    processes the latest complete input set and the inputs stay aligned. Its queues
    never throttle the producers: each keeps at most ``max_queue_size`` packets,
    dropping its oldest beyond that.
    """

    name = "keep_latest"
    limits_queues = False
    __slots__ = ()

    def readiness(self) -> tuple[CallKind, Timestamp]:
        queues = self.queues
        newest = _ABOVE_DONE
        for q in queues:
            pk = q.packets
            if not pk:
                break  # an input has nothing queued: no timestamp is complete yet
            newest = min(newest, pk[-1].timestamp)
        else:
            for q in queues:
                q.drop_below(newest)
        return super().readiness()
