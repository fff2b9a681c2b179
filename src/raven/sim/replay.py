"""Serving a capture file back over the venue's protocol.

`ReplayFeed` plays the recorded stream frames, byte for byte, in their
recorded order: at the recorded pace times `speed`, or (speed 0, "max") as
fast as the slowest subscriber reads, never overflowing a queue. It starts
when the feed is enabled AND a client has subscribed to a replayed stream,
after a short grace period so a client's other connections get in too.
The stream names in the file are the streams a client can subscribe to.

`ReplayRest` answers REST from the recorded answers: `/fapi/v1/depth` with
the symbol's latest recorded snapshot at the replay position (trimmed to
the asked limit), `exchangeInfo` as recorded (or built with tick and step
sizes inferred from the recorded prices), other endpoints with the latest
recorded answer for the same symbol (and interval).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import msgspec

from raven.connectors.binance import wire
from raven.connectors.binance.streams import Route
from raven.sim import rest
from raven.sim.capture import Capture, RestRecord
from raven.sim.hub import Hub
from raven.sim.instruments import fmt, units
from raven.sim.names import route_of
from raven.sim.stats import SimStats

BACKPRESSURE_EVERY = 256  # frames between queue checks at max speed
_BOTH = frozenset(Route)


class ReplayFeed:
    def __init__(
        self,
        capture: Capture,
        hub: Hub,
        speed: float,
        grace_s: float,
        enabled: asyncio.Event,
        stats: SimStats,
    ) -> None:
        self.frames = [f for f in capture.frames if f.stream]
        self.hub = hub
        self.speed = speed
        self.grace_s = grace_s
        self.enabled = enabled
        self.stats = stats
        self.position_ns = self.frames[0].ns if self.frames else 0
        self.finished = asyncio.Event()
        routes = {name: route_of(name) for name in capture.streams}
        self.routes = {n: frozenset({r}) if r else _BOTH for n, r in routes.items()}

    def router(self, name: str) -> frozenset[Route]:
        """Replayed names are served on their route (unknown kinds on every route)."""
        return self.routes.get(name, frozenset())

    async def run(self) -> None:
        await self.enabled.wait()
        await self.hub.subscribed.wait()
        await asyncio.sleep(self.grace_s)
        loop = asyncio.get_running_loop()
        start = loop.time()
        first_ns = self.frames[0].ns if self.frames else 0
        for i, frame in enumerate(self.frames):
            if not self.enabled.is_set():  # paused: shift the clock by the pause
                paused = loop.time()
                await self.enabled.wait()
                start += loop.time() - paused
            if self.speed:
                delay = start + (frame.ns - first_ns) / 1e9 / self.speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif i % BACKPRESSURE_EVERY == 0:
                await self._backpressure()
            self.position_ns = frame.ns
            self.hub.publish_bytes(frame.stream, frame.data, frame.frame)
            self.stats.replayed += 1
        self.finished.set()

    async def _backpressure(self) -> None:
        """Wait until no subscriber's queue is more than half full."""
        for conn in list(self.hub.connections):
            if len(conn.queue) > conn.queue_limit // 2 and conn.close_request is None:
                conn.drained.clear()
                await conn.drained.wait()
        await asyncio.sleep(0)


class ReplayRest:
    """REST answers from a capture (see the module docstring)."""

    def __init__(self, capture: Capture, position: Callable[[], int]) -> None:
        self.position = position
        self.records = [r for r in capture.rest if r.status == 200]
        symbols = {n.partition("@")[0].upper() for n in capture.streams if not n.startswith("!")}
        symbols |= {s for r in self.records if (s := r.param("symbol"))}
        self.symbols = tuple(sorted(symbols))
        self.snapshots = {s: self._of("/fapi/v1/depth", symbol=s) for s in self.symbols}

    def _of(self, endpoint: str, **params: str) -> list[RestRecord]:
        return [
            r
            for r in self.records
            if r.endpoint == endpoint and all(r.param(k) == v for k, v in params.items())
        ]

    def _recorded(self, endpoint: str, **params: str) -> bytes:
        found = self._of(endpoint, **params)
        if not found:
            wanted = " ".join(f"{k}={v}" for k, v in params.items())
            raise rest.RestError(-1, f"no {endpoint} {wanted} answer in the replayed capture", 404)
        return found[-1].body

    def depth(self, symbol: str, limit: int, now_ms: int) -> bytes:
        snapshots = self.snapshots.get(symbol)
        if not snapshots:
            raise rest.RestError(-1, f"no {symbol} depth snapshot in the replayed capture", 404)
        at = self.position()
        chosen = [s for s in snapshots if s.ns <= at] or snapshots[:1]
        body = chosen[-1].body
        snapshot = wire.depth_snapshot_decoder.decode(body)
        if len(snapshot.bids) <= limit and len(snapshot.asks) <= limit:
            return body
        snapshot.bids = snapshot.bids[:limit]
        snapshot.asks = snapshot.asks[:limit]
        return msgspec.json.encode(snapshot)

    def exchange_info(self, weight_limit: int, now_ms: int) -> bytes:
        if self._of("/fapi/v1/exchangeInfo"):
            return self._recorded("/fapi/v1/exchangeInfo")
        return rest.exchange_info(self.symbols, weight_limit, now_ms, self._inferred_ticks())

    def _inferred_ticks(self) -> dict[str, tuple[str, str]]:
        """Tick and step size per symbol: the gcd of the recorded snapshot's levels."""
        out = {}
        for symbol, snapshots in self.snapshots.items():
            if snapshots:
                snap = wire.depth_snapshot_decoder.decode(snapshots[-1].body)
                levels = snap.bids + snap.asks
                out[symbol] = (_gcd_text([p for p, _ in levels]), _gcd_text([q for _, q in levels]))
        return out

    def klines(
        self,
        symbol: str,
        interval: str,
        start: int | None,
        end: int | None,
        limit: int,
        now_ms: int,
    ) -> bytes:
        return self._recorded("/fapi/v1/klines", symbol=symbol, interval=interval)

    def premium_index(self, symbol: str | None, now_ms: int) -> bytes:
        if symbol is None:
            return self._recorded("/fapi/v1/premiumIndex")
        return self._recorded("/fapi/v1/premiumIndex", symbol=symbol)

    def funding_rate(
        self, symbol: str | None, start: int | None, end: int | None, limit: int, now_ms: int
    ) -> bytes:
        if symbol is None:
            return self._recorded("/fapi/v1/fundingRate")
        return self._recorded("/fapi/v1/fundingRate", symbol=symbol)


def _gcd_text(values: list[str]) -> str:
    decimals = max((len(v.partition(".")[2]) for v in values), default=0)
    g = 0
    for v in values:
        g = math.gcd(g, units(v, decimals))
    return fmt(g or 1, decimals)
