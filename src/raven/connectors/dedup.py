"""Dropping events seen twice, and handing a feed over from one connection to another.

Both are pure: ids in, decisions out. Ids are per stream and only grow on
the venue (trade ids, update ids, event times), so "seen" is "not above the
last id delivered on this stream".

A connection is replaced before the venue's 24-hour close by opening the new
one first. While both are open, the new one's events are held back
(`Handover.hold`) and the old one keeps delivering. The switch is safe once
the old connection has delivered, on any one stream, an event the new one
also holds: the venue writes each socket in order, so by then the old one
has delivered everything sent before the new one subscribed, and the new
one holds everything after. The held events then go out through the
deduplicator, which drops the ones the old connection already delivered:

    old:  a1 a2 a3 a4 a5 | closed
    new:        a3 a4 a5 a6 a7 ...        (held until the old one delivers a3)
    out:  a1 a2 a3 a4 a5 a6 a7 ...
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

NEVER = -1  # below every venue id


class Cursor:
    """The last id delivered on one stream (held by the decoder's per-stream route)."""

    __slots__ = ("key", "last")

    def __init__(self, key: str) -> None:
        self.key = key
        self.last = NEVER


class Deduplicator:
    """The last id delivered per stream; drops anything not above it."""

    __slots__ = ("_cursors", "duplicates", "watch")

    def __init__(self) -> None:
        self._cursors: dict[str, Cursor] = {}
        self.duplicates = 0  # dropped, for metrics
        self.watch: Handover[Any] | None = None  # set during a handover

    def cursor(self, key: str) -> Cursor:
        """Stream `key`'s cursor, for callers that look it up once (the hot path)."""
        cursor = self._cursors.get(key)
        if cursor is None:
            cursor = self._cursors[key] = Cursor(key)
        return cursor

    def accept(self, key: str, ident: int) -> bool:
        """True (and remember `ident`) when `ident` is new on stream `key`."""
        return self.advance(self.cursor(key), ident)

    def advance(self, cursor: Cursor, ident: int) -> bool:
        """`accept` with the stream's cursor in hand."""
        if ident <= cursor.last:
            self.duplicates += 1
            return False
        cursor.last = ident
        watch = self.watch
        if watch is not None:
            watch.delivered(cursor.key, ident)
        return True

    def last(self, key: str) -> int:
        cursor = self._cursors.get(key)
        return NEVER if cursor is None else cursor.last

    def reset(self) -> None:
        """Forget every stream (after a plain reconnect nothing can repeat, and a
        venue restart may reuse ids)."""
        for cursor in self._cursors.values():
            cursor.last = NEVER


class Handover(Generic[T]):
    """The state of one connection replacing another; see the module docstring."""

    def __init__(self, dedup: Deduplicator, limit: int) -> None:
        self.dedup = dedup
        self.limit = limit  # held items before the switch is forced
        self.held: collections.deque[tuple[str, int, T]] = collections.deque()
        self.firsts: dict[str, int] = {}  # first id the new connection got, per stream
        self.caught_up = False  # the old connection delivered one of the held events
        self.overflowed = False

    @property
    def ready(self) -> bool:
        return self.caught_up or self.overflowed

    def hold(self, key: str, ident: int, item: T) -> None:
        """An event of the new connection, held until the switch."""
        self.held.append((key, ident, item))
        if key not in self.firsts:
            self.firsts[key] = ident
            if self.dedup.last(key) >= ident:
                self.caught_up = True
        if len(self.held) >= self.limit:
            self.overflowed = True

    def delivered(self, key: str, ident: int) -> None:
        """The old connection delivered `ident` on `key`."""
        first = self.firsts.get(key)
        if first is not None and ident >= first:
            self.caught_up = True

    def release(self) -> Iterator[T]:
        """The held items the old connection did not deliver, in order (ends the watch)."""
        if self.dedup.watch is self:
            self.dedup.watch = None
        accept = self.dedup.accept
        held = self.held
        while held:
            key, ident, item = held.popleft()
            if accept(key, ident):
                yield item
