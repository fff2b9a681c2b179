"""Build and run a connector against any Binance-like peer, given its URLs.

Integration tests use these with the small scripted `Venue` today; pointed
at the full simulator (`sim.ws_url`, `sim.rest_url`) they run unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from raven.config import BinanceFuturesConfig, config_from_dict
from raven.connectors.base import EventSink
from raven.connectors.binance.connector import BinanceFuturesConnector
from raven.connectors.binance.limits import WeightLimiter

# Fast reconnects, no client pings, no periodic work unless a test asks for it.
TEST_DEFAULTS: dict[str, Any] = {
    "reconnect_initial_s": 0.05,
    "reconnect_max_s": 0.2,
    "ping_interval_s": 0,
    "book_refresh_s": 0,
    "exchange_info_refresh_s": 0,
}


def connector_config(
    ws_url: str, rest_url: str, symbols: list[str], streams: list[str], **overrides: Any
) -> BinanceFuturesConfig:
    section = {
        "ws_url": ws_url,
        "rest_url": rest_url,
        "symbols": symbols,
        "streams": streams,
        **TEST_DEFAULTS,
        **overrides,
    }
    return config_from_dict(
        {"exchanges": {"binance_futures": section}}, "test"
    ).exchanges.binance_futures


def make_connector(
    ws_url: str,
    rest_url: str,
    symbols: list[str],
    streams: list[str],
    sink: EventSink,
    limiter: WeightLimiter | None = None,
    **overrides: Any,
) -> BinanceFuturesConnector:
    config = connector_config(ws_url, rest_url, symbols, streams, **overrides)
    return BinanceFuturesConnector(config, sink, limiter=limiter)


@contextlib.asynccontextmanager
async def running(connector: BinanceFuturesConnector) -> AsyncIterator[BinanceFuturesConnector]:
    """Run the connector for the block; a crash inside it fails the test."""
    task = asyncio.create_task(connector.run(), name="connector-under-test")
    try:
        yield connector
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def repeating(
    step: Callable[[], Awaitable[object]], pause_s: float = 0.003
) -> AsyncIterator[None]:
    """Run `step` over and over (a feed the test drives) while the block runs."""

    async def loop() -> None:
        while True:
            await step()
            await asyncio.sleep(pause_s)  # paces the feed only; no test waits on time

    task = asyncio.create_task(loop(), name="test-feed")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
