"""Aggregated diff depth: the changes of one symbol over one update window.

`@depth@100ms`, `@depth` (250 ms) and `@depth@500ms` each keep one window
per symbol. Every transaction is merged in (absolute quantities, the last
value wins, 0 removes); at the end of the window the scheduler takes it as
one event: U = the first id merged, u = the last, pu = u of the previous
event of THIS stream. Partial depth (`@depth5/10/20...`) at the same speed
uses the same window for its ids and the true book for its levels.

Every window merges every transaction, whether or not anyone listens, so an
event is always exactly the true change between its pu and its u.
"""

from __future__ import annotations

from raven.sim.book import Txn


class Window:
    """One symbol's pending changes for one update speed."""

    __slots__ = ("asks", "bids", "first_id", "last_id", "prev_id", "time_ms")

    def __init__(self, prev_id: int) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.first_id = 0  # 0: nothing changed in this window
        self.last_id = 0
        self.prev_id = prev_id  # `pu` of the next event: u of the previous one
        self.time_ms = 0

    def add(self, txn: Txn) -> None:
        bids, asks = self.bids, self.asks
        for is_bid, price, _old, new in txn.changes:
            if is_bid:
                bids[price] = new
            else:
                asks[price] = new
        if not self.first_id:
            self.first_id = txn.first_id
        self.last_id = txn.last_id
        self.time_ms = txn.time_ms

    def take(self) -> tuple[tuple[int, int, int], dict[int, int], dict[int, int], int] | None:
        """((U, u, pu), bids, asks, T) of the window just ended, or None if nothing changed."""
        if not self.first_id:
            return None
        out = (self.first_id, self.last_id, self.prev_id), self.bids, self.asks, self.time_ms
        self.prev_id = self.last_id
        self.first_id = 0
        self.bids = {}
        self.asks = {}
        return out
