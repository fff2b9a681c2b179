"""A seeded random-walk order book feed: a snapshot, then chained deltas."""

from __future__ import annotations

import random

from raven.model import BookDelta, BookSnapshot, Level


def random_book_events(
    seed: int, count: int, exchange: str = "x", symbol: str = "BTC", now: int = 1
) -> list[BookSnapshot | BookDelta]:
    """A full snapshot then `count` deltas of a random-walk book on a 0.1 tick."""
    rng = random.Random(seed)
    mid = 1000
    bids = {mid - i: rng.randint(1, 9) for i in range(1, 40)}
    asks = {mid + i: rng.randint(1, 9) for i in range(1, 40)}

    def text(ticks: int) -> str:
        return f"{ticks / 10:.1f}"

    snapshot_bids = tuple((text(p), str(q)) for p, q in sorted(bids.items(), reverse=True))
    snapshot_asks = tuple((text(p), str(q)) for p, q in sorted(asks.items()))
    events: list[BookSnapshot | BookDelta] = [
        BookSnapshot(exchange, symbol, snapshot_bids, snapshot_asks, 1, now, now)
    ]
    for n in range(2, count + 2):
        changes: tuple[list[Level], list[Level]] = ([], [])
        for _ in range(rng.randint(1, 4)):
            side = rng.randrange(2)
            book = bids if side == 0 else asks
            best = max(bids) if side == 0 else min(asks)
            price = best - rng.randint(-1, 30) if side == 0 else best + rng.randint(-1, 30)
            if side == 0 and asks and price >= min(asks):
                price = min(asks) - 1
            if side == 1 and bids and price <= max(bids):
                price = max(bids) + 1
            qty = 0 if (price in book and rng.random() < 0.4) else rng.randint(1, 9)
            if qty:
                book[price] = qty
            else:
                book.pop(price, None)
            changes[side].append((text(price), str(qty)))
        events.append(BookDelta(exchange, symbol, tuple(changes[0]), tuple(changes[1]), n, n,
                                n - 1, now + n, now + n))  # fmt: skip
    return events
