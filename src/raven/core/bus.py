"""Fan-out: each encoded event goes to every subscriber of its topic.

A topic is (kind, exchange, symbol, channel); the channel tells apart the
candle intervals and the book views (depth, mode) of one symbol. The bus
never blocks and never waits for a client.

The bus keeps ONE shared, bounded event log: a ring of `size` entries
(topic id, the shared encoded chunk of `raven.codec`, publish time, keep /
resnapshot), appended once per event that anyone subscribes to. A
subscriber is a cursor into it plus a membership bytearray by topic id, so
publishing costs the same for 1 subscriber or 100: a subscriber that keeps
up reads the entries of its topics straight from the log when its sender
drains it (C-level slices and `itertools.compress`, no per-event objects).
The only per-subscriber work on publish is waking the ones that were idle
(their cursor had reached the head) and whose topic this is.

Overflow policies (conflate, drop_oldest, disconnect; see
`raven.core.backlog`) are applied lazily and in bulk. A subscriber reads
its entries straight from the log until it is `capacity - held + slack`
entries behind (`slack`: its capacity or half the log, whichever is
smaller, times 1/2 to 15/16 by subscriber, so that laggards that fell
behind together are not all settled at one publish; never more than the
log's size in all, so the ring never overwrites an unread entry):
at that position (its *deadline*, kept in a heap so publish checks one
int) the bus *settles* it: its unread entries move to its private queue in
one pass, the policies applied to them as a batch (`raven.core.catchup`
says what a batch conflates, drops or disconnects), which brings it back
within `capacity` (+ one newest event per conflated topic). So a laggard
costs a bulk pass once per `slack` entries, mostly in C, and publishing
costs the same with any number of laggards; a laggard that drains its
queue reads the log again. A stream may be up to `slack` events past its
capacity before its policies apply. A book snapshot due in the queue is
made when sent, after a settle, so it is taken as of after every delta it
replaces (`Backlog.unsettled`).

Subscribing, unsubscribing, a subscriber's acks and initial state settle it
first, so they take effect at that point of the stream, as before.

A reader pays for every entry it scans, its own or not, so a subscriber
routed few topics (`direct_topics`, e.g. one symbol's kinds) is instead
offered each of its events on publish, straight into its private queue (the
per-event path, which costs per delivery); only topics that some log reader
wants are logged. A subscriber switches mode when its topic count crosses
the threshold (it is settled first, so nothing is reordered).
"""

from __future__ import annotations

import heapq
import itertools
from itertools import compress
from typing import Any

from raven.core.backlog import (
    COMPACT_AFTER,
    DEFAULT_POLICY,
    Backlog,
    Policy,
    Resnapshot,
    SubscriberStats,
    Topic,
)
from raven.core.catchup import Batch, Extra, absorb
from raven.core.latency import Histogram
from raven.types import Kind

__all__ = [
    "COMPACT_AFTER",
    "DEFAULT_POLICY",
    "LOG_SIZE",
    "Bus",
    "Policy",
    "Resnapshot",
    "Subscriber",
    "SubscriberStats",
    "Topic",
]

# A subscriber routed at most this many topics is offered its events on
# publish (cost per delivery), instead of reading the log (cost per entry
# it scans: every entry since its last read, most of them not its own).
DIRECT_TOPICS = 16
LOG_SIZE = 16384  # entries in the shared log (a power of two): more than [server] queue_size
_NEVER = 1 << 62
_SPREAD = 16


class _Route:
    """A topic with subscribers: its id, its direct subscribers, how many read the log."""

    __slots__ = ("direct", "logged", "tid")

    def __init__(self, tid: int) -> None:
        self.tid = tid
        self.direct: list[Subscriber] = []
        self.logged = 0


class Subscriber(Backlog):
    """One client stream's view of the bus: a cursor into the log, and the
    private queue where its policies apply. The bus routes; the sender drains."""

    def __init__(self, name: str, capacity: int, latency: Histogram | None = None) -> None:
        super().__init__(name, capacity)
        self.topics: set[Topic] = set()  # what the bus routes here
        self.next_sequence = 1
        self.latency = latency  # published -> sent, observed once per frame (its oldest event)
        # Chunks of sampled events waiting to be sent, set by raven.ops.tracing only
        # while there are some: the sender checks it once per frame, never per event.
        self.traced: dict[int, Any] | None = None
        self.bus: Bus | None = None  # set by the first subscribe
        self.cursor = 0  # log position of the next entry to read
        self.member = bytearray()  # by topic id: 1 where the topic is routed here
        self.idle = False  # on the bus's idle list: the next publish of its topics wakes it
        self.serial = 0  # its current entry in the bus's deadline heap
        self.direct = True  # few topics: offered each event on publish, not reading the log
        self.spread = _SPREAD  # its slack, in 1/_SPREAD-ths of the largest (set by the bus)

    @property
    def live(self) -> int:
        """Events queued privately or unread in the log (the next settle's
        policies may still conflate or drop some of the unread)."""
        return self.held + self._unread()

    @property
    def depth(self) -> int:
        """Events queued now (the queue-depth gauge)."""
        return self.live

    @property
    def stats(self) -> SubscriberStats:
        """The counters now (a copy; the log's unread entries count as queued)."""
        s = self.counters
        return SubscriberStats(
            s.queued + self._unread(), s.sent, s.conflated, s.dropped, s.disconnected
        )

    def _unread(self) -> int:
        bus = self.bus
        if bus is None or self.failure or self.direct:
            return 0  # a failed subscriber takes nothing more (its offers are ignored)
        return bus.count(self.member, self.cursor)

    def push_state(
        self, topic: Topic, chunk: bytes, now_ns: int, resnapshot: Resnapshot | None = None
    ) -> None:
        """Queue a new subscription's initial state, whatever the capacity."""
        self.settle()
        conflate = self.policies[topic[0]] is Policy.CONFLATE or resnapshot is not None
        self._append(topic, chunk, now_ns, conflate, resnapshot)

    def push_control(self, frame: bytes, now_ns: int) -> None:
        """Queue a non-event frame behind the events queued so far."""
        self.settle()
        self._control(frame, now_ns)

    def settle(self) -> None:
        """Move the unread log entries of this subscriber's topics to its
        private queue, the policies applied to them in bulk."""
        bus = self.bus
        if bus is None or self.direct or self.cursor == bus.head:
            return
        batch = bus.batch(self.member, self.cursor) if not self.failure else None
        self.cursor = bus.head
        if batch is not None:
            absorb(self, bus.topic_of, batch)

    def unsettled(self) -> bool:
        bus = self.bus
        return bus is not None and not self.direct and self.cursor != bus.head

    def deadline(self, size: int) -> int:
        """The log position whose publish could overflow the private queue:
        the bus settles this subscriber there (or, its queue full, a slack
        later: a bulk pass per `slack` entries, not work on every publish)."""
        if self.direct:
            return _NEVER
        slack = max(1, min(self.capacity, size // 2) * self.spread // _SPREAD)
        return self.cursor + min(max(self.capacity - self.held, 0) + slack, size - 1)

    # --- consumer side (the stream's sender) --------------------------------

    def drain(self, limit: int, now_ns: int) -> tuple[bytes | None, list[bytes]]:
        """The next control frame, or up to `limit` event chunks, oldest first."""
        out: list[bytes] = []
        bus = None if self.direct else self.bus  # a direct subscriber has only its queue
        if bus is not None and self.failure:
            self.cursor = bus.head  # failed: what was published since is not for it
        if bus is not None and self.cursor == bus.head and not self.queue:
            self._go_idle(bus)  # the common "nothing more" call, kept short
            return None, out
        first_ns = 0
        if self.queue:
            control, first_ns = self.take(limit, out)
            if not out and control is None and self.queue:
                # Stopped at a due book snapshot: settle, so that it absorbs its
                # view's unread deltas and is made as of after them.
                self.settle()
                control, first_ns = self.take(limit, out)
            if control is not None:
                return control, out
        if bus is not None and not self.queue:
            if len(out) < limit and self.cursor != bus.head:
                first_ns = self._read(bus, limit, out) or first_ns
            if self.cursor == bus.head:
                self._go_idle(bus)
        elif bus is None and not self.queue:
            self.wakeup.clear()
        if out:
            self.counters.sent += len(out)
            if first_ns and self.latency is not None:
                self.latency.observe_ns(now_ns - first_ns)
        return None, out

    def _go_idle(self, bus: Bus) -> None:
        self.wakeup.clear()
        if not self.idle:
            self.idle = True
            bus.idle.append(self)

    def _read(self, bus: Bus, limit: int, out: list[bytes]) -> int:
        """Append the log's entries for this subscriber to `out`, up to `limit`
        in all; returns the publish time of the first one (or 0)."""
        member = self.member.__getitem__
        routes, chunks, times, mask, size = bus.routes, bus.chunks, bus.times, bus.mask, bus.size
        cursor, head = self.cursor, bus.head
        start = len(out)
        first_ns = 0
        while cursor < head and len(out) < limit:
            i = cursor & mask
            n = min(head - cursor, limit - len(out), size - i)
            flags = list(map(member, routes[i : i + n]))
            before = len(out)
            out.extend(compress(chunks[i : i + n], flags))
            if not first_ns and len(out) > before:
                first_ns = times[i + flags.index(1)]
            cursor += n
        self.cursor = cursor
        self.counters.queued += len(out) - start
        return first_ns


class Bus:
    """Topic routing and the shared log (see the module doc)."""

    def __init__(self, log_size: int = LOG_SIZE, direct_topics: int = DIRECT_TOPICS) -> None:
        self.direct_topics = direct_topics
        self.size = 1 << max(4, (log_size - 1).bit_length())
        self.mask = self.size - 1
        self.routes = [0] * self.size  # topic id per entry
        self.chunks = [b""] * self.size
        self.times = [0] * self.size  # publish time per entry
        self.extras: list[Extra] = [False] * self.size
        self.head = 0  # position of the next entry (monotonic; index = position & mask)
        self.topic_of: list[Topic] = []  # by topic id
        self._active: dict[Topic, _Route] = {}  # topics with subscribers
        self._free: list[int] = []  # ids of topics nobody subscribes to now, for reuse
        self._width = 64  # length of every attached subscriber's membership bytearray
        self._subs: dict[Topic, list[Subscriber]] = {}
        self._attached: set[Subscriber] = set()
        self.idle: list[Subscriber] = []  # woken by the next publish of one of their topics
        self._heap: list[tuple[int, int, Subscriber]] = []  # (deadline, serial, subscriber)
        self._serials = itertools.count(1)
        # Slacks of half to all of the largest, in turn: laggards that fell behind
        # together are settled at different publishes, not all in one (a stall).
        self._spreads = itertools.cycle(range(_SPREAD // 2, _SPREAD))
        self._check_at = _NEVER  # the earliest deadline in the heap
        self.published = 0  # events published (whether or not anyone subscribed)
        self.published_by_kind = [0] * (max(Kind) + 1)  # indexed by Kind

    # --- routing ---------------------------------------------------------------

    def subscribe(self, sub: Subscriber, topic: Topic) -> bool:
        """Route `topic` to `sub` from now on; False when it already was."""
        if topic in sub.topics:
            return False
        self._attach(sub)
        sub.settle()
        route = self._active.get(topic)
        if route is None:
            route = self._active[topic] = _Route(self._new_id(topic))
        sub.topics.add(topic)
        self._subs.setdefault(topic, []).append(sub)
        self._route(sub, route, True)
        self.remode(sub)
        return True

    def unsubscribe(self, sub: Subscriber, topic: Topic) -> bool:
        """Stop routing `topic` to `sub` (what was published before still goes)."""
        if topic not in sub.topics:
            return False
        sub.settle()
        sub.topics.discard(topic)
        route = self._active[topic]
        self._route(sub, route, False)
        subs = self._subs[topic]
        subs.remove(sub)
        if not subs:
            # Safe to reuse: whoever subscribes to the id's next topic settles
            # first, so its cursor is past every entry of this one.
            del self._subs[topic], self._active[topic]
            self._free.append(route.tid)
        self.remode(sub)
        return True

    def _route(self, sub: Subscriber, route: _Route, on: bool) -> None:
        """Add `sub` to `route` (or take it off), the way its mode reads."""
        if sub.direct:
            if on:
                route.direct.append(sub)
            else:
                route.direct.remove(sub)
        else:
            sub.member[route.tid] = on
            route.logged += 1 if on else -1

    def remode(self, sub: Subscriber) -> None:
        """Switch `sub` between direct and log reading when its topic count
        crosses `direct_topics` (it is settled: nothing unread in the log)."""
        direct = len(sub.topics) <= self.direct_topics
        if direct == sub.direct:
            return
        routes = [self._active[topic] for topic in sub.topics]
        for route in routes:
            self._route(sub, route, False)
        sub.direct = direct
        for route in routes:
            self._route(sub, route, True)
        sub.cursor = self.head  # what came before is in its queue
        if direct and sub.idle:
            sub.idle = False
            self.idle.remove(sub)
        elif not direct and not sub.idle:
            # Its sender may be waiting: the next publish of its topics must wake it
            # (a spurious wake only finds nothing to send).
            sub.idle = True
            self.idle.append(sub)
        self._schedule(sub)

    def remove(self, sub: Subscriber) -> None:
        """Unsubscribe `sub` from everything and let go of it (what it was
        routed stays queued in it, for a final drain)."""
        for topic in list(sub.topics):
            self.unsubscribe(sub, topic)
        if sub.bus is self:
            sub.settle()
            sub.bus = None
            sub.serial = 0
            self._attached.discard(sub)
            if sub.idle:
                sub.idle = False
                self.idle.remove(sub)

    def has_subscribers(self, topic: Topic) -> bool:
        return topic in self._active

    def subscribers(self, topic: Topic) -> tuple[Subscriber, ...]:
        """Who gets `topic` now (tracing follows a sampled event to its senders)."""
        return tuple(self._subs.get(topic, ()))

    @property
    def subscriber_count(self) -> int:
        return len({id(s) for subs in self._subs.values() for s in subs})

    def _attach(self, sub: Subscriber) -> None:
        if sub.bus is self:
            return
        if sub.bus is not None:
            raise ValueError(f"subscriber {sub.name!r} is on another bus")
        sub.bus = self
        sub.cursor = self.head
        sub.member = bytearray(self._width)
        sub.spread = next(self._spreads)
        self._attached.add(sub)
        self._schedule(sub)

    def _new_id(self, topic: Topic) -> int:
        if self._free:
            tid = self._free.pop()
            self.topic_of[tid] = topic
            return tid
        tid = len(self.topic_of)
        self.topic_of.append(topic)
        if tid >= self._width:
            grown = self._width * 2
            for sub in self._attached:
                sub.member.extend(bytes(grown - len(sub.member)))
            self._width = grown
        return tid

    # --- the log -----------------------------------------------------------------

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
        route = self._active.get(topic)
        if route is None:
            return
        # Direct ones first: `_check` may make a log reader direct, having
        # settled it with this very entry.
        for sub in route.direct:
            sub.offer(topic, chunk, now_ns, keep, resnapshot)
        if route.logged:
            tid = route.tid
            pos = self.head
            i = pos & self.mask
            self.routes[i] = tid
            self.chunks[i] = chunk
            self.times[i] = now_ns
            self.extras[i] = keep if keep or resnapshot is None else resnapshot
            self.head = pos + 1
            if pos >= self._check_at:
                self._check(pos)
            if self.idle:
                self._wake(tid)

    def _check(self, pos: int) -> None:
        """Settle the subscribers whose deadline the entry at `pos` reached."""
        heap = self._heap
        while heap and heap[0][0] <= pos:
            _, serial, sub = heapq.heappop(heap)
            if sub.serial != serial:
                continue  # superseded, or the subscriber left
            if sub.deadline(self.size) <= pos:
                sub.settle()
            self._schedule(sub)
        self._check_at = heap[0][0] if heap else _NEVER

    def _schedule(self, sub: Subscriber) -> None:
        sub.serial = next(self._serials)
        due = sub.deadline(self.size)
        heapq.heappush(self._heap, (due, sub.serial, sub))
        if due < self._check_at:
            self._check_at = due

    def _wake(self, tid: int) -> None:
        waiting = []
        for sub in self.idle:
            if sub.member[tid]:
                sub.idle = False
                sub.wakeup.set()
            else:
                waiting.append(sub)
        self.idle = waiting

    def count(self, member: bytearray, start: int) -> int:
        """Entries from position `start` to the head whose topic is in `member`."""
        total = 0
        get = member.__getitem__
        head, mask, size = self.head, self.mask, self.size
        while start < head:
            i = start & mask
            n = min(head - start, size - i)
            total += sum(map(get, self.routes[i : i + n]))
            start += n
        return total

    def batch(self, member: bytearray, start: int) -> Batch:
        """The entries from position `start` to the head whose topic is in
        `member`, as parallel lists (topic ids, chunks, times, extras)."""
        tids: list[int] = []
        chunks: list[bytes] = []
        times: list[int] = []
        extras: list[Extra] = []
        get = member.__getitem__
        head, mask, size = self.head, self.mask, self.size
        while start < head:
            i = start & mask
            n = min(head - start, size - i)
            routes = self.routes[i : i + n]
            flags = bytes(map(get, routes))
            if flags.count(0):
                tids += compress(routes, flags)
                chunks += compress(self.chunks[i : i + n], flags)
                times += compress(self.times[i : i + n], flags)
                extras += compress(self.extras[i : i + n], flags)
            else:  # every entry its own (a stream subscribed to everything): plain slices
                tids += routes
                chunks += self.chunks[i : i + n]
                times += self.times[i : i + n]
                extras += self.extras[i : i + n]
            start += n
        return tids, chunks, times, extras
