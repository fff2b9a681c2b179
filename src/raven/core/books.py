"""The canonical L2 books: applying the connector's snapshots and deltas.

Per (exchange, symbol) the connector sends a full `BookSnapshot` when the
book becomes live (sync, resync, refresh), then `BookDelta`s in sequence,
and `Status` BOOK_STALE / BOOK_LIVE. `BookKeeper` applies them to the book in
`MarketRecord.book` and tells the views (`raven.core.views`) what changed.
A snapshot that makes a stale book live again reaches delta subscribers as a
fresh top-N snapshot (they dropped their book on BOOK_STALE); a refresh of a
live book as a delta.

When the citadel rejects a delta, applying the rest would leave the book
wrong, so the book goes stale instead: a Status BOOK_STALE is published and
the connector is asked to resync that symbol (`resync`). Deltas that arrive
while a book is stale are dropped (counted); the next snapshot makes it live.
A book that stays crossed or locked for `crossed_book_resync_after` updates
is resynced the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import msgspec

from raven import codec
from raven.core.bus import Bus
from raven.core.citadel import Citadel
from raven.core.state import MarketRecord
from raven.core.views import INF, BookViews
from raven.model import BookDelta, BookSnapshot, Level, Status
from raven.types import Kind, StatusKind

log = logging.getLogger("raven.core.books")

Resync = Callable[[str, str, str], None]  # (exchange, symbol, reason)


class BookStats(msgspec.Struct):
    """Counters the metrics layer reads."""

    snapshots: int = 0  # snapshots loaded into a book
    deltas: int = 0  # deltas applied
    stale_drops: int = 0  # deltas dropped because their book was stale
    resyncs_requested: int = 0  # resyncs asked of a connector (rejected delta, crossed book)
    partial_ignored: int = 0  # partial-depth snapshots not loaded over a full book


class BookKeeper:
    def __init__(self, bus: Bus, views: BookViews, citadel: Citadel | None) -> None:
        self.bus = bus
        self.views = views
        self.citadel = citadel  # only for flagging crossed books; the pipeline validates
        self.resync: Resync | None = None
        self.crossed_limit = citadel.config.crossed_book_resync_after if citadel else 0
        self.stats = BookStats()

    def snapshot(self, rec: MarketRecord, e: BookSnapshot, now_ns: int) -> bool:
        """Load a snapshot; False when it was not loaded (a partial over a full book)."""
        if e.depth and rec.book_full:
            # A partial-depth snapshot (top N from the exchange) would truncate a
            # full book kept by deltas: it is stored and served raw, not loaded.
            self.stats.partial_ignored += 1
            return False
        book = rec.book
        book.load(e.bids, e.asks, e.update_id)
        book.exchange_time = e.exchange_time
        was_live = rec.book_live
        rec.book_full = e.depth == 0
        rec.book_live = True
        rec.book_crossed = 0
        self.stats.snapshots += 1
        self._check_crossed(rec)
        if was_live:  # a refresh: its change goes out as a delta
            self.views.update(rec, INF, -INF, e.receive_time, now_ns)
        else:  # live again after BOOK_STALE (or for the first time): a fresh snapshot
            self.views.rebase(rec, now_ns)
        return True

    def delta(self, rec: MarketRecord, e: BookDelta, now_ns: int) -> None:
        """Apply a validated delta to a live book and update the views."""
        book = rec.book
        book.apply(e.bids, e.asks, e.update_id)
        book.exchange_time = e.exchange_time
        self.stats.deltas += 1
        limit = self.crossed_limit
        if self._check_crossed(rec) and limit and rec.book_crossed >= limit:
            self.go_stale(rec, f"book crossed for {rec.book_crossed} updates", now_ns)
            return
        if self.views.has_deltas(rec.exchange, rec.symbol):
            best_bid, best_ask = _best(e.bids, max, -INF), _best(e.asks, min, INF)
            self.views.update(rec, best_bid, best_ask, e.receive_time, now_ns)

    def status(self, rec: MarketRecord, e: Status) -> None:
        """A book status from the connector: a stale book takes no deltas."""
        if e.status is StatusKind.BOOK_STALE:
            rec.book_live = False
        self.publish_status(rec, e, time.time_ns())

    def go_stale(self, rec: MarketRecord, reason: str, now_ns: int) -> None:
        """Mark the book stale, tell its subscribers, ask the connector to resync."""
        rec.book_live = False
        rec.book_crossed = 0
        self.stats.resyncs_requested += 1
        log.warning("%s %s: book stale (%s); resync requested", rec.exchange, rec.symbol, reason)
        status = Status(rec.exchange, rec.symbol, StatusKind.BOOK_STALE, reason, now_ns, now_ns)
        self.publish_status(rec, status, now_ns)
        if self.resync is not None:
            self.resync(rec.exchange, rec.symbol, reason)

    def publish_status(self, rec: MarketRecord, e: Status, now_ns: int) -> None:
        """To the symbol's status subscribers and to every book view of it."""
        chunk = codec.encode(e)
        publish = self.bus.publish
        publish(rec.topics[Kind.STATUS], chunk, now_ns, True)
        for topic in self.views.topics_of(rec.exchange, rec.symbol):
            publish(topic, chunk, now_ns, True)

    def _check_crossed(self, rec: MarketRecord) -> bool:
        book = rec.book
        if not book.crossed():
            rec.book_crossed = 0
            return False
        rec.book_crossed += 1
        bid, ask = book.best_bid(), book.best_ask()
        if self.citadel is not None and bid is not None and ask is not None:
            self.citadel.flag_crossed(rec.exchange, rec.symbol, bid[0], ask[0])
        return True


def _best(levels: tuple[Level, ...], pick: Callable[[list[float]], float], none: float) -> float:
    return pick([float(p) for p, _ in levels]) if levels else none
