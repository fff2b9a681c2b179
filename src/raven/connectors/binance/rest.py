"""The Binance USD-M REST client: exchangeInfo and depth snapshots, within limits.

Every call goes through the `WeightLimiter` (waits until its weight fits,
and not at all during a 429 back-off or a 418 ban) and the shared
`CircuitBreaker` (stop calling a venue that keeps failing; probe it later).
Errors are typed so callers know whether to retry:

    RestError
     +-- RestUnavailable   network error, timeout, 5xx, malformed body, breaker open
     +-- RateLimited       429 or 418: the limiter now holds every call back
     +-- RestRejected      any other 4xx: the request itself is wrong

`retry_in` on an error is the soonest a retry makes sense (0: the caller's
own back-off decides).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

import aiohttp
import msgspec

from raven.breaker import CircuitBreaker
from raven.connectors.binance import parse, wire
from raven.connectors.binance.limits import (
    DEPTH_WEIGHTS,
    EXCHANGE_INFO_WEIGHT,
    WEIGHT_HEADER,
    WeightLimiter,
)
from raven.model import BookSnapshot
from raven.ops import tracing

log = logging.getLogger("raven.connectors.binance.rest")


class RestError(Exception):
    def __init__(self, message: str, status: int = 0, retry_in: float = 0.0) -> None:
        super().__init__(message)
        self.status = status
        self.retry_in = retry_in


class RestUnavailable(RestError):
    pass


class RateLimited(RestError):
    pass


class RestRejected(RestError):
    pass


class BinanceRest:
    """REST calls of one connector; `session` is set while the connector runs."""

    def __init__(
        self,
        base_url: str,
        exchange: str,
        limiter: WeightLimiter,
        breaker: CircuitBreaker,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.exchange = exchange
        self.limiter = limiter
        self.breaker = breaker
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.clock = clock  # wall clock: the venue's windows are UTC minutes
        self.sleep = sleep
        self.session: aiohttp.ClientSession | None = None

    async def exchange_info(self) -> wire.ExchangeInfo:
        body, _ = await self.get("/fapi/v1/exchangeInfo", {}, EXCHANGE_INFO_WEIGHT)
        try:
            return wire.exchange_info_decoder.decode(body)
        except msgspec.DecodeError as exc:
            self.breaker.record_failure(f"exchangeInfo: {exc}")
            raise RestUnavailable(f"malformed exchangeInfo: {exc}") from None

    async def depth(self, symbol: str, limit: int) -> BookSnapshot:
        """`GET /fapi/v1/depth` as a `BookSnapshot` (depth 0, update_id = lastUpdateId)."""
        weight = DEPTH_WEIGHTS[limit]
        params = {"symbol": symbol, "limit": str(limit)}
        body, received = await self.get("/fapi/v1/depth", params, weight)
        try:
            snapshot = wire.depth_snapshot_decoder.decode(body)
        except msgspec.DecodeError as exc:
            self.breaker.record_failure(f"depth {symbol}: {exc}")
            raise RestUnavailable(f"malformed depth snapshot of {symbol}: {exc}") from None
        return parse.depth_snapshot(snapshot, symbol, self.exchange, received)

    async def get(self, path: str, params: Mapping[str, str], weight: int) -> tuple[bytes, int]:
        """(body, receive time ns) of a 2xx response to `GET path`; RestError otherwise."""
        session = self.session
        if session is None:
            raise RestUnavailable("the REST client is not running")
        await self._wait_for_weight(path, weight)
        if not self.breaker.allow():
            retry_in = max(self.breaker.seconds_until_probe(), 0.1)
            raise RestUnavailable(f"circuit open: {self.breaker.last_error}", retry_in=retry_in)
        # A span per request (no-op unless tracing is on); errors end it as failed.
        with tracing.span("rest.get", path=path, weight=weight) as span:
            try:
                async with session.get(
                    self.base_url + path, params=params, timeout=self.timeout
                ) as resp:
                    body = await resp.read()
                    received = time.time_ns()
                    status = resp.status
                    headers = resp.headers
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                detail = f"GET {path}: {exc or type(exc).__name__}"
                self.breaker.record_failure(detail)
                raise RestUnavailable(detail) from None
            if span is not None:
                span.set_attribute("http.status_code", status)
            self._check(path, status, headers, body)
        return body, received

    async def _wait_for_weight(self, path: str, weight: int) -> None:
        while (wait := self.limiter.acquire(weight, self.clock())) > 0:
            if wait >= 1.0:
                log.info("GET %s waits %.1f s for request weight", path, wait)
            await self.sleep(wait)

    def _check(self, path: str, status: int, headers: Mapping[str, str], body: bytes) -> None:
        used = _int_or_none(headers.get(WEIGHT_HEADER))
        retry_after = _float_or_none(headers.get("Retry-After"))
        error = _error_of(body) if status >= 400 else wire.RestError()
        self.limiter.on_response(status, used, retry_after, self.clock(), error.msg)
        detail = f"GET {path}: HTTP {status} {error.code} {error.msg}".rstrip()
        if status >= 500:
            self.breaker.record_failure(detail)
            raise RestUnavailable(detail, status)
        self.breaker.record_success()  # the venue answered; 4xx are about the request
        if status in (418, 429):
            stats = self.limiter.stats
            until = max(stats.banned_until, stats.backoff_until)
            log.warning("%s: REST held back for %.1f s", detail, until - self.clock())
            raise RateLimited(detail, status, retry_in=max(until - self.clock(), 0.0))
        if status >= 400:
            raise RestRejected(detail, status)


def _error_of(body: bytes) -> wire.RestError:
    try:
        return wire.rest_error_decoder.decode(body)
    except msgspec.DecodeError:
        return wire.RestError(0, body[:200].decode("utf-8", "replace"))


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _float_or_none(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None  # an HTTP date: the limiter falls back to its own rule
