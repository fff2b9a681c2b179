"""Rebuild an order book from a stored snapshot and the deltas after it. No I/O.

The base is the newest full book at or before the time asked for: a
BookSnapshot the feed produced (after a (re)sync) or a periodic
BookCheckpoint of the live book. Deltas are then applied in storage order:

- a delta whose `update_id` the book already has is skipped (the exchange's
  first deltas after a REST snapshot overlap it);
- a delta whose `prev_update_id` is *newer* than the book means updates are
  missing from the store: `BookGapError`, rather than a silently wrong book.
"""

from __future__ import annotations

from raven.core.book import OrderBook
from raven.model import BookDelta, BookSnapshot
from raven.storage.base import BookCheckpoint


class BookGapError(Exception):
    """The stored deltas skip update ids; the book can't be rebuilt exactly."""


class BookReplayer:
    def __init__(self, exchange: str, symbol: str) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.book = OrderBook(symbol)
        self.loaded = False
        self.exchange_time = 0
        self.receive_time = 0
        self.applied = 0

    def load(self, base: BookSnapshot | BookCheckpoint) -> None:
        self.book.load(base.bids, base.asks, base.update_id)
        self.exchange_time, self.receive_time = base.exchange_time, base.receive_time
        self.loaded = True

    def apply(self, delta: BookDelta) -> None:
        book = self.book
        if delta.update_id <= book.update_id:
            return
        if delta.prev_update_id > book.update_id:
            raise BookGapError(
                f"{self.exchange} {self.symbol}: stored book updates are missing between "
                f"update ids {book.update_id} and {delta.prev_update_id}"
            )
        book.apply(delta.bids, delta.asks, delta.update_id)
        self.exchange_time, self.receive_time = delta.exchange_time, delta.receive_time
        self.applied += 1

    def snapshot(self, depth: int = 0) -> BookSnapshot:
        """The rebuilt book's top `depth` levels per side (0: all)."""
        bids, asks = self.book.top(depth)
        return BookSnapshot(
            self.exchange, self.symbol, bids, asks, self.book.update_id,
            self.exchange_time, self.receive_time, depth,
        )  # fmt: skip
