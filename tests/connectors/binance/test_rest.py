"""The REST client, its weight limiter and circuit breaker against a real loopback peer."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator

import aiohttp
import pytest

from raven.breaker import BreakerState, CircuitBreaker
from raven.connectors.binance.limits import WeightLimiter
from raven.connectors.binance.rest import BinanceRest, RateLimited, RestRejected, RestUnavailable
from raven.connectors.binance.snapshots import SnapshotFetcher
from raven.model import BookSnapshot
from tests.connectors.binance.venue import Scripted, Venue
from tests.helpers import wait_until

EX = "binance_futures"
TOO_MANY = b'{"code":-1003,"msg":"Too many requests; current limit is 2400 per minute."}'


@contextlib.asynccontextmanager
async def client(
    venue: Venue, limiter: WeightLimiter | None = None, breaker: CircuitBreaker | None = None
) -> AsyncIterator[BinanceRest]:
    rest = BinanceRest(
        venue.rest_url, EX, limiter or WeightLimiter(), breaker or CircuitBreaker("rest")
    )
    async with aiohttp.ClientSession() as session:
        rest.session = session
        yield rest


async def test_depth_and_exchange_info(venue: Venue) -> None:
    async with client(venue) as rest:
        snap = await rest.depth("BTCUSDT", 1000)
        info = await rest.exchange_info()
    assert snap.update_id == venue.model.last_update_id("BTCUSDT")
    assert (snap.bids, snap.asks) == venue.model.book_at("BTCUSDT", snap.update_id)
    assert snap.depth == 0
    assert [s.symbol for s in info.symbols] == ["BTCUSDT", "ETHUSDT"]
    assert rest.limiter.stats.weight_sent == 21
    assert rest.limiter.stats.used == 21, "the venue's count, from the header"


async def test_a_429_is_backed_off_for_retry_after(venue: Venue) -> None:
    venue.rest_script.append(Scripted(429, TOO_MANY, {"Retry-After": "1"}))
    async with client(venue) as rest:
        with pytest.raises(RateLimited) as rejected:
            await rest.depth("BTCUSDT", 1000)
        assert 0 < rejected.value.retry_in <= 1.0
        snap = await rest.depth("BTCUSDT", 1000)  # waits out the back-off first
    first, second = venue.rest_calls
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.95  # nothing went out during Retry-After
    assert snap.update_id == venue.model.last_update_id("BTCUSDT")
    assert rest.limiter.stats.rate_limited == 1
    assert rest.breaker.state is BreakerState.CLOSED, "a 429 is not the venue failing"


async def test_a_418_ban_stops_every_rest_call_until_it_ends(venue: Venue) -> None:
    banned = b'{"code":-1003,"msg":"Way too many requests; IP banned"}'
    venue.rest_script.append(Scripted(418, banned, {"Retry-After": "1"}))
    async with client(venue) as rest:
        with pytest.raises(RateLimited):
            await rest.exchange_info()
        banned_at = venue.rest_calls[0].at
        results = await asyncio.gather(
            rest.exchange_info(), rest.depth("BTCUSDT", 5), rest.depth("ETHUSDT", 1000)
        )
    assert isinstance(results[2], BookSnapshot)
    assert len(venue.rest_calls) == 4
    assert all(call.at - banned_at >= 0.95 for call in venue.rest_calls[1:])
    assert rest.limiter.stats.bans == 1


async def test_the_venues_weight_count_holds_calls_until_the_next_window(venue: Venue) -> None:
    venue.rest_script.append(Scripted(200, b"{}", {"X-MBX-USED-WEIGHT-1M": "2390"}))
    limiter = WeightLimiter(2400, 240, window_s=1.0, skew_s=0.05)
    async with client(venue, limiter) as rest:
        await rest.exchange_info()
        await rest.depth("BTCUSDT", 1000)
    first, second = venue.rest_calls
    assert math.floor(second.at) > math.floor(first.at), "the spent window was waited out"
    assert limiter.stats.waits >= 1


async def test_the_breaker_opens_after_repeated_failures_then_probes(venue: Venue) -> None:
    for _ in range(3):
        venue.rest_script.append(Scripted(503, b'{"code":-1001,"msg":"Internal error"}'))
    breaker = CircuitBreaker("rest", failure_threshold=3, reset_timeout_s=0.3)
    async with client(venue, breaker=breaker) as rest:
        for _ in range(3):
            with pytest.raises(RestUnavailable, match="503"):
                await rest.exchange_info()
        opened = breaker.state
        assert opened is BreakerState.OPEN
        with pytest.raises(RestUnavailable, match="circuit open") as held:
            await rest.exchange_info()
        assert held.value.retry_in > 0
        assert len(venue.rest_calls) == 3, "an open breaker sends nothing"
        await wait_until(lambda: breaker.seconds_until_probe() == 0, what="the probe time")
        await rest.exchange_info()
    assert breaker.state is BreakerState.CLOSED
    assert len(venue.rest_calls) == 4


async def test_a_bad_request_is_rejected_not_retried_as_an_outage(venue: Venue) -> None:
    venue.rest_script.append(Scripted(400, b'{"code":-4021,"msg":"7 is not valid depth limit"}'))
    async with client(venue) as rest:
        with pytest.raises(RestRejected, match="-4021 7 is not valid depth limit"):
            await rest.depth("BTCUSDT", 1000)
        assert rest.breaker.consecutive_failures == 0


async def test_an_unreachable_venue_is_a_failure_for_the_breaker() -> None:
    venue = Venue()
    await venue.start()
    url = venue.rest_url
    await venue.stop()  # nothing listens there now
    rest = BinanceRest(url, EX, WeightLimiter(), CircuitBreaker("rest"))
    async with aiohttp.ClientSession() as session:
        rest.session = session
        with pytest.raises(RestUnavailable, match="exchangeInfo"):
            await rest.exchange_info()
    assert rest.breaker.consecutive_failures == 1


async def test_a_100_symbol_cold_start_is_spread_under_the_weight_limit() -> None:
    symbols = tuple(f"S{i:03d}USDT" for i in range(100))
    # the venue's rule shrunk to 1 s windows of 1000 weight; 100 snapshots weigh 2000
    venue = Venue(symbols, weight_limit=1000, weight_window_s=1.0)
    await venue.start()
    limiter = WeightLimiter(1000, 40, window_s=1.0, skew_s=0.05)  # reserve: 2 in flight x 20
    delivered: list[BookSnapshot] = []
    try:
        async with client(venue, limiter) as rest:
            fetcher = SnapshotFetcher(rest, delivered.append, symbols, 1000, concurrency=2)
            for symbol in symbols:
                fetcher.request(symbol)
                fetcher.request(symbol)  # asked twice: fetched once
            task = asyncio.create_task(fetcher.run())
            try:
                await wait_until(lambda: len(delivered) == 100, timeout=30, what="100 snapshots")
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        await venue.stop()
    assert sorted(s.symbol for s in delivered) == list(symbols)
    assert venue.over_limit == 0
    assert max(venue.weight_used.values()) <= 1000
    assert len(venue.weight_used) >= 3, "spread over several windows"
    assert (fetcher.stats.requested, fetcher.stats.fetched, fetcher.stats.failures) == (100, 100, 0)
