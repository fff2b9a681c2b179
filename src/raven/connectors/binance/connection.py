"""The Binance USD-M connector: WebSocket connections that reconnect forever.

Streams are grouped by route and spread over as many connections as the
per-connection stream limit needs. Each connection is an owned task that
connects, decodes frames with a `FrameDecoder`, hands events to the sink and
reconnects with capped exponential backoff when the connection drops. One
broken connection never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import aiohttp

from raven.config import BinanceFuturesConfig
from raven.connectors.backoff import exponential_backoff
from raven.connectors.base import EventSink
from raven.connectors.binance import wire
from raven.connectors.binance.decode import FrameDecoder
from raven.connectors.binance.streams import Route, Stream, combined_url, plan_streams
from raven.model import Status
from raven.ops import tracing
from raven.types import StatusKind

log = logging.getLogger("raven.connectors.binance")

EXCHANGE = "binance_futures"


class Connection:
    """One WebSocket connection carrying a fixed set of streams on one route."""

    def __init__(
        self,
        label: str,
        url: str,
        streams: list[Stream],
        config: BinanceFuturesConfig,
        sink: EventSink,
    ) -> None:
        self.label = label
        self.url = url
        self.streams = streams
        self.config = config
        self.sink = sink
        self.decoder = FrameDecoder(EXCHANGE, streams, config.max_frame_bytes)
        self.connects = 0
        self.failures = 0
        self.connected = False
        self.last_message_ns = 0

    async def run(self, session: aiohttp.ClientSession) -> None:
        delays = self._delays()
        while True:
            try:
                await self._session(session)
                log.info("%s: connection closed by the server", self.label)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                self.failures += 1
                log.warning("%s: connection failed: %s", self.label, exc or type(exc).__name__)
            if self.connected:
                self.connected = False
                self._status(StatusKind.FEED_DISCONNECTED, "connection lost; reconnecting")
                delays = self._delays()
            delay = next(delays)
            log.info("%s: reconnecting in %.2f s", self.label, delay)
            await asyncio.sleep(delay)

    def _delays(self) -> Iterator[float]:
        return exponential_backoff(self.config.reconnect_initial_s, self.config.reconnect_max_s)

    async def _session(self, session: aiohttp.ClientSession) -> None:
        # A span per connection attempt (no-op unless tracing is on).
        with tracing.span("connector.connect", connection=self.label, reconnect=self.connects > 0):
            ws = await session.ws_connect(
                self.url,
                autoping=True,
                max_msg_size=self.config.max_frame_bytes * 2,
                decode_text=False,
            )
        async with ws:
            self.connects += 1
            self.connected = True
            log.info("%s: connected (%d streams)", self.label, len(self.streams))
            self._status(StatusKind.FEED_CONNECTED, f"{len(self.streams)} streams")
            sink = self.sink
            decode = self.decoder.decode
            async for msg in ws:
                received = time.time_ns()
                if msg.type is aiohttp.WSMsgType.TEXT or msg.type is aiohttp.WSMsgType.BINARY:
                    self.last_message_ns = received
                    out = decode(msg.data, received)
                    if isinstance(out, wire.Reply):
                        continue
                    for event in out:
                        sink(event)
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    raise aiohttp.ClientError(f"websocket error: {ws.exception()}")

    def _status(self, kind: StatusKind, detail: str) -> None:
        now = time.time_ns()
        self.sink(Status(EXCHANGE, "", kind, f"{self.label}: {detail}", now, now))


class BinanceFuturesConnector:
    """All connections of the configured Binance USD-M streams."""

    name = EXCHANGE

    def __init__(self, config: BinanceFuturesConfig, sink: EventSink) -> None:
        self.config = config
        self.connections = _plan_connections(config, sink)

    def request_resync(self, symbol: str, reason: str) -> None:
        log.warning("resync of %s requested (%s): no order book streams yet", symbol, reason)

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            asyncio.TaskGroup() as group,
        ):
            for connection in self.connections:
                group.create_task(connection.run(session), name=connection.label)


def _plan_connections(config: BinanceFuturesConfig, sink: EventSink) -> list[Connection]:
    streams = plan_streams(config.symbols, config.streams)
    connections = []
    for route in Route:
        routed = [s for s in streams if s.route is route]
        limit = config.max_streams_per_connection
        for start in range(0, len(routed), limit):
            chunk = routed[start : start + limit]
            label = f"{EXCHANGE}/{route.value}#{start // limit}"
            url = combined_url(config.ws_url, route, [s.name for s in chunk])
            connections.append(Connection(label, url, chunk, config, sink))
    return connections
