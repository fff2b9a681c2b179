"""Health: a registry of component checks, and the monitor behind gRPC health.

A check is a function of the current time (Unix ns) that returns one
`ComponentStatus`: its name, kind (feed, book, store, grpc), whether it is
healthy and ready, a one-word status and the age of its newest message.
Adding a component is one line:

    health.add(store_check(writer, config.monitoring.store_down_s))

`HealthRegistry.evaluate()` runs every check (cheap attribute reads, no
I/O) whenever /health, /ready or a metrics scrape asks. `HealthMonitor`
pushes the overall result into the gRPC health service; see its docstring
for why it runs on a clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

import msgspec

log = logging.getLogger("raven.ops.health")


Info = dict[str, str | int | float | bool]


class ComponentStatus(msgspec.Struct, frozen=True):
    name: str  # "binance_futures/public#0", "book:binance_futures:BTCUSDT", "store:embedded"
    kind: str  # feed | book | store | grpc
    healthy: bool
    status: str  # one word: ok, waiting, syncing, reconnecting, resyncing, stale, down, ...
    age_s: float | None = None  # age of the newest message; None: not applicable / none yet
    ready: bool = True  # counts towards /ready (feeds: connected; books: live)
    detail: str = ""
    info: Info = msgspec.field(default_factory=dict)  # per kind: breaker, state, counts


class HealthReport(msgspec.Struct, frozen=True):
    status: str  # "ok" or "unhealthy"
    healthy: bool
    ready: bool
    components: list[ComponentStatus]


HealthCheck = Callable[[int], ComponentStatus]  # now (Unix ns) -> status


class HealthRegistry:
    """The checks of every component; `started` gates health and readiness."""

    def __init__(self, clock: Callable[[], int] = time.time_ns) -> None:
        self.clock = clock
        self.started = False
        self.started_ns = 0  # when started (Unix ns): "waiting since" for checks
        self._checks: list[HealthCheck] = []

    def add(self, check: HealthCheck) -> None:
        self._checks.append(check)

    def start(self) -> None:
        self.started = True
        self.started_ns = self.clock()

    def since(self) -> int:
        """When the checks started counting (start, or now if not started)."""
        return self.started_ns or self.clock()

    def evaluate(self) -> HealthReport:
        now = self.clock()
        components = [check(now) for check in self._checks]
        healthy = self.started and all(c.healthy for c in components)
        ready = self.started and all(c.ready for c in components)
        return HealthReport("ok" if healthy else "unhealthy", healthy, ready, components)


def _age(now_ns: int, then_ns: int) -> float:
    return round(max(0, now_ns - then_ns) / 1e9, 3)


def freshness_check(
    name: str,
    kind: str,
    newest_ns: Callable[[], int],
    stale_after_s: float,
    *,
    up: Callable[[], bool] = lambda: True,
    since_ns: int | None = None,
) -> HealthCheck:
    """Healthy while the newest message (Unix ns; 0: none yet) is at most
    `stale_after_s` old. Before the first message the age counts from
    `since_ns` (default: when the check was made), so a feed that never
    delivers turns unhealthy too. `up()` false (e.g. disconnected) is not
    ready, and reported as reconnecting while still fresh."""
    start = time.time_ns() if since_ns is None else since_ns

    def check(now_ns: int) -> ComponentStatus:
        newest = newest_ns()
        age = _age(now_ns, newest or start)
        fresh = age <= stale_after_s
        is_up = up()
        if not fresh:
            status = "stale"
        elif not is_up:
            status = "reconnecting"
        else:
            status = "ok" if newest else "waiting"
        detail = "" if fresh else f"no message for {age:.1f} s (limit {stale_after_s:g} s)"
        return ComponentStatus(
            name, kind, fresh, status, _age(now_ns, newest) if newest else None, is_up, detail
        )

    return check


class ConnectionStatsLike(Protocol):
    @property
    def connected(self) -> bool: ...
    @property
    def last_message_ns(self) -> int: ...
    @property
    def disconnected_ns(self) -> int: ...
    @property
    def connects(self) -> int: ...
    @property
    def disconnects(self) -> int: ...
    @property
    def last_error(self) -> str: ...


class ConnectionLike(Protocol):
    """An exchange WebSocket connection (`raven.connectors.binance.connection`)."""

    @property
    def label(self) -> str: ...
    @property
    def stats(self) -> ConnectionStatsLike: ...
    @property
    def watched(self) -> list[str]: ...


def feed_check(conn: ConnectionLike, stale_after_s: float, since: Callable[[], int]) -> HealthCheck:
    """One exchange WebSocket connection; ready while connected.

    With streams that should be busy (`watched`: `busy_streams` of the
    config) it is stale when its newest message is older than
    `stale_after_s` (counted from `since()`, the start, before the first
    one). A connection of quiet streams only (liquidations, klines) may be
    silent for minutes: it is unhealthy only when disconnected that long.
    """

    def check(now_ns: int) -> ComponentStatus:
        stats = conn.stats
        newest = stats.last_message_ns
        age = _age(now_ns, newest) if newest else None
        info: Info = {
            "busy_streams": len(conn.watched),
            "connects": stats.connects,
            "disconnects": stats.disconnects,
        }
        if stats.last_error:
            info["last_error"] = stats.last_error
        if conn.watched:
            silent = _age(now_ns, newest or since())
            healthy = silent <= stale_after_s
            bad, detail = "stale", f"no message for {silent:.1f} s (limit {stale_after_s:g} s)"
        else:
            down = 0.0 if stats.connected else _age(now_ns, stats.disconnected_ns or since())
            healthy = down <= stale_after_s
            bad, detail = "down", f"disconnected for {down:.1f} s (limit {stale_after_s:g} s)"
        if not healthy:
            status = bad
        elif not stats.connected:
            status, detail = "reconnecting", ""
        else:
            status, detail = ("ok" if newest or not conn.watched else "waiting"), ""
        return ComponentStatus(
            conn.label, "feed", healthy, status, age, stats.connected, detail, info
        )

    return check


class BookStatsLike(Protocol):
    """`raven.connectors.binance.book_sync.BookStats`."""

    @property
    def state(self) -> int: ...  # 0 syncing, 1 live, 2 stale (BookState)
    @property
    def since_ns(self) -> int: ...
    @property
    def resyncs(self) -> int: ...
    @property
    def buffered(self) -> int: ...
    @property
    def last_update_id(self) -> int: ...


SYNCING, LIVE, STALE = 0, 1, 2  # = raven.connectors.binance.book_sync.BookState
_BOOK_STATES = {SYNCING: "syncing", LIVE: "live", STALE: "stale"}


def book_check(
    name: str,
    stats: BookStatsLike,
    stale_after_s: float,
    newest_ns: Callable[[], int],
    listed: Callable[[], bool] = lambda: True,
) -> HealthCheck:
    """One order book; ready while live.

    Live: ok. Stale (resyncing after a gap, a request, a lost connection):
    healthy for `stale_after_s`, then unhealthy until live again. Syncing the
    first time: healthy ("waiting") until its first diff depth event asks for
    a snapshot, then unhealthy if still not live `stale_after_s` later, so a
    start never turns /health 503 by itself but a sync that can't finish does.
    A symbol the venue doesn't list (its streams stay silent) is left out.
    """

    def check(now_ns: int) -> ComponentStatus:
        state = int(stats.state)
        newest = newest_ns()
        age = _age(now_ns, newest) if newest else None
        info: Info = {
            "state": _BOOK_STATES.get(state, str(state)),
            "resyncs": stats.resyncs,
            "update_id": stats.last_update_id,
            "buffered": stats.buffered,
        }
        if state == LIVE:
            return ComponentStatus(name, "book", True, "ok", age, True, "", info)
        if not listed():
            detail = "the venue does not list this symbol"
            return ComponentStatus(name, "book", True, "unlisted", age, True, detail, info)
        if state == SYNCING and not stats.since_ns:
            return ComponentStatus(name, "book", True, "waiting", age, False, "", info)
        waited = _age(now_ns, stats.since_ns)
        healthy = waited <= stale_after_s
        status = ("syncing" if state == SYNCING else "resyncing") if healthy else "stale"
        detail = f"not live for {waited:.1f} s (limit {stale_after_s:g} s)"
        return ComponentStatus(name, "book", healthy, status, age, False, detail, info)

    return check


class StoreHealthLike(Protocol):
    """`raven.storage.writer.StoreHealth`."""

    @property
    def up(self) -> bool: ...
    @property
    def since_ns(self) -> int: ...
    @property
    def breaker(self) -> str: ...
    @property
    def last_error(self) -> str: ...
    @property
    def pending_events(self) -> int: ...


class StoreLike(Protocol):
    """A store's writer (`raven.storage.writer.StoreWriter`)."""

    @property
    def name(self) -> str: ...

    def health(self) -> StoreHealthLike: ...

    def write_lag_ns(self) -> int:
        """Age of the oldest event not yet written; 0 when caught up."""
        ...


def store_check(store: StoreLike, down_after_s: float) -> HealthCheck:
    """Unhealthy when the store has been down (its breaker not closed) for more
    than `down_after_s`, or its writes are more than `down_after_s` behind.
    Events wait meanwhile (memory, then spool), so a short outage is healthy."""

    def check(now_ns: int) -> ComponentStatus:
        health = store.health()
        lag = round(store.write_lag_ns() / 1e9, 3)
        down = 0.0 if health.up else _age(now_ns, health.since_ns)
        info: Info = {
            "breaker": health.breaker,
            "pending_events": health.pending_events,
            "write_lag_s": lag,
        }
        if health.last_error:
            info["last_error"] = health.last_error
        healthy = down <= down_after_s and lag <= down_after_s
        if not health.up:
            status = "down" if not healthy else "failing"
            detail = f"down for {down:.1f} s (limit {down_after_s:g} s), breaker {health.breaker}"
            if health.last_error:
                detail += f": {health.last_error}"
        elif lag > down_after_s:
            status, detail = "behind", f"writes {lag:.1f} s behind (limit {down_after_s:g} s)"
        else:
            status, detail = ("ok" if lag == 0 else "writing"), ""
        name = f"store:{store.name}"
        return ComponentStatus(name, "store", healthy, status, None, True, detail, info)

    return check


def flag_check(name: str, kind: str, up: Callable[[], bool], down_status: str) -> HealthCheck:
    """Healthy (and ready) while `up()` holds (e.g. the gRPC server is serving)."""

    def check(now_ns: int) -> ComponentStatus:
        ok = up()
        return ComponentStatus(name, kind, ok, "ok" if ok else down_status, None, ok)

    return check


class HealthSink(Protocol):
    """Where the monitor reports the overall status (the gRPC health servicer)."""

    async def set(self, service: str, status: int) -> None: ...


class HealthMonitor:
    """Re-evaluates health on a fixed, modest cadence and reports changes.

    Staleness is the *absence* of messages, which no event announces, so a
    clock is the only thing that can notice it. One owned task evaluates
    every `interval_s` (default 1 s: each evaluation is a few attribute
    reads) and only acts when the overall status or a component's status
    changes: it sets SERVING / NOT_SERVING on the gRPC health service for
    `services` and logs one line per change.
    """

    def __init__(
        self,
        registry: HealthRegistry,
        interval_s: float,
        sink: HealthSink | None = None,
        services: Iterable[str] = ("",),
    ) -> None:
        self.registry = registry
        self.interval_s = interval_s
        self.sink = sink
        self.services = tuple(services)
        self.healthy: bool | None = None
        self.changes = 0
        self._components: dict[str, bool] = {}

    async def run(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self.interval_s)

    async def check_once(self) -> HealthReport:
        report = self.registry.evaluate()
        for c in report.components:
            if self._components.get(c.name, True) != c.healthy:
                level = logging.INFO if c.healthy else logging.WARNING
                log.log(level, "%s %s is %s %s", c.kind, c.name, c.status, c.detail)
            self._components[c.name] = c.healthy
        if report.healthy != self.healthy:
            self.healthy = report.healthy
            self.changes += 1
            if self.sink is not None:
                from grpc_health.v1 import health_pb2  # grpc is always installed

                serving = health_pb2.HealthCheckResponse
                status = serving.SERVING if report.healthy else serving.NOT_SERVING
                for service in self.services:
                    await self.sink.set(service, status)
            log.info("health: %s", report.status)
        return report
