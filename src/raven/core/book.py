"""A full L2 order book for one symbol: no I/O, no exchange rules.

Each side keeps its price keys in a sorted `array('d')` (ascending) and the
levels, (price text, quantity text) tuples, in a Python list parallel to it:
no dict, no float object per level, 8 bytes of key and 8 of list slot plus
the level tuple itself (the one the decoder produced, stored as-is). Lookups
are a bisect on the array (O(log N) where a dict was O(1): each probe makes
a float, so applying a level costs more than a dict lookup did, while `top`
is a plain slice); inserts and removes are `array.insert`/`del` and
`list.insert`/`del`, memmoves in C. The best level is O(1) and the top N
levels are one O(N) slice: no sort per event. The key is the float of the
price text; the same text always gives the same float, and the original text
is what goes out.

Sequencing (which update may follow which) is the connector's job; this
class only applies levels.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable

from raven.model import Level


class BookSide:
    __slots__ = ("_keys", "_levels", "descending")

    def __init__(self, descending: bool) -> None:
        self.descending = descending  # bids: best is the highest price
        self._keys = array("d")  # ascending price keys
        self._levels: list[Level] = []  # _levels[i] is the level of _keys[i]

    def __len__(self) -> int:
        return len(self._levels)

    def clear(self) -> None:
        del self._keys[:]
        self._levels.clear()

    def set(self, price: str, quantity: str) -> None:
        """Absolute quantity; a zero quantity removes the level (absent is fine)."""
        self.apply(((price, quantity),))

    def apply(self, levels: Iterable[Level]) -> None:
        """`set` of each level, written out: this loop runs for every level of
        every book update. The level tuple itself is stored (it is immutable)."""
        keys = self._keys
        book = self._levels
        for level in levels:
            price, quantity = level
            key = float(price)
            i = bisect_left(keys, key)
            if float(quantity) == 0.0:
                if i != len(keys) and keys[i] == key:
                    del keys[i]
                    del book[i]
            elif i != len(keys) and keys[i] == key:
                book[i] = level
            else:
                keys.insert(i, key)
                book.insert(i, level)

    def best(self) -> Level | None:
        levels = self._levels
        if not levels:
            return None
        return levels[-1] if self.descending else levels[0]

    def top(self, n: int) -> tuple[Level, ...]:
        """The best `n` levels (all when n <= 0), best first."""
        levels = self._levels
        if self.descending:
            # [:-n-1:-1] is the last n reversed, or all of them when n >= len.
            return tuple(levels[: -n - 1 : -1] if n > 0 else levels[::-1])
        return tuple(levels[:n] if n > 0 else levels)

    def get(self, price: str) -> str | None:
        key = float(price)
        keys = self._keys
        i = bisect_left(keys, key)
        if i != len(keys) and keys[i] == key:
            return self._levels[i][1]
        return None


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
