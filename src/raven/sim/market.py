"""The simulator's seeded market model: no I/O, no clock of its own.

Each step moves one symbol's touch by a random walk or prints a trade on the
touch, and returns the payloads Binance would send for it. Update ids come
from one sequence shared by all symbols, as on the venue, so `bookTicker`'s
`u` never increases by exactly one per symbol.
"""

from __future__ import annotations

import random

import msgspec

from raven.connectors.binance import wire
from raven.sim.instruments import Instrument, instrument


class Emission(msgspec.Struct, frozen=True):
    """One payload for the stream `<symbol lower>@<suffix>`."""

    symbol: str
    suffix: str  # "aggTrade", "bookTicker", ...
    payload: wire.Payload


class SymbolState:
    __slots__ = ("agg_id", "ask_qty", "bid", "bid_qty", "inst", "trade_id")

    def __init__(self, inst: Instrument, rng: random.Random) -> None:
        self.inst = inst
        self.bid = inst.start_price - inst.start_price % inst.tick
        self.bid_qty = rng.randint(1, 500) * inst.step
        self.ask_qty = rng.randint(1, 500) * inst.step
        self.agg_id = rng.randint(10**8, 10**9)
        self.trade_id = self.agg_id * 2

    @property
    def ask(self) -> int:
        return self.bid + self.inst.tick


class MarketModel:
    """A seeded market over `symbols`; `step(now_ms)` advances it by one event."""

    def __init__(self, symbols: tuple[str, ...], seed: int, trade_share: float = 0.4) -> None:
        self.rng = random.Random(seed)
        self.symbols = symbols
        self.trade_share = trade_share
        self.states = {s: SymbolState(instrument(s), self.rng) for s in symbols}
        self.update_id = 11_757_092_217_378 + self.rng.randint(0, 10**6)

    def next_update_id(self) -> int:
        """One id space for every symbol: other symbols' updates fill the gaps."""
        self.update_id += self.rng.randint(1, 40)
        return self.update_id

    def step(self, now_ms: int) -> list[Emission]:
        symbol = self.rng.choice(self.symbols)
        state = self.states[symbol]
        if self.rng.random() < self.trade_share:
            return self._trade(state, now_ms)
        self._walk(state)
        return [self._book_ticker(state, now_ms)]

    def _walk(self, state: SymbolState) -> None:
        move = self.rng.choice((-1, 0, 0, 1))
        floor = state.inst.tick * 10
        state.bid = max(floor, state.bid + move * state.inst.tick)
        if move:
            state.bid_qty = self.rng.randint(1, 500) * state.inst.step
            state.ask_qty = self.rng.randint(1, 500) * state.inst.step
        elif self.rng.random() < 0.5:
            state.bid_qty = self.rng.randint(1, 500) * state.inst.step
        else:
            state.ask_qty = self.rng.randint(1, 500) * state.inst.step

    def _trade(self, state: SymbolState, now_ms: int) -> list[Emission]:
        buy = self.rng.random() < 0.5
        touch = state.ask_qty if buy else state.bid_qty
        qty = min(touch, self.rng.randint(1, 60) * state.inst.step)
        price = state.ask if buy else state.bid
        fills = self.rng.randint(1, 3)
        state.agg_id += 1
        first = state.trade_id + 1
        state.trade_id += fills
        inst = state.inst
        trade = wire.AggTrade(
            E=now_ms,
            a=state.agg_id,
            s=state.inst.symbol,
            p=inst.price(price),
            q=inst.qty(qty),
            nq=inst.qty(qty),
            f=first,
            l=state.trade_id,
            T=now_ms - self.rng.randint(0, 3),
            m=not buy,
            st=1,
        )
        out = [Emission(inst.symbol, "aggTrade", trade)]
        if qty == touch:  # the level is gone: the touch moves
            state.bid += inst.tick if buy else -inst.tick
            state.bid = max(inst.tick * 10, state.bid)
            state.bid_qty = self.rng.randint(1, 500) * inst.step
            state.ask_qty = self.rng.randint(1, 500) * inst.step
        elif buy:
            state.ask_qty -= qty
        else:
            state.bid_qty -= qty
        out.append(self._book_ticker(state, now_ms))
        return out

    def _book_ticker(self, state: SymbolState, now_ms: int) -> Emission:
        inst = state.inst
        payload = wire.BookTicker(
            u=self.next_update_id(),
            s=inst.symbol,
            ps=inst.symbol,
            b=inst.price(state.bid),
            B=inst.qty(state.bid_qty),
            a=inst.price(state.ask),
            A=inst.qty(state.ask_qty),
            T=now_ms,
            E=now_ms + 1,
            st=1,
        )
        return Emission(inst.symbol, "bookTicker", payload)
