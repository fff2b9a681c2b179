"""Fault injection: the ways the real venue fails, on demand.

Three doors to the same `Faults` object:

- Python (tests): `sim.faults.gap("BTCUSDT")`, `sim.faults.drop_connections()`, ...
- HTTP (a running `raven sim`): `POST /_sim/fault` with a JSON `FaultSpec`,
  e.g. `{"kind":"stall","seconds":5}`; the reply says how many things it hit.
- The command line: `raven sim --fault KIND[:key=value,...]`, applied once
  after `after=S` seconds, or every `every=S` seconds (see `parse_fault`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

import msgspec

from raven.connectors.binance.streams import Route
from raven.sim.hub import CLOSE_EXPIRED, Hub
from raven.sim.limits import RestLimiter
from raven.sim.rest import RestFaults
from raven.sim.stats import SimStats

Speed = Literal["0ms", "100ms", "250ms", "500ms"]
Form = Literal["truncated", "not_json", "unknown_event", "oversized", "invalid_utf8"]
_DEPTH_SUFFIX = {
    "0ms": "@depth@0ms",
    "100ms": "@depth@100ms",
    "250ms": "@depth",
    "500ms": "@depth@500ms",
}
OVERSIZED_BYTES = 8 * 1024 * 1024  # past the connector's default 4 MiB frame limit


class _Spec(msgspec.Struct, tag_field="kind", forbid_unknown_fields=True, kw_only=True):
    after: float = 0.0  # command line only: first application, seconds after start
    every: float = 0.0  # command line only: repeat period (0: once)


class Drop(_Spec, tag="drop"):
    """Drop connections without a close frame (all, one route, or one stream's)."""

    route: Literal["public", "market"] | None = None
    stream: str | None = None


class Gap(_Spec, tag="gap"):
    """Withhold the next diff-depth event of a symbol: its pu no longer chains."""

    symbol: str
    speed: Speed | None = None  # None: every diff-depth speed of the symbol


class Malformed(_Spec, tag="malformed"):
    """Send a broken frame to a stream's subscribers (every connection when None)."""

    stream: str | None = None
    form: Form = "truncated"


class Stall(_Spec, tag="stall"):
    """Send nothing on some streams (all when empty) for `seconds`."""

    seconds: float
    streams: list[str] = []


class RestDelay(_Spec, tag="rest_delay"):
    """Answer REST requests `seconds` late (`count` of them; 0: until cleared)."""

    seconds: float
    count: int = 0


class RestStatus(_Spec, tag="rest_error"):
    """Answer 429 to the next `count` requests, or ban (418) for `seconds`."""

    status: Literal[429, 418] = 429
    count: int = 1
    # 418: ban length (0: the configured one); 429: Retry-After (0: to the next minute).
    seconds: float = 0.0


class Expire(_Spec, tag="expire"):
    """Close every connection now as the 24-hour limit does."""


class Clear(_Spec, tag="clear"):
    """Undo pending gaps, stalls and REST faults."""


FaultSpec = Drop | Gap | Malformed | Stall | RestDelay | RestStatus | Expire | Clear
spec_decoder = msgspec.json.Decoder(FaultSpec)


class Faults:
    def __init__(self, hub: Hub, rest: RestFaults, limiter: RestLimiter, stats: SimStats) -> None:
        self.hub = hub
        self.rest = rest
        self.limiter = limiter
        self.stats = stats

    def drop_connections(self, route: Route | str | None = None, stream: str | None = None) -> int:
        """Abort the TCP connection of the matching connections; returns how many."""
        wanted = Route(route) if isinstance(route, str) else route
        hit = [c for c in self.hub.listeners(stream) if wanted is None or c.route is wanted]
        for conn in hit:
            conn.abort()
        self.stats.dropped += len(hit)
        return len(hit)

    def gap(self, symbol: str, speed: Speed | None = None) -> list[str]:
        """Withhold the next event of the symbol's diff-depth stream(s); returns their names."""
        speeds = [speed] if speed else list(_DEPTH_SUFFIX)
        names = [symbol.lower() + _DEPTH_SUFFIX[s] for s in speeds]
        for name in names:
            self.hub.withhold(name)
        return names

    def malformed(self, stream: str | None = None, form: Form = "truncated") -> int:
        """Send one broken frame (in each connection's raw/combined form); returns how many."""
        self.stats.malformed += 1
        return self.hub.inject(self.hub.listeners(stream), stream or "", _broken(form))

    def stall(self, seconds: float, streams: list[str] | None = None) -> None:
        """Nothing is sent on `streams` (every stream when None or empty) for `seconds`."""
        self.hub.stall(seconds, streams or None)

    def rest_delay(self, seconds: float, count: int = 0) -> None:
        self.rest.delay_s = seconds
        self.rest.delay_left = count or -1

    def rest_error(self, status: int = 429, count: int = 1, seconds: float = 0.0) -> None:
        """429 for the next `count` requests (`Retry-After`: `seconds`, else the seconds
        to the next minute, as a real 429), or a 418 ban of 127.0.0.1 (and ::1)."""
        if status == 418:
            for ip in ("127.0.0.1", "::1"):
                self.limiter.ban(ip, seconds or None)
        else:
            self.rest.force_429_left += count
            self.rest.retry_after_s = seconds

    def expire_connections(self) -> int:
        conns = self.hub.listeners()
        for conn in conns:
            conn.close(CLOSE_EXPIRED, "24-hour connection limit")
        self.stats.expired += len(conns)
        return len(conns)

    def clear(self) -> None:
        self.hub.clear_faults()
        self.rest.delay_left = 0
        self.rest.force_429_left = 0

    def apply(self, spec: FaultSpec) -> int:
        """Apply a spec from HTTP or the command line; returns how many things it hit."""
        match spec:
            case Drop():
                return self.drop_connections(spec.route, spec.stream)
            case Gap():
                return len(self.gap(spec.symbol, spec.speed))
            case Malformed():
                return self.malformed(spec.stream, spec.form)
            case Stall():
                self.stall(spec.seconds, spec.streams)
            case RestDelay():
                self.rest_delay(spec.seconds, spec.count)
            case RestStatus():
                self.rest_error(spec.status, spec.count, spec.seconds)
            case Expire():
                return self.expire_connections()
            case Clear():
                self.clear()
        return 1

    async def run_schedule(self, specs: list[FaultSpec]) -> None:
        """Apply command-line faults at their times (an owned task of the simulator)."""
        async with asyncio.TaskGroup() as group:
            for spec in specs:
                group.create_task(self._repeat(spec), name=f"sim-fault-{type(spec).__name__}")

    async def _repeat(self, spec: FaultSpec) -> None:
        await asyncio.sleep(spec.after)
        while True:
            self.apply(spec)
            if not spec.every:
                return
            await asyncio.sleep(spec.every)


def _broken(form: Form) -> bytes:
    if form == "not_json":
        return b"\x00 this is not JSON"
    if form == "unknown_event":
        return b'{"e":"futureEvent","E":1,"s":"BTCUSDT"}'
    if form == "oversized":
        return b'{"e":"aggTrade","E":1,"pad":"' + b"x" * OVERSIZED_BYTES + b'"}'
    if form == "invalid_utf8":
        return b"\xff\xfe\xfd"
    return b'{"e":"depthUpdate","E":17913829'


def parse_fault(text: str) -> FaultSpec:
    """`kind[:key=value,...]` -> a spec; lists use `+`: `stall:seconds=5,streams=a+b`."""
    kind, _, rest = text.partition(":")
    raw: dict[str, object] = {"kind": kind.strip()}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"fault {text!r}: expected key=value, got {item!r}")
        raw[key.strip()] = value.split("+") if key.strip() == "streams" else _scalar(value)
    try:
        spec: FaultSpec = msgspec.convert(raw, FaultSpec, strict=False)
    except msgspec.ValidationError as exc:
        raise ValueError(f"fault {text!r}: {exc}") from None
    return spec


def _scalar(value: str) -> object:
    for cast in (int, float):
        with contextlib.suppress(ValueError):
            return cast(value)
    return value
