"""A subscriber's private queue: where its overflow policies are applied.

A subscriber that keeps up reads its events straight from the bus's shared
log (see `raven.core.bus`) and never touches this queue. Events land here
only when the subscriber may be falling behind, or around the frames only it
gets (its acks and initial state). A log reader's unread entries arrive in
batches, the policies applied to each batch as a whole
(`raven.core.catchup`); a subscriber of few topics is offered each event
in publish order, and the policy of its kind decides what happens once
`capacity` events are held:

- ``conflate``: once the queue is full, a newer event of a topic replaces
  every queued event of that topic, and goes to the end of the queue (its
  place in time). For book deltas that would corrupt the client's book, so
  the replacement is a fresh top-N snapshot of the view (`resnapshot`),
  made when it is sent or when a newer delta is queued behind it, so the
  deltas after it chain from it.
- ``drop_oldest``: the oldest queued droppable event goes (after first
  conflating the conflatable topics, a book view's into its snapshot); the
  next frame starts with a Gap marker that says how many were dropped.
- ``disconnect``: the subscriber fails with a reason; its stream closes
  with RESOURCE_EXHAUSTED.

Below capacity nothing is conflated or dropped: a client that keeps up gets
every event. Some items are never dropped or conflated: control frames (an
ack, ordered with the events around it), and `keep` events (a closed candle,
a book status); conflatable topics may exceed the capacity by one newest
event per topic, so the queue stays bounded by capacity + topics.
"""

from __future__ import annotations

import asyncio
import collections
import enum
from collections.abc import Callable

import msgspec

from raven.types import Kind

Topic = tuple[Kind, str, str, str]  # (kind, exchange, symbol, channel)
Resnapshot = Callable[[], bytes]  # the current top-N snapshot chunk of a book view


class Policy(enum.IntEnum):
    """= raven.v1.OverflowPolicy."""

    CONFLATE = 1
    DROP_OLDEST = 2
    DISCONNECT = 3


DEFAULT_POLICY = {
    Kind.TRADE: Policy.DROP_OLDEST,
    Kind.QUOTE: Policy.CONFLATE,
    Kind.BOOK: Policy.CONFLATE,
    Kind.CANDLE: Policy.CONFLATE,
    Kind.FUNDING: Policy.CONFLATE,
    Kind.LIQUIDATION: Policy.DROP_OLDEST,
    Kind.STATUS: Policy.DROP_OLDEST,
}


class Slot:
    """A queued conflatable event. `prev` links the older queued events of
    the same topic (the live ones are always a contiguous newest run)."""

    __slots__ = ("chunk", "live", "prev", "resnapshot", "topic")

    def __init__(
        self, topic: Topic, chunk: bytes | None, prev: Slot | None, resnapshot: Resnapshot | None
    ) -> None:
        self.topic = topic
        self.chunk = chunk  # None: a snapshot is due, made by `resnapshot` when needed
        self.prev = prev
        self.resnapshot = resnapshot
        self.live = True


class _Control:
    """A non-event frame (e.g. a subscription ack), kept in order with the events."""

    __slots__ = ("frame",)

    def __init__(self, frame: bytes) -> None:
        self.frame = frame


_Item = bytes | Slot | _Control
COMPACT_AFTER = 64  # dead slots tolerated before the queue is compacted


class SubscriberStats(msgspec.Struct):
    """Counters of one subscriber, read by the metrics layer."""

    queued: int = 0  # events accepted into the queue
    sent: int = 0  # events handed to the stream writer
    conflated: int = 0  # events replaced by a newer one (CONFLATE)
    dropped: int = 0  # events dropped (DROP_OLDEST), reported to the client as Gap markers
    disconnected: int = 0  # 1 once the DISCONNECT policy fired


class Backlog:
    """The bounded queue with per-kind overflow policies (see the module doc)."""

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.capacity = capacity
        self.policies: dict[Kind, Policy] = dict(DEFAULT_POLICY)
        self.queue: collections.deque[_Item] = collections.deque()
        self.times: collections.deque[int] = collections.deque()  # publish time per item
        self.held = 0  # events in the queue that will be sent
        self.newest: dict[Topic, Slot] = {}  # newest queued slot per conflatable topic
        self.redundant = 0  # live slots that are not the newest of their topic
        self.dead = 0  # replaced slots still in the deque (skipped when drained)
        self.due = 0  # slots whose snapshot is still to be made (chunk None)
        self.wakeup = asyncio.Event()
        self.pending_gap = 0  # dropped since the last frame
        self.failure = ""  # set when a DISCONNECT policy fired
        self.on_failure: Callable[[], None] | None = None
        self.counters = SubscriberStats()  # live counts; Subscriber.stats returns a copy

    def offer(
        self, topic: Topic, chunk: bytes, now_ns: int, keep: bool, resnapshot: Resnapshot | None
    ) -> None:
        if self.failure:
            return
        policy = self.policies[topic[0]]
        conflate = policy is Policy.CONFLATE and not keep
        if self.held < self.capacity:
            self._append(topic, chunk, now_ns, conflate, resnapshot)
        elif conflate:
            self._conflate(topic, chunk, now_ns, resnapshot)
        elif policy is Policy.DISCONNECT:
            self.fail(f"queue full ({self.capacity} events): the client reads too slowly")
        else:
            self._make_room()
            self._append(topic, chunk, now_ns, False, None)

    def _control(self, frame: bytes, now_ns: int) -> None:
        self.queue.append(_Control(frame))
        self.times.append(now_ns)
        self.wakeup.set()

    def fail(self, reason: str) -> None:
        if self.failure:
            return
        self.failure = reason
        self.counters.disconnected = 1
        self.wakeup.set()
        if self.on_failure is not None:
            self.on_failure()

    def _append(
        self,
        topic: Topic,
        chunk: bytes,
        now_ns: int,
        conflate: bool,
        resnapshot: Resnapshot | None,
    ) -> None:
        if conflate:
            prev = self.newest.get(topic)
            if prev is not None:
                if prev.chunk is None and prev.resnapshot is not None:
                    prev.chunk = prev.resnapshot()  # the view as of before this event
                    self.due -= 1
                self.redundant += 1
            slot = self.newest[topic] = Slot(topic, chunk, prev, resnapshot)
            item: _Item = slot
        else:
            item = chunk
        self.queue.append(item)
        self.times.append(now_ns)
        self.held += 1
        self.counters.queued += 1
        self.wakeup.set()

    def _conflate(
        self, topic: Topic, chunk: bytes, now_ns: int, resnapshot: Resnapshot | None
    ) -> None:
        """Replace every queued event of `topic` by this one, at the queue's end
        (so it keeps its place in time relative to other topics)."""
        slot = self.newest.pop(topic, None)
        pending = False
        if slot is not None:
            if slot.chunk is None and slot.resnapshot is not None:
                self.due -= 1  # its snapshot is never made now
            self.counters.conflated += self.collapse(slot) + 1
            self.kill(slot)
            self.held -= 1
            pending = resnapshot is not None  # a book delta: send the view's snapshot
        # One newest event per topic may exceed the capacity: bounded by topics.
        self._append(topic, chunk, now_ns, True, resnapshot)
        if pending:
            self.newest[topic].chunk = None  # made by `resnapshot` when needed
            self.due += 1
        if self.dead > COMPACT_AFTER and self.dead > self.held:
            self.compact()

    def kill(self, slot: Slot) -> None:
        """Mark a replaced slot dead (skipped when drained, forgotten by `compact`)."""
        slot.live = False
        slot.chunk = slot.prev = None
        self.dead += 1

    def collapse(self, slot: Slot) -> int:
        """Drop the older queued events of `slot`'s topic; returns how many."""
        killed = 0
        older = slot.prev
        while older is not None and older.live:
            before = older.prev
            self.kill(older)
            killed += 1
            older = before
        slot.prev = None
        self.held -= killed
        self.redundant -= killed
        return killed

    def collapse_all(self) -> None:
        """Conflate the older queued events of every topic into its newest."""
        for slot in list(self.newest.values()):
            killed = self.collapse(slot)
            self.counters.conflated += killed
            if killed and slot.resnapshot is not None and slot.chunk is not None:
                # A book view lost deltas: its newest one would not chain from
                # what the client holds, so it sends the view's snapshot instead.
                slot.chunk = None
                self.due += 1

    def compact(self) -> None:
        """Forget dead slots (replaced events) so memory follows the live count."""
        pairs = [
            (item, t)
            for item, t in zip(self.queue, self.times, strict=True)
            if type(item) is not Slot or item.live
        ]
        self.queue = collections.deque(item for item, _ in pairs)
        self.times = collections.deque(t for _, t in pairs)
        self.dead = 0

    def _make_room(self) -> None:
        if self.redundant:
            self.collapse_all()
            if self.dead > COMPACT_AFTER and self.dead > self.held:
                self.compact()
            if self.held < self.capacity:
                return
        queue, times = self.queue, self.times
        while queue and type(queue[0]) is Slot and not queue[0].live:
            queue.popleft()
            times.popleft()
            self.dead -= 1
        # The oldest droppable event: only newest-per-topic slots and control
        # frames can stand before it, so this scan is short.
        for i, item in enumerate(queue):
            if type(item) is bytes:
                del queue[i]
                del times[i]
                self.held -= 1
                self.pending_gap += 1
                self.counters.dropped += 1
                return
        # Nothing droppable: the queue holds one newest event per topic.

    # --- consumer side -------------------------------------------------------

    def take(self, limit: int, out: list[bytes]) -> tuple[bytes | None, int]:
        """Move up to `limit` queued chunks, oldest first, into `out`, stopping
        before a control frame; or the control frame when it comes first.
        Returns (control frame or None, publish time of the first event or 0)."""
        queue, times = self.queue, self.times
        first_ns = 0
        start = len(out)
        while queue and len(out) < limit:
            item = queue[0]
            kind = type(item)
            if kind is _Control:
                if len(out) > start:
                    break
                queue.popleft()
                times.popleft()
                return item.frame, 0  # type: ignore[union-attr]
            if kind is Slot:
                slot: Slot = item  # type: ignore[assignment]
                if not slot.live:
                    queue.popleft()
                    times.popleft()
                    self.dead -= 1
                    continue
                if slot.chunk is None and self.unsettled():
                    break  # a snapshot is due: its view's unread deltas go into it first
                queue.popleft()
                published = times.popleft()
                out.append(self._take(slot))
            else:
                queue.popleft()
                published = times.popleft()
                out.append(item)  # type: ignore[arg-type]
            if not first_ns:
                first_ns = published
        self.held -= len(out) - start
        return None, first_ns

    def unsettled(self) -> bool:
        """Whether events offered later are still to be queued (a log
        reader's unread entries): a due snapshot waits for them."""
        return False

    def _take(self, slot: Slot) -> bytes:
        slot.live = False
        topic = slot.topic
        if self.newest.get(topic) is slot:
            del self.newest[topic]
        else:
            self.redundant -= 1
        chunk = slot.chunk
        if chunk is None:
            if slot.resnapshot is not None:
                self.due -= 1
            chunk = slot.resnapshot() if slot.resnapshot is not None else b""
        slot.chunk = slot.prev = slot.resnapshot = None
        return chunk
