"""A full L2 order book for one symbol: no I/O, no exchange rules.

Levels are stored per side as price key -> (price text, quantity text),
with the keys kept sorted in a list (bisect insert/remove, a memmove in C),
so the best level is O(1) and the top N levels are an O(N) slice: no sort
per event. The key is the float of the price text; the same text always
gives the same float, and the original text is what goes out.

Sequencing (which update may follow which) is the connector's job; this
class only applies levels.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable

from raven.model import Level


class BookSide:
    __slots__ = ("_keys", "_levels", "descending")

    def __init__(self, descending: bool) -> None:
        self.descending = descending  # bids: best is the highest price
        self._levels: dict[float, Level] = {}
        self._keys: list[float] = []  # ascending

    def __len__(self) -> int:
        return len(self._keys)

    def clear(self) -> None:
        self._levels.clear()
        self._keys.clear()

    def set(self, price: str, quantity: str) -> None:
        """Absolute quantity; a zero quantity removes the level (absent is fine)."""
        key = float(price)
        levels = self._levels
        if float(quantity) == 0.0:
            if levels.pop(key, None) is not None:
                keys = self._keys
                del keys[bisect_left(keys, key)]
            return
        if key not in levels:
            insort(self._keys, key)
        levels[key] = (price, quantity)

    def apply(self, levels: Iterable[Level]) -> None:
        """`set` of each level, written out: this loop runs for every level of
        every book update. The level tuple itself is stored (it is immutable)."""
        book = self._levels
        keys = self._keys
        for level in levels:
            price, quantity = level
            key = float(price)
            if float(quantity) == 0.0:
                if book.pop(key, None) is not None:
                    del keys[bisect_left(keys, key)]
            else:
                if key not in book:
                    insort(keys, key)
                book[key] = level

    def best(self) -> Level | None:
        if not self._keys:
            return None
        return self._levels[self._keys[-1] if self.descending else self._keys[0]]

    def top(self, n: int) -> tuple[Level, ...]:
        """The best `n` levels (all when n <= 0), best first."""
        keys = self._keys
        levels = self._levels
        if self.descending:
            chosen = keys[-n:] if 0 < n < len(keys) else keys
            return tuple(levels[k] for k in reversed(chosen))
        chosen = keys[:n] if n > 0 else keys
        return tuple(levels[k] for k in chosen)

    def get(self, price: str) -> str | None:
        level = self._levels.get(float(price))
        return None if level is None else level[1]


class OrderBook:
    """Bids and asks of one symbol as of `update_id`."""

    __slots__ = ("asks", "bids", "exchange_time", "symbol", "update_id")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids = BookSide(descending=True)
        self.asks = BookSide(descending=False)
        self.update_id = 0
        self.exchange_time = 0

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self.update_id = 0

    def load(self, bids: Iterable[Level], asks: Iterable[Level], update_id: int) -> None:
        """Replace the whole book with a snapshot."""
        self.clear()
        self.apply(bids, asks, update_id)

    def apply(self, bids: Iterable[Level], asks: Iterable[Level], update_id: int) -> None:
        """Apply absolute level quantities (quantity "0" removes)."""
        self.bids.apply(bids)
        self.asks.apply(asks)
        self.update_id = update_id

    def best_bid(self) -> Level | None:
        return self.bids.best()

    def best_ask(self) -> Level | None:
        return self.asks.best()

    def top(self, n: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """(bids, asks), the best `n` of each side (all when n <= 0), best first."""
        return self.bids.top(n), self.asks.top(n)

    def crossed(self) -> bool:
        """Best bid >= best ask (crossed or locked); compares the sorted keys."""
        bids, asks = self.bids._keys, self.asks._keys
        return bool(bids) and bool(asks) and bids[-1] >= asks[0]
