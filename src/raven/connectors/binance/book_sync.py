"""Binance USD-M order books kept in sequence: pure, no I/O, no second book.

Per symbol, by the venue's procedure (binance-usdm-futures.md, "A correct
local order book"):

1. buffer the diff depth events and ask for a REST snapshot (`want_snapshot`);
2. when it comes (`on_snapshot`), drop buffered events with u < lastUpdateId;
3. the first event applied must bridge the snapshot: U <= lastUpdateId <= u
   (both edges happen on the real venue). Raven also accepts
   pu <= lastUpdateId < U: ids are shared by all symbols, so the snapshot can
   fall between two events of the stream, where the book did not change;
4. then every event needs pu == the previous event's u. Otherwise the book is
   stale: that symbol alone goes back to step 1.

What goes out (`emit`), per symbol, is what the state layer applies to its
canonical book: a `BookSnapshot` (depth 0: the whole book, update_id =
lastUpdateId) when the book becomes live, then each `BookDelta` in order
(the bridge event whole), `Status(BOOK_LIVE)` once live, and
`Status(BOOK_STALE)` when a gap or a request breaks it. The deltas are the
decoded events themselves; no book is kept here on the hot path.

A periodic refresh (`refresh`) fetches a snapshot while the book stays live
and deltas keep flowing, lines the snapshot up with the deltas around it in
a throwaway `OrderBook`, and emits it as a `BookSnapshot` at the latest
update id: levels beyond the snapshot depth that drifted stale disappear.

With tracing on, each sync (`book.sync`) and each resync (`book.resync`,
from stale to live again) is one span; `stats[symbol].since_ns` says since
when a book is in its state (for /health).

States, per symbol:

    SYNCING --(snapshot bridged)--> LIVE --(gap, request, lost connection)--> STALE
    STALE --(snapshot bridged)--> LIVE
"""

from __future__ import annotations

import collections
import enum
import time
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from raven.connectors.base import EventSink
from raven.core.book import OrderBook
from raven.model import BookDelta, BookSnapshot, Status
from raven.ops import tracing
from raven.types import Nanos, StatusKind


class BookState(enum.IntEnum):
    SYNCING = 0  # never live yet: buffering, waiting for a snapshot
    LIVE = 1
    STALE = 2  # was live; resyncing after a gap, a request or a lost connection


class BookStats(msgspec.Struct):
    """Per-symbol sync state and counters, read by metrics and /health."""

    state: BookState = BookState.SYNCING
    last_update_id: int = 0  # u of the last delta emitted (or the snapshot's id)
    resyncs: int = 0  # times the book went from live to stale
    gaps: int = 0  # pu breaks found (live, or inside the buffer)
    snapshots: int = 0  # snapshots that made the book live
    refreshes: int = 0  # periodic refresh snapshots emitted
    refresh_failures: int = 0  # refresh snapshots that could not be lined up
    stale_snapshots: int = 0  # snapshots older than the buffered events: asked again
    dropped: int = 0  # deltas dropped: behind the book, or buffer overflow
    buffered: int = 0  # deltas waiting for a snapshot now
    bridge: tuple[int, int, int] = (0, 0, 0)  # (U, lastUpdateId, u) of the latest bridge
    # Since when (wall clock ns) the book is in its state; while syncing the first
    # time, since its first snapshot request (0: no diff depth event yet).
    since_ns: int = 0


def bridges(delta: BookDelta, update_id: int) -> bool:
    """May `delta` be applied to a book as of `update_id`? (steps 3 and 4 above)"""
    if update_id > delta.update_id:
        return False
    return delta.first_update_id <= update_id or 0 < delta.prev_update_id <= update_id


class _Book:
    __slots__ = ("asked", "buffer", "pending", "recent", "refreshing", "span", "stats", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.stats = BookStats()
        self.buffer: collections.deque[BookDelta] = collections.deque()
        self.asked = False  # a snapshot request is out
        self.pending: BookSnapshot | None = None  # a snapshot waiting for its bridge event
        self.refreshing = False
        self.recent: collections.deque[BookDelta] = collections.deque()  # deltas during a refresh
        self.span: Any = None  # the open "book.sync" / "book.resync" span (tracing on)


class BookSync:
    """Sequencing of every synced symbol's book; see the module docstring."""

    def __init__(
        self,
        exchange: str,
        symbols: Iterable[str],
        emit: EventSink,
        want_snapshot: Callable[[str], None],
        buffer_limit: int = 10_000,
        clock: Callable[[], Nanos] = time.time_ns,
    ) -> None:
        self.exchange = exchange
        self.emit = emit
        self.want_snapshot = want_snapshot  # must lead to on_snapshot() later
        self.buffer_limit = buffer_limit  # per symbol; the oldest are dropped past it
        self.clock = clock
        self._books = {symbol: _Book(symbol) for symbol in symbols}
        self.stats: dict[str, BookStats] = {s: b.stats for s, b in self._books.items()}

    # --- inputs ------------------------------------------------------------

    def on_delta(self, delta: BookDelta) -> None:
        """A diff depth event, in the order the stream delivered it."""
        book = self._books.get(delta.symbol)
        if book is None:
            return
        stats = book.stats
        if stats.state is BookState.LIVE:
            last = stats.last_update_id
            if delta.prev_update_id == last:
                stats.last_update_id = delta.update_id
                self.emit(delta)
                if book.refreshing:
                    self._refresh_step(book, delta)
            elif delta.update_id <= last:
                stats.dropped += 1  # already in the book
            else:
                stats.gaps += 1
                self._go_stale(book, f"gap: pu {delta.prev_update_id} != u {last}")
                self._buffer(book, delta)
            return
        self._buffer(book, delta)

    def on_snapshot(self, snapshot: BookSnapshot) -> None:
        """The REST snapshot asked for by `want_snapshot` (depth 0, update_id = lastUpdateId)."""
        book = self._books.get(snapshot.symbol)
        if book is None:
            return
        book.asked = False
        if book.stats.state is BookState.LIVE:
            self._refresh_with(book, snapshot)
            return
        book.pending = snapshot
        self._try_bridge(book)

    def mark_stale(self, symbol: str, reason: str) -> None:
        """Rebuild `symbol`'s book from a new snapshot (a later layer asked, or its
        connection was lost): stale now, live again after the next bridge."""
        book = self._books.get(symbol)
        if book is not None:
            self._go_stale(book, reason)

    def refresh(self, symbol: str) -> bool:
        """Start a periodic refresh of a live book; False when it isn't the time."""
        book = self._books.get(symbol)
        if book is None or book.stats.state is not BookState.LIVE:
            return False
        if book.asked or book.refreshing:
            return False
        book.refreshing = True
        book.recent.clear()
        book.pending = None
        self._ask(book)
        return True

    # --- syncing -----------------------------------------------------------

    def _buffer(self, book: _Book, delta: BookDelta) -> None:
        buffer = book.buffer
        if len(buffer) >= self.buffer_limit:
            buffer.popleft()
            book.stats.dropped += 1
        buffer.append(delta)
        if book.pending is not None:
            self._try_bridge(book)
        elif not book.asked:
            self._ask(book)
        book.stats.buffered = len(buffer)

    def _ask(self, book: _Book) -> None:
        book.asked = True
        stats = book.stats
        if stats.state is BookState.SYNCING and not stats.since_ns:
            stats.since_ns = self.clock()
            book.span = tracing.start_span("book.sync", exchange=self.exchange, symbol=book.symbol)
        self.want_snapshot(book.symbol)

    def _try_bridge(self, book: _Book) -> None:
        snapshot = book.pending
        assert snapshot is not None
        stats = book.stats
        snap_id = snapshot.update_id
        buffer = book.buffer
        while buffer and buffer[0].update_id < snap_id:
            buffer.popleft()
            stats.dropped += 1
        stats.buffered = len(buffer)
        if not buffer:
            return  # the bridge event is still to come
        first = buffer[0]
        if not bridges(first, snap_id):
            book.pending = None  # older than the buffered events: those between are lost
            stats.stale_snapshots += 1
            self._ask(book)
            return
        chain = self._chain(book, first)
        if chain is None:
            return
        buffer.clear()
        stats.buffered = 0
        book.pending = None
        self.emit(snapshot)
        for delta in chain:
            self.emit(delta)
        stats.state = BookState.LIVE
        stats.since_ns = self.clock()
        stats.last_update_id = chain[-1].update_id
        stats.snapshots += 1
        stats.bridge = (first.first_update_id, snap_id, first.update_id)
        if book.span is not None:
            tracing.end_span(book.span, update_id=snap_id, deltas=len(chain))
            book.span = None
        self._status(book, StatusKind.BOOK_LIVE, f"live at update id {snap_id}")

    def _chain(self, book: _Book, first: BookDelta) -> list[BookDelta] | None:
        """The buffered events from `first` on, if each links to the one before;
        else keep only those from the break on, ask again and return None."""
        buffer = book.buffer
        chain = [first]
        last = first.update_id
        for index in range(1, len(buffer)):
            delta = buffer[index]
            if delta.update_id <= last:
                book.stats.dropped += 1  # a repeat
            elif delta.prev_update_id == last:
                chain.append(delta)
                last = delta.update_id
            else:
                book.stats.gaps += 1
                for _ in range(index):
                    buffer.popleft()
                book.stats.buffered = len(buffer)
                book.pending = None
                self._ask(book)
                return None
        return chain

    def _go_stale(self, book: _Book, reason: str) -> None:
        stats = book.stats
        if stats.state is BookState.LIVE:
            stats.state = BookState.STALE
            stats.since_ns = self.clock()
            stats.resyncs += 1
            # A span from stale to live again (no-op unless tracing is on).
            book.span = tracing.start_span(
                "book.resync", exchange=self.exchange, symbol=book.symbol, reason=reason
            )
            self._status(book, StatusKind.BOOK_STALE, reason)
        book.buffer.clear()
        stats.buffered = 0
        book.pending = None
        book.refreshing = False
        book.recent.clear()

    # --- periodic refresh --------------------------------------------------

    def _refresh_with(self, book: _Book, snapshot: BookSnapshot) -> None:
        last = book.stats.last_update_id
        snap_id = snapshot.update_id
        if snap_id > last:
            book.pending = snapshot  # newer than the book: wait for its bridge event
            book.refreshing = True
            return
        recent = book.recent
        if snap_id == last:
            self._replace(book, snapshot, ())
            return
        while recent and recent[0].update_id < snap_id:
            recent.popleft()
        if recent and bridges(recent[0], snap_id):
            self._replace(book, snapshot, recent)
        else:
            book.stats.refresh_failures += 1  # older than what was kept: try next time
            self._end_refresh(book)

    def _refresh_step(self, book: _Book, delta: BookDelta) -> None:
        pending = book.pending
        if pending is not None:
            if delta.update_id >= pending.update_id:
                # delta.pu is the book's previous u, below the snapshot's id: it bridges
                self._replace(book, pending, (delta,))
            return
        recent = book.recent
        recent.append(delta)
        if len(recent) > self.buffer_limit:
            book.stats.refresh_failures += 1
            self._end_refresh(book)

    def _replace(self, book: _Book, snapshot: BookSnapshot, deltas: Iterable[BookDelta]) -> None:
        """Emit `snapshot` moved forward by `deltas` to the book's current update id."""
        stats = book.stats
        out = snapshot
        scratch: OrderBook | None = None
        last: BookDelta | None = None
        for delta in deltas:
            if scratch is None:
                scratch = OrderBook(book.symbol)
                scratch.load(snapshot.bids, snapshot.asks, snapshot.update_id)
            scratch.apply(delta.bids, delta.asks, delta.update_id)
            last = delta
        if scratch is not None and last is not None:
            bids, asks = scratch.top(0)
            out = BookSnapshot(
                self.exchange, book.symbol, bids, asks, stats.last_update_id,
                last.exchange_time, last.receive_time, 0,
            )  # fmt: skip
        self.emit(out)
        stats.refreshes += 1
        self._end_refresh(book)

    def _end_refresh(self, book: _Book) -> None:
        book.refreshing = False
        book.pending = None
        book.recent.clear()

    def _status(self, book: _Book, kind: StatusKind, detail: str) -> None:
        now = self.clock()
        self.emit(Status(self.exchange, book.symbol, kind, detail, now, now))
