"""The simulator's REST face: `/fapi/v1/depth`, `exchangeInfo`, `klines`,
`premiumIndex`, `fundingRate`, with the venue's weights and errors.

Every request passes one guard: an injected delay, an injected 429, then
the weight limiter (`limits.py`); every answer carries
`X-MBX-USED-WEIGHT-1M`. The data come from a `RestSource`: the live market
model (`LiveRest`) or a replayed capture (`replay.ReplayRest`). The last
requests are remembered (`RestApi.requests`: arrival time, path, status) so
tests can check a client's back-off.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec
from aiohttp import web

from raven.connectors.binance import wire
from raven.sim.instruments import instrument
from raven.sim.klines import INTERVALS
from raven.sim.limits import RestLimiter, Verdict
from raven.sim.market import MarketModel
from raven.sim.payloads import best_first
from raven.sim.stats import SimStats

_encode = msgspec.json.encode
DEPTH_WEIGHTS = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}
KLINES_MAX = 1500
FUNDING_MAX = 1000
RECORD_REQUESTS = 10_000  # REST requests remembered for tests (`RestApi.requests`)


class RestError(Exception):
    """An error answer: HTTP status and the venue's {"code", "msg"}."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


class RestSource(Protocol):
    """Where REST answers come from (live model or replayed capture)."""

    symbols: tuple[str, ...]

    def depth(self, symbol: str, limit: int, now_ms: int) -> bytes: ...
    def exchange_info(self, weight_limit: int, now_ms: int) -> bytes: ...
    def klines(
        self,
        symbol: str,
        interval: str,
        start: int | None,
        end: int | None,
        limit: int,
        now_ms: int,
    ) -> bytes: ...
    def premium_index(self, symbol: str | None, now_ms: int) -> bytes: ...
    def funding_rate(
        self, symbol: str | None, start: int | None, end: int | None, limit: int, now_ms: int
    ) -> bytes: ...


class RestFaults(msgspec.Struct):
    """Injected REST trouble (see `faults.py`)."""

    delay_s: float = 0.0
    delay_left: int = 0  # requests still to delay; -1: until cleared
    force_429_left: int = 0
    retry_after_s: float = 0.0  # Retry-After of a forced 429 (0: to the next minute, as the venue)


class RestRecord(msgspec.Struct, frozen=True, gc=False):
    """One REST request as the simulator saw it."""

    at: float  # time.time() on arrival (before any injected delay)
    path: str
    symbol: str
    status: int


def depth_weight(limit: int) -> int:
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


def klines_weight(limit: int) -> int:
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def _int(query: Any, name: str, default: int | None = None) -> int | None:
    text = query.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or len(text) > 20:
        legal = "'^[0-9]{1,20}$'"
        raise RestError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is {legal}."
        )
    return int(text)


def _symbol(query: Any, source: RestSource, required: bool = True) -> str | None:
    symbol = query.get("symbol")
    if not symbol:
        if required:
            raise RestError(
                -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            )
        return None
    if symbol not in source.symbols:
        raise RestError(-1121, "Invalid symbol.")
    return str(symbol)


Handler = Callable[[web.Request], Awaitable[web.Response]]


class RestApi:
    def __init__(
        self, source: RestSource, limiter: RestLimiter, stats: SimStats, weight_limit: int
    ) -> None:
        self.source = source
        self.limiter = limiter
        self.stats = stats
        self.weight_limit = weight_limit
        self.faults = RestFaults()
        self.requests: collections.deque[RestRecord] = collections.deque(maxlen=RECORD_REQUESTS)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/fapi/v1/depth", self.depth),
            web.get("/fapi/v1/exchangeInfo", self.exchange_info),
            web.get("/fapi/v1/klines", self.klines),
            web.get("/fapi/v1/premiumIndex", self.premium_index),
            web.get("/fapi/v1/fundingRate", self.funding_rate),
        ]

    async def _answer(
        self, request: web.Request, weight: int, body: Callable[[int], bytes]
    ) -> web.Response:
        """The guard, then `body(now_ms)` or the error it raises."""
        self.stats.rest_requests += 1
        arrived = time.time()
        response = await self._guarded(request, weight, body)
        symbol = request.query.get("symbol", "")
        self.requests.append(RestRecord(arrived, request.path, symbol, response.status))
        return response

    async def _guarded(
        self, request: web.Request, weight: int, body: Callable[[int], bytes]
    ) -> web.Response:
        await self._delay()
        ip = request.remote or "unknown"
        if self.faults.force_429_left:
            self.faults.force_429_left -= 1
            retry_after = math.ceil(self.faults.retry_after_s) or self.limiter.retry_after()
            verdict = Verdict(429, self.limiter.used(ip), retry_after)
        else:
            verdict = self.limiter.admit(ip, weight)
        if verdict.status != 200:
            return self._refuse(ip, verdict)
        headers = {"X-MBX-USED-WEIGHT-1M": str(verdict.used)}
        try:
            data = body(int(self.limiter.clock.time() * 1000))
        except RestError as exc:
            return _json(_encode({"code": exc.code, "msg": exc.msg}), exc.status, headers)
        return _json(data, 200, headers)

    async def _delay(self) -> None:
        faults = self.faults
        if faults.delay_left:
            if faults.delay_left > 0:
                faults.delay_left -= 1
            self.stats.rest_delayed += 1
            await asyncio.sleep(faults.delay_s)

    def _refuse(self, ip: str, verdict: Verdict) -> web.Response:
        headers = {
            "X-MBX-USED-WEIGHT-1M": str(verdict.used),
            "Retry-After": str(verdict.retry_after),
        }
        if verdict.status == 418:
            self.stats.rest_418 += 1
            msg = (
                f"Way too many requests; IP({ip}) banned until {verdict.banned_until_ms}. "
                "Please use the websocket for live updates to avoid bans."
            )
        else:
            self.stats.rest_429 += 1
            msg = (
                f"Too many requests; current limit of IP({ip}) is {self.weight_limit} requests"
                " per minute. Please use the websocket for live updates to avoid polling the API."
            )
        return _json(_encode({"code": -1003, "msg": msg}), verdict.status, headers)

    # --- endpoints ---------------------------------------------------------

    async def depth(self, request: web.Request) -> web.Response:
        query = request.query
        text = query.get("limit", "500")
        limit = int(text) if text.isdigit() and len(text) < 10 else 0
        weight = depth_weight(limit) if limit else 2

        def body(now_ms: int) -> bytes:
            symbol = _symbol(query, self.source)
            assert symbol is not None
            if limit not in DEPTH_WEIGHTS:
                raise RestError(-4021, f"{text} is not valid depth limit")
            return self.source.depth(symbol, limit, now_ms)

        return await self._answer(request, weight, body)

    async def exchange_info(self, request: web.Request) -> web.Response:
        return await self._answer(
            request, 1, lambda now: self.source.exchange_info(self.weight_limit, now)
        )

    async def klines(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            limit = _int(query, "limit", 500) or 500
        except RestError:
            limit = 500

        def body(now_ms: int) -> bytes:
            symbol = _symbol(query, self.source)
            assert symbol is not None
            interval = query.get("interval", "")
            if interval not in INTERVALS:
                raise RestError(-1120, "Invalid interval.")
            count = _int(query, "limit", 500) or 500
            if count > KLINES_MAX:
                raise RestError(-1130, "Data sent for parameter 'limit' is not valid.")
            start, end = _int(query, "startTime"), _int(query, "endTime")
            return self.source.klines(symbol, interval, start, end, count, now_ms)

        return await self._answer(request, klines_weight(limit), body)

    async def premium_index(self, request: web.Request) -> web.Response:
        query = request.query
        weight = 1 if query.get("symbol") else 10
        return await self._answer(
            request,
            weight,
            lambda now: self.source.premium_index(_symbol(query, self.source, False), now),
        )

    async def funding_rate(self, request: web.Request) -> web.Response:
        query = request.query

        def body(now_ms: int) -> bytes:
            symbol = _symbol(query, self.source, required=False)
            limit = _int(query, "limit", 100) or 100
            if limit > FUNDING_MAX:
                raise RestError(-1130, "Data sent for parameter 'limit' is not valid.")
            start, end = _int(query, "startTime"), _int(query, "endTime")
            return self.source.funding_rate(symbol, start, end, limit, now_ms)

        return await self._answer(request, 1, body)


def _json(body: bytes, status: int, headers: dict[str, str]) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


class LiveRest:
    """REST answers from the live market model."""

    def __init__(self, model: MarketModel) -> None:
        self.model = model
        self.symbols = model.symbols

    def depth(self, symbol: str, limit: int, now_ms: int) -> bytes:
        state = self.model.states[symbol]
        book = state.book
        bids, asks = book.top(limit)
        changed = book.log[-1].time_ms if book.log else now_ms
        snapshot = wire.DepthSnapshot(
            lastUpdateId=book.last_id,
            E=now_ms,
            T=changed,
            bids=best_first(state.inst, bids),
            asks=best_first(state.inst, asks),
        )
        return _encode(snapshot)

    def exchange_info(self, weight_limit: int, now_ms: int) -> bytes:
        return exchange_info(self.symbols, weight_limit, now_ms)

    def klines(
        self,
        symbol: str,
        interval: str,
        start: int | None,
        end: int | None,
        limit: int,
        now_ms: int,
    ) -> bytes:
        store = self.model.states[symbol].klines
        bars = store.history(interval, start, end, limit, now_ms)
        return _encode([store.row(bar) for bar in bars])

    def premium_index(self, symbol: str | None, now_ms: int) -> bytes:
        states = self.model.states
        if symbol is not None:
            return _encode(states[symbol].funding.premium_index(now_ms))
        return _encode([s.funding.premium_index(now_ms) for s in states.values()])

    def funding_rate(
        self, symbol: str | None, start: int | None, end: int | None, limit: int, now_ms: int
    ) -> bytes:
        states = self.model.states
        chosen = [states[symbol]] if symbol is not None else list(states.values())
        rows = [r for s in chosen for r in s.funding.history(start, end, now_ms)]
        rows.sort(key=lambda r: (r.fundingTime, r.symbol))
        return _encode(rows[:limit] if start is not None else rows[-limit:])


def exchange_info(
    symbols: tuple[str, ...],
    weight_limit: int,
    now_ms: int,
    ticks: dict[str, tuple[str, str]] | None = None,
) -> bytes:
    """`GET /fapi/v1/exchangeInfo`; `ticks` overrides (tickSize, stepSize) per symbol."""
    body = {
        "timezone": "UTC",
        "serverTime": now_ms,
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": weight_limit,
            },
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
        ],
        "exchangeFilters": [],
        "symbols": [_symbol_info(s, (ticks or {}).get(s)) for s in symbols],
    }
    return _encode(body)


def _symbol_info(symbol: str, ticks: tuple[str, str] | None) -> dict[str, Any]:
    inst = instrument(symbol)
    tick, step = ticks or (inst.tick_size, inst.step_size)
    return {
        "symbol": symbol,
        "pair": symbol,
        "contractType": "PERPETUAL",
        "status": "TRADING",
        "baseAsset": symbol.removesuffix("USDT"),
        "quoteAsset": "USDT",
        "pricePrecision": inst.price_decimals,
        "quantityPrecision": inst.qty_decimals,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": tick,
                "maxPrice": inst.price(10 ** (inst.price_decimals + 7)),
                "tickSize": tick,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": step,
                "maxQty": inst.qty(10 ** (inst.qty_decimals + 6)),
                "stepSize": step,
            },
            {"filterType": "MIN_NOTIONAL", "notional": "5"},
        ],
    }
