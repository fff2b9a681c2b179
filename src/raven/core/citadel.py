"""The citadel: every event from a connector is checked here before anything
else sees it.

`Citadel.check(event)` returns the event (or a sanitized copy, when a price or
quantity was snapped to the symbol's grid) or None when a rule rejects it.
Rejected data never reaches state, clients or storage; each rejection is
counted by (rule, exchange, symbol) and logged at most once per rule and
symbol per `log_interval_s`. The rules themselves are the pure functions of
`raven.core.rules`; this class holds the per-symbol state they need.

Decisions worth knowing:
- A crossed or locked quote (bid >= ask) is rejected: a venue's top-of-book
  message can't legitimately cross. A crossed L2 book is only *flagged*
  (`flag_crossed`): the book must mirror the venue, so the pipeline counts it
  and resyncs the book if it stays crossed.
- Prices and quantities that pass are cached per symbol (text -> sanitized
  text), so the common case is one dict lookup per number, not a parse.
- Tick and step sizes come from `increments(exchange, symbol)`; while a
  symbol's are unknown its grid rules are skipped (and asked again at most
  once a second, by the events' receive times).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec

from raven.config import ValidationConfig
from raven.core import rules
from raven.core.decimals import Increment, Scaled, format_scaled
from raven.model import (
    BookDelta,
    BookSnapshot,
    Candle,
    Event,
    Funding,
    Level,
    Liquidation,
    Quote,
    Status,
    Trade,
)
from raven.types import S_NS

log = logging.getLogger("raven.core.citadel")

Increments = Callable[[str, str], tuple[str, str] | None]  # (exchange, symbol) -> (tick, step)
CACHE_LIMIT = 256  # sanitized numbers remembered per symbol and field before a reset;
# small: each cache is cleared when full, so the hot values come back at once, while
# a large one holds every quantity text ever seen (~100 B each, 50 symbols x 5 caches).
# 512 -> 256: the memory scenario's caches still filled after 5 minutes at 512 (its RSS
# growth), ~4.5 MB less RSS at 256; +0.85% ingest instructions per frame (more misses).
LOOKUP_RETRY_NS = S_NS  # how often to ask again for a symbol's unknown tick and step
_NO_LIMIT = 1 << 62  # a time limit of 0 (off), as a bound no time difference reaches


class Rejected(Exception):
    """Raised inside a check; carries the rule that failed."""

    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        self.detail = detail


class Guard:
    """The citadel's per-(exchange, symbol) state."""

    __slots__ = (
        "band_misses",
        "exchange",
        "ids",
        "lookup_ns",
        "nonnegative",
        "positive",
        "prices",
        "quantities",
        "reference",
        "step",
        "symbol",
        "tick",
        "volumes",
    )

    def __init__(self, exchange: str, symbol: str, id_window: int) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.tick: Increment | None = None
        self.step: Increment | None = None
        self.lookup_ns = -LOOKUP_RETRY_NS  # receive time of the last increments lookup
        self.prices: dict[str, str] = {}  # accepted price text -> sanitized text
        self.quantities: dict[str, str] = {}  # accepted positive quantity -> sanitized
        self.volumes: dict[str, str] = {}  # accepted quantity that may be zero -> sanitized
        # Texts already found to be plain decimals > 0 / >= 0 (kline and mark prices,
        # volumes: no grid rule), so a repeated one costs a set lookup, not a parse.
        self.positive: set[str] = set()
        self.nonnegative: set[str] = set()
        self.reference = 0.0  # last accepted trade price, quote mid or mark; 0: none yet
        self.band_misses = 0  # consecutive band rejections
        self.ids = rules.RecentIds(id_window)

    def set_increments(self, tick: Increment | None, step: Increment | None) -> None:
        self.tick, self.step = tick, step
        self.prices.clear()
        self.quantities.clear()
        self.volumes.clear()


class Citadel:
    def __init__(self, config: ValidationConfig, increments: Increments | None = None) -> None:
        self.config = config
        self.enabled = config.enabled
        self.increments = increments
        self.max_future_ns = int(config.max_future_s * S_NS)
        self.max_past_ns = int(config.max_past_s * S_NS)
        self.band = config.max_price_deviation
        self._future = self.max_future_ns or _NO_LIMIT
        self._past = self.max_past_ns or _NO_LIMIT
        self._guards: dict[str, dict[str, Guard]] = {}
        # Counters the metrics layer reads: (rule, exchange, symbol) -> count.
        self.rejected: dict[tuple[str, str, str], int] = {}
        self.normalized: dict[tuple[str, str, str], int] = {}  # snapped to the grid
        self.flagged: dict[tuple[str, str, str], int] = {}  # crossed books
        self.checked = 0
        self._last_log: dict[tuple[str, str, str], float] = {}
        self._suppressed: dict[tuple[str, str, str], int] = {}
        # Per event type: the whole check (`check` dispatches here; the pipeline
        # calls these directly). Each returns the event, sanitized, or None.
        self.checks: dict[type[Any], Callable[[Any], Any]] = {
            Trade: self.trade,
            Quote: self.quote,
            BookDelta: self.delta,
            BookSnapshot: self.snapshot,
            Candle: self.kline,
            Funding: self.funding,
            Liquidation: self.liquidation,
        }

    # --- entry points -------------------------------------------------------

    def check(self, event: Event) -> Event | None:
        """The event, sanitized, or None when a rule rejects it."""
        if type(event) is Status:
            return event  # Raven's own and the connector's state changes
        return self.checks[type(event)](event)  # type: ignore[no-any-return]

    def _enter(self, event: Any, max_past_ns: int) -> Guard:
        """Count the check, find the symbol's guard, apply the time rule (raises)."""
        self.checked += 1
        try:
            guard = self._guards[event.exchange][event.symbol]
        except KeyError:
            guard = None
        if guard is None or guard.tick is None:  # new, or still without tick and step
            guard = self.guard(event.exchange, event.symbol, event.receive_time)
        t = event.exchange_time
        # The rules.exchange_time test written out for the common case (limits of 0
        # are "off": _NO_LIMIT); the rule's own function names the failure.
        if t > 0 and (
            t - event.receive_time > self._future or event.receive_time - t > max_past_ns
        ):
            past = 0 if max_past_ns == _NO_LIMIT else self.max_past_ns
            problem = rules.exchange_time(t, event.receive_time, self.max_future_ns, past)
            raise Rejected(problem, f"exchange time {t} vs receive time {event.receive_time}")
        return guard

    def flag_crossed(self, exchange: str, symbol: str, bid: str, ask: str) -> None:
        """Count (and log, rate-limited) a crossed or locked L2 book."""
        key = (rules.CROSSED_BOOK, exchange, symbol)
        self.flagged[key] = self.flagged.get(key, 0) + 1
        self._log(key, f"book crossed or locked: best bid {bid} >= best ask {ask}")

    def reject(self, rule: str, exchange: str, symbol: str, detail: str) -> None:
        key = (rule, exchange, symbol)
        self.rejected[key] = self.rejected.get(key, 0) + 1
        self._log(key, detail)

    def guard(self, exchange: str, symbol: str, now_ns: int = 0) -> Guard:
        by_symbol = self._guards.get(exchange)
        if by_symbol is None:
            by_symbol = self._guards[exchange] = {}
        guard = by_symbol.get(symbol)
        if guard is None:
            guard = by_symbol[symbol] = Guard(exchange, symbol, self.config.trade_id_window)
        if guard.tick is None and now_ns - guard.lookup_ns >= LOOKUP_RETRY_NS:
            guard.lookup_ns = now_ns
            self._lookup(guard)
        return guard

    def refresh(self) -> None:
        """Ask again for every symbol's tick and step (after an instruments update)."""
        for by_symbol in self._guards.values():
            for guard in by_symbol.values():
                self._lookup(guard)

    # --- numbers ------------------------------------------------------------

    def _lookup(self, guard: Guard) -> None:
        found = self.increments(guard.exchange, guard.symbol) if self.increments else None
        if found is None:
            return
        tolerance = self.config.grid_tolerance
        try:
            tick, step = Increment(found[0], tolerance), Increment(found[1], tolerance)
        except ValueError as exc:
            log.warning("%s %s: ignoring bad tick/step %s: %s", guard.exchange, guard.symbol,
                        found, exc)  # fmt: skip
            return
        old = (guard.tick.text, guard.step.text) if guard.tick and guard.step else None
        if old != (tick.text, step.text):
            guard.set_increments(tick, step)

    def _price(self, guard: Guard, text: str) -> str:
        out = guard.prices.get(text)
        if out is None:
            out = self._number(guard, text, guard.tick, rules.PRICE_TICK, False)
            _remember(guard.prices, text, out)
        return out

    def _quantity(self, guard: Guard, text: str) -> str:
        out = guard.quantities.get(text)
        if out is None:
            out = self._number(guard, text, guard.step, rules.QUANTITY_STEP, False)
            _remember(guard.quantities, text, out)
        return out

    def _volume(self, guard: Guard, text: str) -> str:
        """A quantity that may be zero (a level removal, a kline's volume)."""
        out = guard.volumes.get(text)
        if out is None:
            out = self._number(guard, text, guard.step, rules.QUANTITY_STEP, True)
            _remember(guard.volumes, text, out)
        return out

    def _number(
        self, guard: Guard, text: str, grid: Increment | None, rule: str, allow_zero: bool
    ) -> str:
        value = rules.positive_finite(text, allow_zero)
        if value is None:
            raise Rejected(rules.POSITIVE_FINITE, f"{text!r} is not a positive decimal")
        snapped = value if grid is None else grid.snap(value)  # rules.on_grid
        if snapped is None:
            raise Rejected(rule, f"{text!r} is off the grid of {grid.text if grid else '?'}")
        if snapped is value:
            return text
        key = (rule, guard.exchange, guard.symbol)
        self.normalized[key] = self.normalized.get(key, 0) + 1
        return _text(snapped)

    def _band(self, guard: Guard, price: float, what: str) -> None:
        if rules.within_band(price, guard.reference, self.band):
            guard.band_misses = 0
            return
        guard.band_misses += 1
        if guard.band_misses < self.config.price_band_reanchor_after:
            raise Rejected(rules.PRICE_BAND, f"{what} {price} is more than {self.band:.0%} "
                           f"from the reference price {guard.reference}")  # fmt: skip
        log.warning("%s %s: %d prices in a row outside the band; %s %s is the new reference",
                    guard.exchange, guard.symbol, guard.band_misses, what, price)  # fmt: skip
        guard.band_misses = 0

    def _levels(self, guard: Guard, levels: tuple[Level, ...], zero: bool) -> tuple[Level, ...]:
        # Hot (every level of every book update): the caches are read inline, and a
        # cached text is never empty, so `or` falls through only on a miss. A cached
        # text is an equal string, not the event's own object: compared by value.
        prices = guard.prices
        qtys = guard.volumes if zero else guard.quantities
        price, qty = self._price, self._volume if zero else self._quantity
        out: list[Level] | None = None
        for i, (p, q) in enumerate(levels):
            sp = prices.get(p) or price(guard, p)
            sq = qtys.get(q) or qty(guard, q)
            if out is not None:
                out.append((sp, sq))
            elif sp != p or sq != q:
                out = list(levels[:i])
                out.append((sp, sq))
        return levels if out is None else tuple(out)

    def _rejected(self, e: Any, rejection: Rejected) -> None:
        self.reject(rejection.rule, e.exchange, e.symbol, rejection.detail)

    # --- per kind: the whole check of one event type --------------------------

    def trade(self, e: Trade) -> Trade | None:
        try:
            guard = self._enter(e, self._past)
            price = guard.prices.get(e.price) or self._price(guard, e.price)
            qty = guard.quantities.get(e.quantity) or self._quantity(guard, e.quantity)
            value = float(price)
            ref = guard.reference  # the band rule inline; _band when outside it
            if ref > 0.0 and self.band > 0.0 and abs(value - ref) > self.band * ref:
                self._band(guard, value, "trade price")
            else:
                guard.band_misses = 0
            if e.trade_id and guard.ids.seen(e.trade_id):
                raise Rejected(rules.DUPLICATE_TRADE, f"trade id {e.trade_id} seen already")
        except Rejected as rejection:
            self._rejected(e, rejection)
            return None
        guard.reference = value
        if price == e.price and qty == e.quantity:
            return e
        return msgspec.structs.replace(e, price=price, quantity=qty)

    def quote(self, e: Quote) -> Quote | None:
        try:
            guard = self._enter(e, self._past)
            prices, qtys = guard.prices, guard.quantities
            bid = prices.get(e.bid_price) or self._price(guard, e.bid_price)
            ask = prices.get(e.ask_price) or self._price(guard, e.ask_price)
            bid_qty = qtys.get(e.bid_quantity) or self._quantity(guard, e.bid_quantity)
            ask_qty = qtys.get(e.ask_quantity) or self._quantity(guard, e.ask_quantity)
            bid_f, ask_f = float(bid), float(ask)
            if bid_f >= ask_f:  # rules.crossed
                raise Rejected(
                    rules.CROSSED_QUOTE, f"quote crossed or locked: bid {bid} >= ask {ask}"
                )
            mid = (bid_f + ask_f) / 2
            ref = guard.reference  # the band rule inline; _band when outside it
            if ref > 0.0 and self.band > 0.0 and abs(mid - ref) > self.band * ref:
                self._band(guard, mid, "quote mid")
            else:
                guard.band_misses = 0
        except Rejected as rejection:
            self._rejected(e, rejection)
            return None
        guard.reference = mid
        if (
            bid == e.bid_price
            and ask == e.ask_price
            and bid_qty == e.bid_quantity
            and (ask_qty == e.ask_quantity)
        ):
            return e
        return msgspec.structs.replace(
            e, bid_price=bid, ask_price=ask, bid_quantity=bid_qty, ask_quantity=ask_qty
        )

    def delta(self, e: BookDelta) -> BookDelta | None:
        try:
            guard = self._enter(e, self._past)
            bids, asks = self._levels(guard, e.bids, True), self._levels(guard, e.asks, True)
        except Rejected as rejection:
            self._rejected(e, rejection)
            return None
        if bids is e.bids and asks is e.asks:
            return e
        return msgspec.structs.replace(e, bids=bids, asks=asks)

    def snapshot(self, e: BookSnapshot) -> BookSnapshot | None:
        try:
            guard = self._enter(e, _NO_LIMIT)  # a snapshot may be old: no past limit
            bids, asks = self._levels(guard, e.bids, False), self._levels(guard, e.asks, False)
        except Rejected as rejection:
            self._rejected(e, rejection)
            return None
        if bids is e.bids and asks is e.asks:
            return e
        return msgspec.structs.replace(e, bids=bids, asks=asks)

    def kline(self, e: Candle) -> Candle | None:
        try:
            guard = self._enter(e, self._past)
            positive, nonnegative = guard.positive, guard.nonnegative
            for text in (e.open, e.high, e.low, e.close):
                if text not in positive:
                    if rules.positive_finite(text) is None:
                        raise Rejected(
                            rules.POSITIVE_FINITE, f"kline price {text!r} is not positive"
                        )
                    _known(positive, text)
            for text in (e.volume, e.quote_volume):
                if text not in nonnegative:
                    if rules.positive_finite(text, allow_zero=True) is None:
                        raise Rejected(
                            rules.POSITIVE_FINITE, f"kline volume {text!r} is not a decimal"
                        )
                    _known(nonnegative, text)
        except Rejected as rejection:
            self._rejected(e, rejection)
            return None
        return e

    def funding(self, e: Funding) -> Funding | None:
        try:
            guard = self._enter(e, self._past)
            if rules.positive_finite(e.mark_price) is None:
                raise Rejected(
                    rules.POSITIVE_FINITE, f"mark price {e.mark_price!r} is not positive"
                )
            for text in (e.index_price, e.estimated_settle_price):
                if rules.positive_finite(text, allow_zero=True) is None:
                    raise Rejected(rules.POSITIVE_FINITE, f"price {text!r} is not a decimal")
            if not rules.finite(e.funding_rate):
                raise Rejected(
                    rules.POSITIVE_FINITE, f"funding rate {e.funding_rate!r} is not finite"
                )
        except Rejected as rejection:
            self._rejected(e, rejection)
            return None
        guard.reference = float(e.mark_price)
        return e

    def liquidation(self, e: Liquidation) -> Liquidation | None:
        try:
            guard = self._enter(e, self._past)
            price, qty = self._price(guard, e.price), self._quantity(guard, e.quantity)
            for text in (e.average_price, e.filled_quantity):
                if rules.positive_finite(text, allow_zero=True) is None:
                    raise Rejected(rules.POSITIVE_FINITE, f"{text!r} is not a decimal")
            self._band(guard, float(price), "liquidation price")
        except Rejected as rejection:
            self._rejected(e, rejection)
            return None
        if price == e.price and qty == e.quantity:
            return e
        return msgspec.structs.replace(e, price=price, quantity=qty)

    # --- logging ------------------------------------------------------------

    def _log(self, key: tuple[str, str, str], detail: str) -> None:
        now = time.monotonic()
        last = self._last_log.get(key)
        if last is not None and now - last < self.config.log_interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last_log[key] = now
        more = self._suppressed.pop(key, 0)
        rule, exchange, symbol = key
        suffix = f" (+{more} more since the last report)" if more else ""
        log.warning("%s %s: %s: %s%s", exchange, symbol, rule, detail, suffix)


def _known(cache: set[str], text: str) -> None:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()  # bounded, as _remember
    cache.add(text)


def _remember(cache: dict[str, str], text: str, out: str) -> None:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()  # a bounded cache: a reset only costs re-checks
    cache[text] = out


def _text(value: Scaled) -> str:
    return format_scaled(*value)
