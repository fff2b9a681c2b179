"""The live feed: drives the market model at the configured rate and runs the
one scheduler that pushes every timed stream.

Two owned tasks, both paused while `enabled` is clear:

- the rate loop makes `rate` transactions per second across all symbols
  (bursts of at most BURST_S when behind, so the writers and everything else
  get the loop often; more than a second behind, the backlog is dropped and
  counted, never replayed in a rush). `rate = inf` runs flat out. Real-time streams
  (`@depth@0ms`, `@bookTicker`, `@aggTrade`, `@trade`) go out with each one.
- the scheduler wakes on wall-clock multiples of 100, 250, 500, 1000 and
  3000 ms and pushes the timed streams: aggregated and partial depth,
  klines (250 ms), mark price (1 s / 3 s), liquidations (the latest per
  symbol, at most one a second). No per-connection timers.

Payloads are built only for streams someone listens to, then encoded once
by the hub for every subscriber.
"""

from __future__ import annotations

import asyncio
import time

from raven.config import SimulatorConfig
from raven.sim.depth import Window
from raven.sim.hub import Hub
from raven.sim.market import MarketModel, Step
from raven.sim.names import PARTIAL_LEVELS, WINDOW_SPEEDS, Kind, SymbolNames, parse_name
from raven.sim.payloads import (
    agg_trade,
    ascending,
    book_ticker,
    depth_update,
    force_order,
    merged,
    partial_depth,
    raw_trades,
)
from raven.sim.stats import SimStats

BURST_S = 0.005  # a loop turn makes transactions for at most this long, then yields
CLOCK_EVERY = 64  # transactions between two looks at the clock within a burst
# The shortest wait between two turns. Shorter intervals (rates over 1,000/s) make
# the transactions of a millisecond in one turn, stamped with the same ms (the venue's
# time resolution): one writer wake-up and socket write per connection per ms, where
# a turn per transaction was mostly event-loop overhead, here and in the client.
TICK_S = 0.001
PERIODS_MS = (100, 250, 500, 1000, 3000)
MARK_ALL = {1000: "!markPrice@arr@1s", 3000: "!markPrice@arr"}
FORCE_ALL = "!forceOrder@arr"


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class LiveFeed:
    def __init__(
        self,
        model: MarketModel,
        hub: Hub,
        config: SimulatorConfig,
        stats: SimStats,
        enabled: asyncio.Event,
    ) -> None:
        self.model = model
        self.hub = hub
        self.config = config
        self.stats = stats
        self.enabled = enabled
        self.symbols = frozenset(model.symbols)
        self.names = {s: SymbolNames(s) for s in model.symbols}
        self.windows = {
            s: {speed: Window(state.book.last_id) for speed in WINDOW_SPEEDS}
            for s, state in model.states.items()
        }
        self.klines: dict[str, tuple[str, str]] = {}  # stream name -> (symbol, interval)
        hub.on_first_subscriber = self._first_subscriber

    def _first_subscriber(self, name: str) -> None:
        parsed = parse_name(name, self.symbols)
        if parsed is not None and parsed.kind is Kind.KLINE:
            self.klines[name] = (parsed.symbol, parsed.interval)
            self.model.states[parsed.symbol].klines.track(parsed.interval, wall_ms())

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._rate_loop(), name="sim-rate-loop")
            group.create_task(self._scheduler(), name="sim-scheduler")

    # --- real-time streams -------------------------------------------------

    def step(self, now_ms: int | None = None) -> Step:
        """Make one transaction and send its real-time events."""
        now_ms = now_ms or wall_ms()
        step = self.model.advance(now_ms)
        self.stats.steps += 1
        self.publish_step(step, now_ms)
        return step

    def publish_step(self, step: Step, now_ms: int) -> None:
        inst = step.state.inst
        txn = step.txn
        names = self.names[inst.symbol]
        hub = self.hub
        for window in self.windows[inst.symbol].values():
            window.add(txn)
        if hub.has(names.depth[0]):
            bids, asks = merged(txn.changes)
            ids = (txn.first_id, txn.last_id, step.prev_id)
            sides = (ascending(inst, bids), ascending(inst, asks))
            hub.publish(names.depth[0], depth_update(inst, ids, sides, txn.time_ms, now_ms))
        for p in step.prints:
            if not p.insurance and hub.has(names.agg_trade):
                hub.publish(names.agg_trade, agg_trade(inst, p, now_ms))
            if hub.has(names.trade):
                for trade in raw_trades(inst, p, now_ms):
                    hub.publish(names.trade, trade)
        if step.touch_changed and hub.has(names.book_ticker):
            ticker = book_ticker(inst, step.state.book, txn.time_ms, now_ms)
            hub.publish(names.book_ticker, ticker)

    async def _rate_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.config.rate  # 0.0 for an infinite rate: flat out
        due = loop.time()
        while True:
            if not self.enabled.is_set():
                await self.enabled.wait()
                due = loop.time()
            now = loop.time()
            if interval and due < now - 1.0:  # more than a second behind: drop the backlog
                behind = int((now - due) / interval)
                self.stats.skipped_steps += behind
                due += behind * interval
            due = self._burst(due, now, interval)
            wait = due - loop.time()
            await asyncio.sleep(max(wait, TICK_S) if wait > 0 else 0.0)

    def _burst(self, due: float, now: float, interval: float) -> float:
        """Make every transaction due by `now`, for at most BURST_S; returns the next due time."""
        stop = time.monotonic() + BURST_S
        now_ms = wall_ms()
        count = 0
        while due <= now:
            self.step(now_ms)
            due += interval
            count += 1
            if count % CLOCK_EVERY == 0:
                if time.monotonic() > stop:
                    break
                now_ms = wall_ms()
        return due

    # --- timed streams -----------------------------------------------------

    async def _scheduler(self) -> None:
        now_ms = wall_ms()
        due = {p: (now_ms // p + 1) * p for p in PERIODS_MS}
        while True:
            if not self.enabled.is_set():
                await self.enabled.wait()
            now_ms = wall_ms()
            wake = min(due.values())
            if now_ms < wake:
                await asyncio.sleep((wake - now_ms) / 1000)
                continue
            for period in PERIODS_MS:
                if due[period] <= now_ms:
                    self.tick(period, now_ms)
                    due[period] = (now_ms // period + 1) * period

    def tick(self, period: int, now_ms: int) -> None:
        """Push what is due every `period` ms (tests may call this directly)."""
        if period in WINDOW_SPEEDS:
            self._flush_windows(period, now_ms)
        if period == 250:
            self._push_klines(now_ms)
        if period == 1000:
            self.model.funding_tick(now_ms)
            self._push_liquidations(now_ms)
        if period in MARK_ALL:
            self._push_mark_prices(period, now_ms)

    def _flush_windows(self, speed: int, now_ms: int) -> None:
        hub = self.hub
        for symbol, windows in self.windows.items():
            taken = windows[speed].take()
            if taken is None:
                continue
            ids, bids, asks, t_ms = taken
            names = self.names[symbol]
            state = self.model.states[symbol]
            inst = state.inst
            if hub.has(names.depth[speed]):
                sides = (ascending(inst, bids), ascending(inst, asks))
                hub.publish(names.depth[speed], depth_update(inst, ids, sides, t_ms, now_ms))
            for levels in PARTIAL_LEVELS:
                name = names.partial[(speed, levels)]
                if hub.has(name):
                    hub.publish(name, partial_depth(inst, state.book, levels, ids, t_ms, now_ms))

    def _push_klines(self, now_ms: int) -> None:
        for name, (symbol, interval) in self.klines.items():
            store = self.model.states[symbol].klines
            bars = store.poll(interval, now_ms)  # also rolls bars nobody listens to any more
            if self.hub.has(name):
                for bar, final in bars:
                    self.hub.publish(name, store.kline(bar, interval, final, now_ms))

    def _push_liquidations(self, now_ms: int) -> None:
        for symbol, state in self.model.states.items():
            liq = state.liquidation
            if liq is None:
                continue
            state.liquidation = None
            payload = force_order(state.inst, liq, now_ms)
            if self.hub.has(self.names[symbol].force_order):
                self.hub.publish(self.names[symbol].force_order, payload)
            if self.hub.has(FORCE_ALL):
                self.hub.publish(FORCE_ALL, payload)

    def _push_mark_prices(self, period: int, now_ms: int) -> None:
        hub = self.hub
        states = self.model.states
        for symbol, state in states.items():
            name = self.names[symbol].mark_price[period]
            if hub.has(name):
                hub.publish(name, state.funding.mark_price(now_ms))
        if hub.has(MARK_ALL[period]):
            hub.publish(MARK_ALL[period], [s.funding.mark_price(now_ms) for s in states.values()])
