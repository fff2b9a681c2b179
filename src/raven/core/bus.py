"""Fan-out: each encoded event goes to every subscriber that asked for it.

The bus never blocks and never waits for a client. Each subscriber owns a
bounded queue and a per-kind overflow policy:

- ``conflate``: a queued, unsent event of the same (kind, symbol) is
  replaced in place by the newer one once the queue is full; the queue
  then holds at most one such event per key, so it stays bounded.
- ``drop_oldest``: the oldest queued event is dropped; the subscriber's
  next frame starts with a Gap marker that says how many were dropped.
- ``disconnect``: the subscriber is failed with a reason; its sender closes
  the stream with RESOURCE_EXHAUSTED.

Chunks are the shared, already-encoded bytes of each event (see
`raven.codec`); a subscriber only stores references to them.
"""

from __future__ import annotations

import asyncio
import collections
import enum
from collections.abc import Iterable
from typing import TypeVar

import msgspec

from raven.types import Kind

Topic = tuple[Kind, str, str]  # (kind, exchange, symbol)
K = TypeVar("K")


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
    """A queued conflatable event; the bus overwrites `chunk` while it waits."""

    __slots__ = ("chunk", "topic")

    def __init__(self, topic: Topic, chunk: bytes) -> None:
        self.topic = topic
        self.chunk = chunk


class SubscriberStats(msgspec.Struct):
    queued: int = 0
    sent: int = 0
    conflated: int = 0
    dropped: int = 0


class Subscriber:
    """One client stream's queue. The bus offers; the stream's sender drains."""

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.capacity = capacity
        self.policies: dict[Kind, Policy] = dict(DEFAULT_POLICY)
        self.queue: collections.deque[bytes | _Slot] = collections.deque()
        self.slots: dict[Topic, _Slot] = {}  # newest queued slot per conflated topic
        self.wakeup = asyncio.Event()
        self.next_sequence = 1
        self.pending_gap = 0  # dropped since the last frame
        self.failure = ""  # set when a DISCONNECT policy fired
        self.stats = SubscriberStats()

    def offer(self, topic: Topic, chunk: bytes) -> None:
        queue = self.queue
        if len(queue) < self.capacity:
            if self.policies[topic[0]] is Policy.CONFLATE:
                slot = _Slot(topic, chunk)
                self.slots[topic] = slot
                queue.append(slot)
            else:
                queue.append(chunk)
            self.stats.queued += 1
            self.wakeup.set()
            return
        self._overflow(topic, chunk)

    def push_now(self, chunks: Iterable[bytes]) -> None:
        """Queue chunks regardless of capacity (a new subscription's initial state)."""
        for c in chunks:
            self.queue.append(c)
            self.stats.queued += 1
        self.wakeup.set()

    def _overflow(self, topic: Topic, chunk: bytes) -> None:
        policy = self.policies[topic[0]]
        if policy is Policy.CONFLATE:
            slot = self.slots.get(topic)
            if slot is not None:
                slot.chunk = chunk
                self.stats.conflated += 1
                return
            # No older event of this topic queued: one slot per topic keeps the bound.
            slot = _Slot(topic, chunk)
            self.slots[topic] = slot
            self.queue.append(slot)
            self.stats.queued += 1
            return
        if policy is Policy.DISCONNECT:
            if not self.failure:
                self.failure = f"queue full ({self.capacity} events): client too slow"
            self.wakeup.set()
            return
        dropped = self.queue.popleft()
        if type(dropped) is _Slot and self.slots.get(dropped.topic) is dropped:
            del self.slots[dropped.topic]
        self.pending_gap += 1
        self.stats.dropped += 1
        self.queue.append(chunk)
        self.stats.queued += 1

    def drain(self, limit: int) -> list[bytes]:
        """Up to `limit` queued chunks, oldest first."""
        queue = self.queue
        slots = self.slots
        out: list[bytes] = []
        append = out.append
        while queue and len(out) < limit:
            item = queue.popleft()
            if type(item) is _Slot:
                if slots.get(item.topic) is item:
                    del slots[item.topic]
                append(item.chunk)
            else:
                append(item)  # type: ignore[arg-type]
        if not queue:
            self.wakeup.clear()
        self.stats.sent += len(out)
        return out


class Bus:
    """Topic index from (kind, exchange, symbol) and (kind, exchange, "*") to subscribers."""

    def __init__(self) -> None:
        self._exact: dict[Topic, list[Subscriber]] = {}
        self._wild: dict[tuple[Kind, str], list[Subscriber]] = {}
        self.published = 0

    def subscribe(self, sub: Subscriber, kind: Kind, exchange: str, symbol: str) -> bool:
        """Route (kind, exchange, symbol) to `sub`; symbol "*" means every symbol.
        False when it already was."""
        if symbol == "*":
            self._remove_exact(sub, kind, exchange)
            return _add(self._wild.setdefault((kind, exchange), []), sub)
        if sub in self._wild.get((kind, exchange), ()):
            return False
        return _add(self._exact.setdefault((kind, exchange, symbol), []), sub)

    def unsubscribe(self, sub: Subscriber, kind: Kind, exchange: str, symbol: str) -> bool:
        if symbol == "*":
            self._remove_exact(sub, kind, exchange)
            return _discard(self._wild, (kind, exchange), sub)
        return _discard(self._exact, (kind, exchange, symbol), sub)

    def remove(self, sub: Subscriber) -> None:
        for key in [k for k, subs in self._exact.items() if sub in subs]:
            _discard(self._exact, key, sub)
        for wkey in [k for k, subs in self._wild.items() if sub in subs]:
            _discard(self._wild, wkey, sub)

    def subscribed(self, sub: Subscriber, kind: Kind, exchange: str, symbol: str) -> bool:
        return sub in self._wild.get((kind, exchange), ()) or sub in self._exact.get(
            (kind, exchange, symbol), ()
        )

    def publish(self, topic: Topic, chunk: bytes) -> None:
        self.published += 1
        exact = self._exact.get(topic)
        if exact:
            for sub in exact:
                sub.offer(topic, chunk)
        wild = self._wild.get((topic[0], topic[1]))
        if wild:
            for sub in wild:
                sub.offer(topic, chunk)

    def _remove_exact(self, sub: Subscriber, kind: Kind, exchange: str) -> None:
        for key in [k for k in self._exact if k[0] == kind and k[1] == exchange]:
            _discard(self._exact, key, sub)

    @property
    def subscriber_count(self) -> int:
        subs: set[int] = set()
        for table in (self._exact, self._wild):
            for lst in table.values():
                subs.update(id(s) for s in lst)
        return len(subs)


def _add(lst: list[Subscriber], sub: Subscriber) -> bool:
    if sub in lst:
        return False
    lst.append(sub)
    return True


def _discard(table: dict[K, list[Subscriber]], key: K, sub: Subscriber) -> bool:
    lst = table.get(key)
    if not lst or sub not in lst:
        return False
    lst.remove(sub)
    if not lst:
        del table[key]
    return True
