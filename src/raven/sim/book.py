"""The simulator's true order book of one symbol, with a bounded undo log.

Prices and quantities are integer units (see `instruments.py`). The market
model changes the book only inside a transaction: a list of level changes
that gets update ids from the model's shared sequence and is then committed
here. The log of committed transactions lets `at(update_id)` rebuild the
book as it was after any retained update id, which is what tests compare a
client's book with.

Bound: the log keeps the last `history` transactions of the symbol; asking
for an id older than that raises `LookupError` naming the oldest id still
available (`floor_id`).
"""

from __future__ import annotations

import collections
from bisect import bisect_left, insort

# (is_bid, price, quantity before, quantity after); quantity 0 = no level.
Change = tuple[bool, int, int, int]
UnitLevels = list[tuple[int, int]]  # [(price, quantity)], best first


class Txn:
    """One committed book change of one symbol: update ids first..last."""

    __slots__ = ("changes", "first_id", "last_id", "time_ms")

    def __init__(self, first_id: int, last_id: int, time_ms: int, changes: list[Change]) -> None:
        self.first_id = first_id
        self.last_id = last_id
        self.time_ms = time_ms
        self.changes = changes


class BookSide:
    """Price -> quantity with the prices kept sorted (ascending)."""

    __slots__ = ("keys", "levels")

    def __init__(self) -> None:
        self.levels: dict[int, int] = {}
        self.keys: list[int] = []

    def __len__(self) -> int:
        return len(self.keys)

    def set(self, price: int, qty: int) -> int:
        """Set an absolute quantity (0 removes; removing nothing is fine); returns the old one."""
        levels = self.levels
        old = levels.get(price, 0)
        if qty:
            if not old:
                insort(self.keys, price)
            levels[price] = qty
        elif old:
            del levels[price]
            keys = self.keys
            del keys[bisect_left(keys, price)]
        return old

    def lowest(self, n: int) -> UnitLevels:
        levels = self.levels
        return [(p, levels[p]) for p in self.keys[:n]]

    def highest(self, n: int) -> UnitLevels:
        levels = self.levels
        keys = self.keys
        return [(p, levels[p]) for p in reversed(keys[-n:] if n < len(keys) else keys)]


class TrueBook:
    """Bids and asks of one symbol as of `last_id`, plus the undo log."""

    def __init__(self, created_id: int, history: int) -> None:
        self.bids = BookSide()
        self.asks = BookSide()
        self.last_id = created_id  # the id of the last committed change
        self.floor_id = created_id  # the oldest id `at()` can still rebuild
        self.history = history
        self.log: collections.deque[Txn] = collections.deque()

    def set(self, is_bid: bool, price: int, qty: int, changes: list[Change]) -> None:
        """Change one level now and note it in the open transaction `changes`."""
        old = (self.bids if is_bid else self.asks).set(price, qty)
        changes.append((is_bid, price, old, qty))

    def commit(self, txn: Txn) -> None:
        if len(self.log) >= self.history:
            self.floor_id = self.log.popleft().last_id
        self.log.append(txn)
        self.last_id = txn.last_id

    def best_bid(self) -> int:
        return self.bids.keys[-1] if self.bids.keys else 0

    def best_ask(self) -> int:
        return self.asks.keys[0] if self.asks.keys else 0

    def touch(self) -> tuple[int, int, int, int]:
        """(bid price, bid qty, ask price, ask qty); zeros for an empty side."""
        bid, ask = self.best_bid(), self.best_ask()
        return bid, self.bids.levels.get(bid, 0), ask, self.asks.levels.get(ask, 0)

    def top(self, n: int) -> tuple[UnitLevels, UnitLevels]:
        """The best `n` levels of each side, best first."""
        return self.bids.highest(n), self.asks.lowest(n)

    def at(self, update_id: int) -> tuple[UnitLevels, UnitLevels]:
        """Both sides, best first, after every change with an id <= `update_id`."""
        if update_id < self.floor_id:
            raise LookupError(
                f"update id {update_id} is older than the truth history "
                f"(oldest available: {self.floor_id})"
            )
        bids = dict(self.bids.levels)
        asks = dict(self.asks.levels)
        for txn in reversed(self.log):
            if txn.last_id <= update_id:
                break
            for is_bid, price, old, _new in reversed(txn.changes):
                side = bids if is_bid else asks
                if old:
                    side[price] = old
                else:
                    side.pop(price, None)
        return (
            sorted(bids.items(), reverse=True),
            sorted(asks.items()),
        )
