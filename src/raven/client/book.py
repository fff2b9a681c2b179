"""A local order book rebuilt from the server's snapshot + deltas.

`LocalBook` is pure (no I/O): feed it the stream's items and it keeps an
`OrderBook` for one symbol. A `BookSnapshot` replaces the book; a
`BookDelta` applies only when its `prev_update_id` is the book's
`update_id` (the server's contract), otherwise the book is out of sync and
waits for the next snapshot. A `Gap` or a BOOK_STALE status also takes it
out of sync: deltas may have been lost, or the server's own book is being
rebuilt (a fresh snapshot comes just before BOOK_LIVE).

`LiveBook` keeps a `LocalBook` current from its own stream and asks the
server for a fresh snapshot (unsubscribe + subscribe) whenever the book
falls out of sync, except after a reconnect, where the resubscription
already brings one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from raven.client.stream import Gap, MarketStream
from raven.core.book import OrderBook
from raven.model import BookDelta, BookSnapshot, Event, Level, Status
from raven.types import StatusKind
from raven.v1 import market_data_pb2 as pb


class LocalBook:
    """One symbol's L2 book from BookSnapshot / BookDelta events."""

    def __init__(self, symbol: str, exchange: str = "") -> None:
        self.symbol = symbol
        self.exchange = exchange  # "" matches any exchange
        self.book = OrderBook(symbol)
        self.synced = False
        self.snapshots = 0
        self.deltas = 0
        self.out_of_sync = 0  # times the book lost sync (bad delta chain, gap, stale)

    def _mine(self, event: Event) -> bool:
        return event.symbol == self.symbol and (
            not self.exchange or event.exchange == self.exchange
        )

    def apply(self, item: Event | Gap) -> bool:
        """Apply one stream item (others' events are ignored); returns `synced`."""
        if isinstance(item, Gap):
            self._lose()
        elif not self._mine(item):
            pass
        elif isinstance(item, BookSnapshot):
            self.book.load(item.bids, item.asks, item.update_id)
            self.book.exchange_time = item.exchange_time
            self.synced = True
            self.snapshots += 1
        elif isinstance(item, BookDelta):
            if self.synced and item.prev_update_id == self.book.update_id:
                self.book.apply(item.bids, item.asks, item.update_id)
                self.book.exchange_time = item.exchange_time
                self.deltas += 1
            else:
                self._lose()
        elif isinstance(item, Status) and item.status is StatusKind.BOOK_STALE:
            self._lose()
        return self.synced

    def _lose(self) -> None:
        if self.synced:
            self.out_of_sync += 1
        self.synced = False

    @property
    def update_id(self) -> int:
        return self.book.update_id

    def best_bid(self) -> Level | None:
        return self.book.best_bid()

    def best_ask(self) -> Level | None:
        return self.book.best_ask()

    def top(self, n: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """(bids, asks), best first."""
        return self.book.top(n)


class LiveBook:
    """A `LocalBook` kept current by a task that reads its own stream."""

    def __init__(self, stream: MarketStream, sub: pb.Subscription, local: LocalBook) -> None:
        self.stream = stream
        self.sub = sub
        self.local = local
        self.synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.stream.subscribe(self.sub)
        self._task = asyncio.create_task(self._run(), name=f"raven-book-{self.local.symbol}")

    async def _run(self) -> None:
        async for item in self.stream.items():
            was = self.local.synced
            if self.local.apply(item):
                self.synced.set()
                continue
            self.synced.clear()
            reconnected = isinstance(item, Gap) and item.reconnect
            if was and not reconnected:
                await self.stream.unsubscribe(self.sub)
                await self.stream.subscribe(self.sub)  # the server sends a fresh snapshot

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self.synced.wait(), timeout)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.stream.close()


@contextlib.asynccontextmanager
async def live_book(
    stream: MarketStream, sub: pb.Subscription, symbol: str
) -> AsyncIterator[LiveBook]:
    book = LiveBook(stream, sub, LocalBook(symbol, sub.exchange))
    await book.start()
    try:
        yield book
    finally:
        await book.close()
