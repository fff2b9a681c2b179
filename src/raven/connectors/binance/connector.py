"""The Binance USD-M Futures connector: every part, assembled and run.

    exchangeInfo (REST) -> instruments            (before any market data flows)
    WebSocket connections (one task each) -> FrameDecoder -> events
        diff depth -> BookSync -> BookSnapshot / BookDelta / Status -> sink
        everything else -----------------------------------------------> sink
    BookSync.want_snapshot -> SnapshotFetcher -> REST (WeightLimiter, CircuitBreaker)
                                             -> BookSync.on_snapshot

What the metrics and health layers read (plain attributes, updated in place):
`connections[i].stats` (`ConnectionStats`), `connections[i].decoder.stats`
(`DecodeStats`), `books.stats[symbol]` (`BookStats`), `limiter.stats`
(`WeightStats`), `breaker`, `snapshots.stats` (`SnapshotStats`), and
`instruments` (symbol -> `Instrument`).
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from raven.breaker import CircuitBreaker
from raven.config import BinanceFuturesConfig
from raven.connectors.backoff import exponential_backoff
from raven.connectors.base import EventSink
from raven.connectors.binance import parse, wire
from raven.connectors.binance.book_sync import BookSync
from raven.connectors.binance.connection import EXCHANGE, Connection
from raven.connectors.binance.limits import DEPTH_WEIGHTS, WeightLimiter
from raven.connectors.binance.rest import BinanceRest, RestError
from raven.connectors.binance.snapshots import SnapshotFetcher, refresh_books
from raven.connectors.binance.streams import Stream, StreamType, plan_connections, plan_streams
from raven.model import BookSnapshot, Instrument

log = logging.getLogger("raven.connectors.binance")

# Periodic refreshes are optional: they may use at most this share of the REST
# weight budget, so a stale book's resync (or a cold start) never waits for them.
REFRESH_WEIGHT_SHARE = 0.5


class BinanceFuturesConnector:
    """All connections, books and REST calls of the configured Binance USD-M streams."""

    name = EXCHANGE

    def __init__(
        self,
        config: BinanceFuturesConfig,
        sink: EventSink,
        *,
        limiter: WeightLimiter | None = None,
    ) -> None:
        self.config = config
        self.sink = sink
        streams = plan_streams(config.symbols, config.streams)
        book_symbols = _book_symbols(streams)
        _check_busy_streams(config.busy_streams)
        self.instruments: dict[str, Instrument] = {}  # filled before market data flows
        self.limiter = limiter or WeightLimiter(
            config.rest_weight_limit, config.rest_weight_reserve
        )
        self.breaker = CircuitBreaker(
            f"{EXCHANGE}-rest", config.rest_failure_threshold, config.rest_reset_timeout_s
        )
        self.rest = BinanceRest(
            config.rest_url, EXCHANGE, self.limiter, self.breaker, config.rest_timeout_s
        )
        self.snapshots = SnapshotFetcher(
            self.rest, self._on_snapshot, book_symbols, config.snapshot_limit,
            config.snapshot_concurrency, config.reconnect_initial_s, config.reconnect_max_s,
        )  # fmt: skip
        self.books = BookSync(
            EXCHANGE, book_symbols, sink, self.snapshots.request, config.book_buffer_limit
        )
        self.connections: list[Connection] = []
        counts: dict[str, int] = {}
        for route, chunk in plan_connections(streams, config.max_streams_per_connection):
            n = counts[route.value] = counts.get(route.value, -1) + 1
            label = f"{EXCHANGE}/{route.value}#{n}"
            self.connections.append(Connection(label, route, chunk, config, sink, self.books))

    def request_resync(self, symbol: str, reason: str) -> None:
        if symbol not in self.books.stats:
            log.warning("resync of %s requested (%s): it has no diff depth stream", symbol, reason)
            return
        log.warning("resync of %s requested: %s", symbol, reason)
        self.books.mark_stale(symbol, f"resync requested: {reason}")

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self.rest.session = session
            try:
                await self._load_instruments()
                async with asyncio.TaskGroup() as group:
                    for connection in self.connections:
                        group.create_task(connection.run(session), name=connection.label)
                    self._start_books(group)
                    if self.config.exchange_info_refresh_s > 0:
                        group.create_task(self._refresh_instruments(), name="exchange-info")
            finally:
                self.rest.session = None

    def _start_books(self, group: asyncio.TaskGroup) -> None:
        symbols = list(self.books.stats)
        if not symbols:
            return
        group.create_task(self.snapshots.run(), name="snapshots")
        if self.config.book_refresh_s > 0:
            refresh = refresh_books(symbols, self._refresh, self.config.book_refresh_s)
            group.create_task(refresh, name="book-refresh")

    def _refresh(self, symbol: str) -> bool:
        """A periodic refresh of `symbol`'s book, unless the weight is better kept."""
        weight = DEPTH_WEIGHTS[self.config.snapshot_limit]
        if not self.limiter.can_spare(weight, REFRESH_WEIGHT_SHARE, self.rest.clock()):
            self.snapshots.stats.refreshes_skipped += 1
            return False
        return self.books.refresh(symbol)

    def _on_snapshot(self, snapshot: BookSnapshot) -> None:
        self.books.on_snapshot(snapshot)

    async def _load_instruments(self) -> None:
        """exchangeInfo, retried until it comes: tick and step sizes come first."""
        delays = exponential_backoff(self.config.reconnect_initial_s, self.config.reconnect_max_s)
        while True:
            try:
                info = await self.rest.exchange_info()
            except RestError as exc:
                delay = max(exc.retry_in, next(delays))
                log.warning("exchangeInfo failed (%s); retry in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            self._apply_exchange_info(info)
            return

    async def _refresh_instruments(self) -> None:
        while True:
            await asyncio.sleep(self.config.exchange_info_refresh_s)
            try:
                self._apply_exchange_info(await self.rest.exchange_info())
            except RestError as exc:
                log.warning("exchangeInfo refresh failed (%s); keeping the last one", exc)

    def _apply_exchange_info(self, info: wire.ExchangeInfo) -> None:
        listed = parse.instruments(info, EXCHANGE)
        limit = parse.request_weight_limit(info)
        if limit is not None:
            self.limiter.set_limit(limit)
        missing = [s for s in self.config.symbols if s.upper() not in listed]
        if missing:
            log.error(
                "symbols not listed by the venue (their streams stay silent): %s",
                ", ".join(missing),
            )
            for connection in self.connections:
                connection.unwatch(s.upper() for s in missing)
        # Updated in place: whoever holds the dict sees the new sizes.
        for symbol in self.config.symbols:
            instrument = listed.get(symbol.upper())
            if instrument is not None:
                self.instruments[instrument.symbol] = instrument


def _book_symbols(streams: list[Stream]) -> list[str]:
    """Symbols with a diff depth stream; one such stream per symbol (their ids differ)."""
    diff = [s for s in streams if s.type is StreamType.DEPTH_DIFF]
    suffixes = sorted({s.suffix for s in diff})
    if len(suffixes) > 1:
        raise ValueError(
            f"streams name more than one diff depth stream ({', '.join(suffixes)}); "
            "a book follows exactly one"
        )
    return [s.symbol for s in diff]


def _check_busy_streams(names: tuple[str, ...]) -> None:
    known = {kind.value for kind in StreamType}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(
            f"busy_streams: unknown stream type(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(known))}"
        )
