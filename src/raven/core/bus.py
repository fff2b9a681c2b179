"""Fan-out: each encoded event goes to every subscriber of its topic.

A topic is (kind, exchange, symbol, channel); the channel tells apart the
candle intervals and the book views (depth, mode) of one symbol. The bus
never blocks and never waits for a client: `publish` offers the shared,
already-encoded bytes (see `raven.codec`) to each subscriber's queue.

Each `Subscriber` owns one bounded queue (`capacity` events) and an overflow
policy per kind, chosen at subscribe time:

- ``conflate``: once the queue is full, a newer event of a topic replaces
  every queued event of that topic, and goes to the end of the queue (its
  place in time). For book deltas that would corrupt the client's book, so
  the replacement is a fresh top-N snapshot of the view (`resnapshot`),
  made when it is sent or when a newer delta is queued behind it, so the
  deltas after it chain from it.
- ``drop_oldest``: the oldest queued droppable event goes (after first
  conflating the conflatable topics); the next frame starts with a Gap
  marker that says how many were dropped.
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
from typing import Any

import msgspec

from raven.core.latency import Histogram
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


class _Slot:
    """A queued conflatable event. `prev` links the older queued events of
    the same topic (the live ones are always a contiguous newest run)."""

    __slots__ = ("chunk", "live", "prev", "resnapshot", "topic")

    def __init__(
        self, topic: Topic, chunk: bytes | None, prev: _Slot | None, resnapshot: Resnapshot | None
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


_Item = bytes | _Slot | _Control
COMPACT_AFTER = 64  # dead slots tolerated before the queue is compacted


class SubscriberStats(msgspec.Struct):
    """Counters of one subscriber, read by the metrics layer."""

    queued: int = 0  # events accepted into the queue
    sent: int = 0  # events handed to the stream writer
    conflated: int = 0  # events replaced by a newer one (CONFLATE)
    dropped: int = 0  # events dropped (DROP_OLDEST), reported to the client as Gap markers
    disconnected: int = 0  # 1 once the DISCONNECT policy fired


class Subscriber:
    """One client stream's queue. The bus offers; the stream's sender drains."""

    def __init__(self, name: str, capacity: int, latency: Histogram | None = None) -> None:
        self.name = name
        self.capacity = capacity
        self.policies: dict[Kind, Policy] = dict(DEFAULT_POLICY)
        self.queue: collections.deque[_Item] = collections.deque()
        self.times: collections.deque[int] = collections.deque()  # publish time per item
        self.live = 0  # events in the queue that will be sent
        self.newest: dict[Topic, _Slot] = {}  # newest queued slot per conflatable topic
        self.redundant = 0  # live slots that are not the newest of their topic
        self.dead = 0  # replaced slots still in the deque (skipped when drained)
        self.topics: set[Topic] = set()  # what the bus routes here
        self.wakeup = asyncio.Event()
        self.next_sequence = 1
        self.pending_gap = 0  # dropped since the last frame
        self.failure = ""  # set when a DISCONNECT policy fired
        self.on_failure: Callable[[], None] | None = None
        self.latency = latency  # published -> sent, observed once per frame (its oldest event)
        self.stats = SubscriberStats()
        # Chunks of sampled events waiting to be sent, set by raven.ops.tracing only
        # while there are some: the sender checks it once per frame, never per event.
        self.traced: dict[int, Any] | None = None

    @property
    def depth(self) -> int:
        """Events queued now (the queue-depth gauge)."""
        return self.live

    # --- producer side (the bus) --------------------------------------------

    def offer(
        self, topic: Topic, chunk: bytes, now_ns: int, keep: bool, resnapshot: Resnapshot | None
    ) -> None:
        if self.failure:
            return
        policy = self.policies[topic[0]]
        conflate = policy is Policy.CONFLATE and not keep
        if self.live < self.capacity:
            self._append(topic, chunk, now_ns, conflate, resnapshot)
        elif conflate:
            self._conflate(topic, chunk, now_ns, resnapshot)
        elif policy is Policy.DISCONNECT:
            self.fail(f"queue full ({self.capacity} events): the client reads too slowly")
        else:
            self._make_room()
            self._append(topic, chunk, now_ns, False, None)

    def push_state(
        self, topic: Topic, chunk: bytes, now_ns: int, resnapshot: Resnapshot | None = None
    ) -> None:
        """Queue a new subscription's initial state, whatever the capacity."""
        conflate = self.policies[topic[0]] is Policy.CONFLATE or resnapshot is not None
        self._append(topic, chunk, now_ns, conflate, resnapshot)

    def push_control(self, frame: bytes, now_ns: int) -> None:
        """Queue a non-event frame behind the events queued so far."""
        self.queue.append(_Control(frame))
        self.times.append(now_ns)
        self.wakeup.set()

    def fail(self, reason: str) -> None:
        if self.failure:
            return
        self.failure = reason
        self.stats.disconnected = 1
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
                self.redundant += 1
            slot = self.newest[topic] = _Slot(topic, chunk, prev, resnapshot)
            item: _Item = slot
        else:
            item = chunk
        self.queue.append(item)
        self.times.append(now_ns)
        self.live += 1
        self.stats.queued += 1
        self.wakeup.set()

    def _conflate(
        self, topic: Topic, chunk: bytes, now_ns: int, resnapshot: Resnapshot | None
    ) -> None:
        """Replace every queued event of `topic` by this one, at the queue's end
        (so it keeps its place in time relative to other topics)."""
        slot = self.newest.pop(topic, None)
        pending = False
        if slot is not None:
            self.stats.conflated += self._collapse(slot) + 1
            self._kill(slot)
            self.live -= 1
            pending = resnapshot is not None  # a book delta: send the view's snapshot
        # One newest event per topic may exceed the capacity: bounded by topics.
        self._append(topic, chunk, now_ns, True, resnapshot)
        if pending:
            self.newest[topic].chunk = None  # made by `resnapshot` when needed
        if self.dead > COMPACT_AFTER and self.dead > self.live:
            self._compact()

    def _kill(self, slot: _Slot) -> None:
        slot.live = False
        slot.chunk = slot.prev = None
        self.dead += 1

    def _collapse(self, slot: _Slot) -> int:
        """Drop the older queued events of `slot`'s topic; returns how many."""
        killed = 0
        older = slot.prev
        while older is not None and older.live:
            before = older.prev
            self._kill(older)
            killed += 1
            older = before
        slot.prev = None
        self.live -= killed
        self.redundant -= killed
        return killed

    def _compact(self) -> None:
        """Forget dead slots (replaced events) so memory follows the live count."""
        pairs = [
            (item, t)
            for item, t in zip(self.queue, self.times, strict=True)
            if type(item) is not _Slot or item.live
        ]
        self.queue = collections.deque(item for item, _ in pairs)
        self.times = collections.deque(t for _, t in pairs)
        self.dead = 0

    def _make_room(self) -> None:
        if self.redundant:
            for slot in list(self.newest.values()):
                self.stats.conflated += self._collapse(slot)
            if self.dead > COMPACT_AFTER and self.dead > self.live:
                self._compact()
            if self.live < self.capacity:
                return
        queue, times = self.queue, self.times
        while queue and type(queue[0]) is _Slot and not queue[0].live:
            queue.popleft()
            times.popleft()
            self.dead -= 1
        # The oldest droppable event: only newest-per-topic slots and control
        # frames can stand before it, so this scan is short.
        for i, item in enumerate(queue):
            if type(item) is bytes:
                del queue[i]
                del times[i]
                self.live -= 1
                self.pending_gap += 1
                self.stats.dropped += 1
                return
        # Nothing droppable: the queue holds one newest event per topic.

    # --- consumer side (the stream's sender) --------------------------------

    def drain(self, limit: int, now_ns: int) -> tuple[bytes | None, list[bytes]]:
        """The next control frame, or up to `limit` event chunks, oldest first."""
        queue, times = self.queue, self.times
        out: list[bytes] = []
        first_ns = 0
        while queue and len(out) < limit:
            item = queue[0]
            kind = type(item)
            if kind is _Control:
                if out:
                    break
                queue.popleft()
                times.popleft()
                return item.frame, out  # type: ignore[union-attr]
            queue.popleft()
            published = times.popleft()
            if kind is _Slot:
                slot: _Slot = item  # type: ignore[assignment]
                if not slot.live:
                    self.dead -= 1
                    continue
                out.append(self._take(slot))
            else:
                out.append(item)  # type: ignore[arg-type]
            if not first_ns:
                first_ns = published
        if not queue:
            self.wakeup.clear()
        self.live -= len(out)
        self.stats.sent += len(out)
        if first_ns and self.latency is not None:
            self.latency.observe_ns(now_ns - first_ns)
        return None, out

    def _take(self, slot: _Slot) -> bytes:
        slot.live = False
        topic = slot.topic
        if self.newest.get(topic) is slot:
            del self.newest[topic]
        else:
            self.redundant -= 1
        chunk = slot.chunk
        if chunk is None:
            chunk = slot.resnapshot() if slot.resnapshot is not None else b""
        slot.chunk = slot.prev = slot.resnapshot = None
        return chunk


class Bus:
    """Topic -> subscribers. Publishing is a dict lookup and one offer per subscriber."""

    def __init__(self) -> None:
        self._subs: dict[Topic, list[Subscriber]] = {}
        self.published = 0  # events published (whether or not anyone subscribed)
        self.published_by_kind = [0] * (max(Kind) + 1)  # indexed by Kind

    def subscribe(self, sub: Subscriber, topic: Topic) -> bool:
        """Route `topic` to `sub`; False when it already was."""
        if topic in sub.topics:
            return False
        sub.topics.add(topic)
        self._subs.setdefault(topic, []).append(sub)
        return True

    def unsubscribe(self, sub: Subscriber, topic: Topic) -> bool:
        if topic not in sub.topics:
            return False
        sub.topics.discard(topic)
        subs = self._subs[topic]
        subs.remove(sub)
        if not subs:
            del self._subs[topic]
        return True

    def remove(self, sub: Subscriber) -> None:
        for topic in list(sub.topics):
            self.unsubscribe(sub, topic)

    def has_subscribers(self, topic: Topic) -> bool:
        return topic in self._subs

    def subscribers(self, topic: Topic) -> tuple[Subscriber, ...]:
        """Who gets `topic` now (tracing follows a sampled event to its senders)."""
        return tuple(self._subs.get(topic, ()))

    def publish(
        self,
        topic: Topic,
        chunk: bytes,
        now_ns: int,
        keep: bool = False,
        resnapshot: Resnapshot | None = None,
    ) -> None:
        self.published += 1
        self.published_by_kind[topic[0]] += 1
        subs = self._subs.get(topic)
        if subs:
            for sub in subs:
                sub.offer(topic, chunk, now_ns, keep, resnapshot)

    @property
    def subscriber_count(self) -> int:
        return len({id(s) for subs in self._subs.values() for s in subs})
