"""Health: a registry of component checks, and the monitor behind gRPC health.

A check is a function of the current time (Unix ns) that returns one
`ComponentStatus`: its name, kind (feed, book, store, grpc), whether it is
healthy and ready, a one-word status and the age of its newest message.
Adding a component is one line:

    health.add(freshness_check("book:binance_futures:BTCUSDT", "book",
                               newest_ns=lambda: book.exchange_time,
                               stale_after_s=config.monitoring.stale_feed_s))

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


class ComponentStatus(msgspec.Struct, frozen=True):
    name: str  # "binance_futures/public#0", "grpc", "store:embedded", ...
    kind: str  # feed | book | store | grpc
    healthy: bool
    status: str  # one word: ok, waiting, reconnecting, stale, down, stopped
    age_s: float | None = None  # age of the newest message; None: not applicable / none yet
    ready: bool = True  # counts towards /ready (feeds: connected)
    detail: str = ""


class HealthReport(msgspec.Struct, frozen=True):
    status: str  # "ok" or "unhealthy"
    healthy: bool
    ready: bool
    components: list[ComponentStatus]


HealthCheck = Callable[[int], ComponentStatus]  # now (Unix ns) -> status


class HealthRegistry:
    """The checks of every component; `started` gates readiness."""

    def __init__(self, clock: Callable[[], int] = time.time_ns) -> None:
        self.clock = clock
        self.started = False
        self._checks: list[HealthCheck] = []

    def add(self, check: HealthCheck) -> None:
        self._checks.append(check)

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


class ConnectionLike(Protocol):
    @property
    def label(self) -> str: ...
    @property
    def connected(self) -> bool: ...
    @property
    def last_message_ns(self) -> int: ...


def feed_check(conn: ConnectionLike, stale_after_s: float) -> HealthCheck:
    """One exchange WebSocket connection: stale when silent too long."""
    return freshness_check(
        conn.label,
        "feed",
        lambda: conn.last_message_ns,
        stale_after_s,
        up=lambda: conn.connected,
    )


class StoreLike(Protocol):
    """What a store exposes for its health check."""

    @property
    def name(self) -> str: ...

    def write_lag_s(self) -> float:
        """Age of the oldest event not yet written; 0 when caught up."""
        ...


def store_check(store: StoreLike, down_after_s: float) -> HealthCheck:
    """Down when events have waited longer than `down_after_s` to be written."""

    def check(now_ns: int) -> ComponentStatus:
        lag = store.write_lag_s()
        healthy = lag <= down_after_s
        detail = "" if healthy else f"writes {lag:.1f} s behind (limit {down_after_s:g} s)"
        status = "ok" if lag == 0 else ("behind" if healthy else "down")
        return ComponentStatus(f"store:{store.name}", "store", healthy, status, None, True, detail)

    return check


def flag_check(name: str, kind: str, up: Callable[[], bool], down_status: str) -> HealthCheck:
    """Healthy while `up()` holds (e.g. the gRPC server is serving)."""

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
