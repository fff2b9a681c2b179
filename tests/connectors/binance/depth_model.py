"""A tiny Binance-like depth market for tests: the true book at every update id.

Update ids come from one sequence shared by all symbols (and by symbols the
test does not follow, which leave holes), each diff event aggregates a few
updates of one symbol (U..u, pu = the symbol's previous u), and quantities
are absolute with "0" removing a level: as on Binance USD-M. `book_at`
replays the updates to give the truth as of any id, so a test can compare a
book built from snapshots and deltas with what it should be.
"""

from __future__ import annotations

import random

from raven.connectors.binance import parse, wire
from raven.model import BookDelta, BookSnapshot, Level

EX = "binance_futures"

Update = tuple[int, bool, str, str]  # (update id, is bid, price, quantity)


def _price(tick: int) -> str:
    return f"{tick // 10}.{tick % 10}"


class DepthModel:
    def __init__(self, symbols: tuple[str, ...], seed: int, levels: int = 30) -> None:
        self.rng = random.Random(seed)
        self.symbols = symbols
        self.levels = levels  # price ticks per side
        self.next_id = 600_859_598_000 + self.rng.randint(0, 1000)
        self.updates: dict[str, list[Update]] = {s: [] for s in symbols}
        self.last_u: dict[str, int] = {}
        self.events: list[wire.DepthUpdate] = []
        # symbol -> (id asked, next update index, bids, asks) of the last book_at
        self._cursors: dict[str, tuple[int, int, dict[str, str], dict[str, str]]] = {}
        for symbol in symbols:  # an initial book, then one event to start the pu chain
            for tick in range(levels):
                self._update(symbol, True, 10_000 - 1 - tick, str(self.rng.randint(1, 50)))
                self._update(symbol, False, 10_001 + tick, str(self.rng.randint(1, 50)))
            self.last_u[symbol] = self.next_id - 1

    def _update(self, symbol: str, bid: bool, tick: int, qty: str) -> int:
        uid = self.next_id
        self.next_id += 1
        self.updates[symbol].append((uid, bid, _price(tick), qty))
        return uid

    def step(self, symbol: str | None = None, updates: int = 0) -> wire.DepthUpdate:
        """One diff event of `symbol` (random if None) aggregating 1-4 updates."""
        rng = self.rng
        symbol = symbol or rng.choice(self.symbols)
        self.next_id += rng.randint(0, 5)  # other symbols' updates
        first = self.next_id
        final: dict[tuple[bool, str], str] = {}
        for _ in range(updates or rng.randint(1, 4)):
            bid = rng.random() < 0.5
            offset = rng.randrange(self.levels + 5)
            tick = 10_000 - 1 - offset if bid else 10_001 + offset
            qty = "0" if rng.random() < 0.3 else f"{rng.randint(1, 99)}.{rng.randint(0, 9)}"
            self._update(symbol, bid, tick, qty)
            final[(bid, _price(tick))] = qty
        last = self.next_id - 1
        event = wire.DepthUpdate(
            E=1_626_992_741_000 + len(self.events),
            T=1_626_992_741_000 + len(self.events),
            s=symbol,
            U=first,
            u=last,
            pu=self.last_u[symbol],
            b=[(p, q) for (bid, p), q in final.items() if bid],
            a=[(p, q) for (bid, p), q in final.items() if not bid],
        )
        self.last_u[symbol] = last
        self.events.append(event)
        return event

    def book_at(self, symbol: str, update_id: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """(bids, asks), best first, as of `update_id`: every update up to it applied.

        Replays from a per-symbol cursor, so questions in rising id order are cheap."""
        cursor = self._cursors.get(symbol)
        if cursor is None or cursor[0] > update_id:
            cursor = self._cursors[symbol] = (0, 0, {}, {})
        _, index, bids, asks = cursor
        updates = self.updates[symbol]
        while index < len(updates) and updates[index][0] <= update_id:
            _, bid, price, qty = updates[index]
            side = bids if bid else asks
            if qty == "0":
                side.pop(price, None)
            else:
                side[price] = qty
            index += 1
        self._cursors[symbol] = (update_id, index, bids, asks)
        return (
            tuple(sorted(bids.items(), key=lambda kv: -float(kv[0]))),
            tuple(sorted(asks.items(), key=lambda kv: float(kv[0]))),
        )

    def last_update_id(self, symbol: str) -> int:
        return self.updates[symbol][-1][0]

    def snapshot(
        self, symbol: str, update_id: int | None = None, limit: int = 0
    ) -> wire.DepthSnapshot:
        """`GET /fapi/v1/depth` as of `update_id` (default: now), `limit` levels a side (0: all)."""
        lid = self.last_update_id(symbol) if update_id is None else update_id
        bids, asks = self.book_at(symbol, lid)
        if limit:
            bids, asks = bids[:limit], asks[:limit]
        return wire.DepthSnapshot(lid, 1_626_992_741_000, 1_626_992_741_000, list(bids), list(asks))


def delta(event: wire.DepthUpdate, received: int = 1) -> BookDelta:
    return parse.depth_diff(event, EX, received)


def snapshot(model: DepthModel, symbol: str, update_id: int | None = None) -> BookSnapshot:
    return parse.depth_snapshot(model.snapshot(symbol, update_id), symbol, EX, 1)
