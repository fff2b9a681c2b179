"""The simulator's seeded market model: no I/O, no clock of its own.

Each `advance(now_ms)` picks a symbol and makes one transaction on its true
book: either quotes change (levels added near the touch, requoted,
cancelled, an improvement inside the spread: the mid follows a random walk)
or a taker order sweeps one or more levels and prints trades. A transaction
takes update ids from ONE sequence shared by every symbol (with a random
jump for the venue's other symbols), so a symbol's ids are never
consecutive, exactly as on Binance futures. Trades feed the candles; a
small share of them are liquidations (insurance-fund fills + forceOrder).

Same seed + same sequence of calls = same market, byte for byte. Mark price
and funding use their own per-symbol generators (see `funding.py`), so the
scheduler's timing never changes the book.

`Truth` is the read-only view tests use to compare a client's book with the
simulator's at any retained update id.
"""

from __future__ import annotations

import random

import msgspec

from raven.connectors.binance import wire
from raven.model import Level
from raven.sim import payloads
from raven.sim.book import Change, TrueBook, Txn
from raven.sim.funding import E8, FundingState
from raven.sim.instruments import Instrument, instrument
from raven.sim.klines import KlineStore
from raven.sim.payloads import Liquidation, Print

FIRST_UPDATE_ID = 11_757_092_217_378  # ids the size of the venue's
MAX_ID_JUMP = 40  # other symbols' updates between two of ours (at least one: never U == pu + 1)
DEFAULT_EMIT = ("aggTrade", "bookTicker")  # what `step()` returns unless told otherwise


class Emission(msgspec.Struct, frozen=True):
    """One payload for the stream `<symbol lower>@<suffix>`."""

    symbol: str
    suffix: str  # "aggTrade", "bookTicker", "trade", "depth@0ms"
    payload: wire.Payload


class SymbolState:
    """Everything the model knows about one symbol."""

    def __init__(self, inst: Instrument, book: TrueBook, seed: int) -> None:
        self.inst = inst
        self.book = book
        self.agg_id = 0
        self.trade_id = 0
        self.klines = KlineStore(inst, 0)
        self.funding = FundingState(inst.symbol, seed, 0)
        self.liquidation: Liquidation | None = None  # the latest one not pushed yet

    def mid_e8(self) -> int:
        book = self.book
        scale: int = 10 ** (8 - self.inst.price_decimals)
        return (book.best_bid() + book.best_ask()) * scale // 2


class Step(msgspec.Struct, gc=False):
    """What one `advance` did: the transaction and any trades it printed."""

    state: SymbolState
    txn: Txn
    prev_id: int  # the symbol's previous update id: `pu` of a @0ms event
    prints: list[Print]
    touch_changed: bool


class MarketModel:
    """A seeded market over `symbols`; `advance(now_ms)` makes one transaction."""

    def __init__(
        self,
        symbols: tuple[str, ...],
        seed: int,
        trade_share: float = 0.3,
        *,
        depth: int = 1000,
        history: int = 100_000,
        liquidation_share: float = 0.02,
        emit: tuple[str, ...] = DEFAULT_EMIT,
    ) -> None:
        self.rng = random.Random(seed)
        self.symbols = symbols
        self.trade_share = trade_share
        self.liquidation_share = liquidation_share
        self.depth = depth
        self.emit = emit
        self.update_id = FIRST_UPDATE_ID + self.rng.randint(0, 10**6)
        self.states = {s: self._new_symbol(s, seed, history) for s in symbols}
        self._order = [self.states[s] for s in symbols]

    def next_ids(self, count: int) -> tuple[int, int]:
        """`count` consecutive ids after a random jump: (first, last)."""
        first = self.update_id + self.rng.randint(2, MAX_ID_JUMP)
        self.update_id = first + count - 1
        return first, self.update_id

    def _new_symbol(self, symbol: str, seed: int, history: int) -> SymbolState:
        inst = instrument(symbol)
        state = SymbolState(inst, TrueBook(self.next_ids(1)[1], history), seed)
        state.agg_id = self.rng.randint(10**8, 10**9)
        state.trade_id = state.agg_id * 2
        bid = inst.start_price - inst.start_price % inst.tick
        scratch: list[Change] = []
        for is_bid, best, direction in ((True, bid, -1), (False, bid + inst.tick, 1)):
            price = best
            while len(state.book.bids if is_bid else state.book.asks) < self.depth:
                if price == best or self.rng.random() < 0.7:
                    state.book.set(is_bid, price, self._qty(inst), scratch)
                price += direction * inst.tick
                if price <= 0:
                    break
        state.klines = KlineStore(inst, bid)
        state.funding = FundingState(symbol, seed, state.mid_e8())
        return state

    def _qty(self, inst: Instrument) -> int:
        """A resting quantity: heavy-tailed, like real books."""
        return inst.step * min(100_000, int(self.rng.paretovariate(1.3) * 20))

    def _index(self, size: int) -> int:
        """A level index counted from the touch: mostly near it."""
        return min(size - 1, int(self.rng.expovariate(0.25)))

    # --- one transaction ---------------------------------------------------

    def advance(self, now_ms: int) -> Step:
        state = self._order[self.rng.randrange(len(self._order))]
        book = state.book
        before = book.touch()
        changes: list[Change] = []
        prints: list[Print] = []
        if self.rng.random() < self.trade_share:
            prints = self._trade(state, changes, now_ms)
        else:
            self._quote(state, changes)
        self._keep_depth(state, changes)
        first, last = self.next_ids(len(changes))
        prev = book.last_id
        txn = Txn(first, last, now_ms, changes)
        book.commit(txn)
        return Step(state, txn, prev, prints, book.touch() != before)

    def _quote(self, state: SymbolState, changes: list[Change]) -> None:
        rng = self.rng
        for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 5)):
            is_bid = rng.random() < 0.5
            r = rng.random()
            if r < 0.25:
                self._improve(state, is_bid, changes)
            elif r < 0.45:
                self._add_near(state, is_bid, changes)
            elif r < 0.80:
                self._requote(state, is_bid, changes)
            elif r < 0.97:
                self._cancel(state, is_bid, changes)
            else:
                self._remove_absent(state, is_bid, changes)

    def _improve(self, state: SymbolState, is_bid: bool, changes: list[Change]) -> None:
        """A new best level inside the spread (or a requote when the spread is one tick)."""
        book, tick = state.book, state.inst.tick
        bid, ask = book.best_bid(), book.best_ask()
        if ask - bid <= tick:
            self._requote(state, is_bid, changes)
            return
        price = bid + tick if is_bid else ask - tick
        book.set(is_bid, price, self._qty(state.inst), changes)

    def _add_near(self, state: SymbolState, is_bid: bool, changes: list[Change]) -> None:
        book, tick = state.book, state.inst.tick
        distance = (1 + int(self.rng.expovariate(0.2))) * tick
        price = book.best_bid() - distance if is_bid else book.best_ask() + distance
        if price > 0:
            book.set(is_bid, price, self._qty(state.inst), changes)

    def _requote(self, state: SymbolState, is_bid: bool, changes: list[Change]) -> None:
        side = state.book.bids if is_bid else state.book.asks
        i = self._index(len(side))
        price = side.keys[-1 - i] if is_bid else side.keys[i]
        state.book.set(is_bid, price, self._qty(state.inst), changes)

    def _cancel(self, state: SymbolState, is_bid: bool, changes: list[Change]) -> None:
        side = state.book.bids if is_bid else state.book.asks
        if len(side) < 2:  # never empty a side: the mid must exist
            self._requote(state, is_bid, changes)
            return
        i = self._index(len(side))
        state.book.set(is_bid, side.keys[-1 - i] if is_bid else side.keys[i], 0, changes)

    def _remove_absent(self, state: SymbolState, is_bid: bool, changes: list[Change]) -> None:
        """A "0" for a level that is not there: the venue sends these; clients must cope."""
        side = state.book.bids if is_bid else state.book.asks
        step = self.rng.randint(1, 5) * state.inst.tick
        price = side.keys[0] - step if is_bid else side.keys[-1] + step
        if price > 0:
            state.book.set(is_bid, price, 0, changes)
        else:
            self._requote(state, is_bid, changes)

    def _keep_depth(self, state: SymbolState, changes: list[Change]) -> None:
        """Trim each side to `depth` levels, or grow a short side by one far level."""
        book, tick = state.book, state.inst.tick
        for is_bid, side in ((True, book.bids), (False, book.asks)):
            while len(side) > self.depth:
                book.set(is_bid, side.keys[0] if is_bid else side.keys[-1], 0, changes)
            if len(side) < self.depth:
                gap = self.rng.randint(1, 3) * tick
                price = side.keys[0] - gap if is_bid else side.keys[-1] + gap
                if price > 0:
                    book.set(is_bid, price, self._qty(state.inst), changes)

    # --- trades ------------------------------------------------------------

    def _trade(self, state: SymbolState, changes: list[Change], now_ms: int) -> list[Print]:
        rng, book, step = self.rng, state.book, state.inst.step
        buy = rng.random() < 0.5  # the aggressor buys: it takes asks
        side = book.asks if buy else book.bids
        prices = side.keys[:4] if buy else side.keys[-4:][::-1]
        if len(prices) == 1 or rng.random() < 0.75:
            qty = step * rng.randint(1, side.levels[prices[0]] // step)
        else:  # sweep whole levels, maybe part of the next; never the whole side
            k = rng.randint(1, min(3, len(prices) - 1))
            qty = sum(side.levels[p] for p in prices[:k])
            qty += step * rng.randint(0, side.levels[prices[k]] // step - 1)
        insurance = rng.random() < self.liquidation_share
        prints: list[Print] = []
        remaining = qty
        for price in prices:
            level = side.levels[price]
            fill = min(remaining, level)
            book.set(not buy, price, level - fill, changes)
            prints.append(self._print(state, price, fill, buy, insurance, now_ms))
            state.klines.add_trade(
                now_ms, price, fill, prints[-1].first_id, prints[-1].last_id, buy
            )
            remaining -= fill
            if not remaining:
                break
        if insurance:
            state.liquidation = self._liquidation(state, prints, buy, now_ms)
        return prints

    def _print(
        self, state: SymbolState, price: int, qty: int, buy: bool, insurance: bool, now_ms: int
    ) -> Print:
        """The fills of one taker order at one price: one aggTrade, 1-3 raw trades."""
        step = state.inst.step
        lots = qty // step
        count = self.rng.randint(1, min(3, lots))
        cuts = sorted(self.rng.sample(range(1, lots), count - 1)) if count > 1 else []
        bounds = [0, *cuts, lots]
        fills = [(bounds[i + 1] - bounds[i]) * step for i in range(count)]
        first = state.trade_id + 1
        state.trade_id += count
        if not insurance:  # insurance-fund fills are not aggregated: no aggTrade
            state.agg_id += 1
        agg_id = 0 if insurance else state.agg_id
        return Print(agg_id, price, qty, first, state.trade_id, fills, now_ms, not buy, insurance)

    def _liquidation(
        self, state: SymbolState, prints: list[Print], buy: bool, now_ms: int
    ) -> Liquidation:
        tick = state.inst.tick
        qty = sum(p.qty for p in prints)
        avg = sum(p.price * p.qty for p in prints) // qty
        if buy:  # a short was liquidated: its bankruptcy price is above the fills
            price = -(-avg * 101 // 100 // tick) * tick
        else:
            price = max(tick, avg * 99 // 100 // tick * tick)
        side = "BUY" if buy else "SELL"
        return Liquidation(side, qty, price, avg, prints[-1].fills[-1], now_ms)

    # --- the simple pure API -----------------------------------------------

    def step(self, now_ms: int) -> list[Emission]:
        """`advance`, then the payloads of the real-time streams named in `emit`."""
        step = self.advance(now_ms)
        return payloads.emissions(step.state.inst, step, self.emit, now_ms, Emission)

    def funding_tick(self, now_ms: int) -> None:
        """Advance every symbol's mark/index/funding by one (about one second)."""
        for state in self._order:
            state.funding.tick(now_ms, state.mid_e8())


class Truth:
    """The true books, as text levels (the same strings the streams carry)."""

    def __init__(self, model: MarketModel) -> None:
        self._model = model

    def _state(self, symbol: str) -> SymbolState:
        try:
            return self._model.states[symbol]
        except KeyError:
            raise KeyError(f"{symbol!r} is not simulated; symbols: {self._model.symbols}") from None

    def book_at(self, symbol: str, update_id: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """(bids, asks), best first, after every change of `symbol` with id <= `update_id`."""
        state = self._state(symbol)
        bids, asks = state.book.at(update_id)
        return _text(state.inst, bids), _text(state.inst, asks)

    def book(self, symbol: str, depth: int = 0) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """The current book, the best `depth` levels of each side (all when 0)."""
        state = self._state(symbol)
        n = depth or len(state.book.bids) + len(state.book.asks)
        bids, asks = state.book.top(n)
        return _text(state.inst, bids), _text(state.inst, asks)

    def last_update_id(self, symbol: str) -> int:
        """The id of the symbol's last change (a REST snapshot's `lastUpdateId`)."""
        return self._state(symbol).book.last_id

    def oldest_update_id(self, symbol: str) -> int:
        """The oldest id `book_at` can rebuild (the history bound)."""
        return self._state(symbol).book.floor_id

    @property
    def update_id(self) -> int:
        """The shared sequence's latest id, across all symbols."""
        return self._model.update_id


def _text(inst: Instrument, levels: list[tuple[int, int]]) -> tuple[Level, ...]:
    return tuple((inst.price(p), inst.qty(q)) for p, q in levels)


__all__ = ["E8", "Emission", "MarketModel", "Step", "SymbolState", "Truth"]
