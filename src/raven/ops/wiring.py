"""`Operations`: metrics sources, health checks and their listeners for one RavenApp.

This is the one place that knows which components a `RavenApp` has. A new
component adds one `metrics.add(...)` and one `health.add(...)` line to
`Operations.__init__` (or calls them on `app.ops` after building it).

What is wired (README "Metrics" and "Health" list every name):

- the Binance connector: each connection, each synced book, REST weight and
  snapshots, the REST circuit breaker; a health check per connection and book;
- the pipeline: events received per exchange and kind, validation per rule,
  book keeping, the bus, the stage latency histograms, the latest state;
- the API: client streams (exact totals), auth, GetHistoricalData;
- storage (unless `backend = "none"`): each writer, its breaker, a health
  check per store;
- the gRPC server's health check; tracing's sampled events, when on;
- the process's garbage-collection pauses (`raven.ops.gcwatch`) and the event
  loop's sampled lag (`raven.ops.looplag`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from raven.api.service import SERVICE
from raven.ops import catalog, sources
from raven.ops.feed_sources import connector_checks, connector_source
from raven.ops.gcwatch import GcWatch
from raven.ops.health import HealthMonitor, HealthRegistry, flag_check
from raven.ops.http import OpsServer
from raven.ops.looplag import LoopLag
from raven.ops.metrics import MetricsRegistry
from raven.ops.store_sources import storage_checks, storage_source

if TYPE_CHECKING:
    from raven.app import RavenApp

log = logging.getLogger("raven.ops")


class Operations:
    """Owns the metrics registry, the health registry, the monitor task and the listeners."""

    def __init__(self, app: RavenApp) -> None:
        config = app.config.monitoring
        self.config = config
        self.metrics = MetricsRegistry(catalog.ALL)
        self.health = HealthRegistry()
        self._wire_feeds(app)
        self._wire_core(app)
        self._wire_storage(app)
        self.health.add(flag_check("grpc", "grpc", lambda: app.grpc.serving, "stopped"))
        self.metrics.add(sources.health_source(self.health), name="health")
        self.gc = GcWatch()  # collections stall the event loop: their pauses are exported
        self.metrics.add(sources.gc_source(self.gc), name="gc")
        self.loop_lag = LoopLag()
        self.metrics.add(sources.loop_lag_source(self.loop_lag), name="loop-lag")

        self.monitor = HealthMonitor(
            self.health, config.health_interval_s, app.grpc.health, services=("", SERVICE)
        )
        self.http: OpsServer | None = None
        if config.enabled:
            self.http = OpsServer(
                config.host, config.metrics_port, config.health_check_port,
                self.metrics, self.health,
            )  # fmt: skip
        self._task: asyncio.Task[None] | None = None
        self._lag_task: asyncio.Task[None] | None = None

    def _wire_feeds(self, app: RavenApp) -> None:
        """The Binance connector: connections, books, REST; a check per connection and book."""
        self.metrics.add(sources.build_info_source, name="build_info")
        binance = app.binance
        if binance is None:
            return
        self.metrics.add(connector_source(binance), name=binance.name)
        self.metrics.add(sources.breaker_source(binance.breaker), name="rest-breaker")
        config = self.config
        checks = connector_checks(
            binance, app.state, self.health, config.stale_feed_s, config.stale_book_s
        )
        for check in checks:
            self.health.add(check)

    def _wire_core(self, app: RavenApp) -> None:
        """Pipeline, validation, state, client streams, the API; tracing's hooks."""
        metrics, pipeline = self.metrics, app.pipeline

        def exchanges() -> list[str]:  # read at scrape time: tests add connectors later
            return [connector.name for connector in app.connectors]

        metrics.add(sources.received_source(app.state, pipeline, exchanges), name="received")
        metrics.add(sources.pipeline_source(pipeline, app.views), name="pipeline")
        metrics.add(sources.stage_source(pipeline, app.registry), name="stages")
        metrics.add(sources.validation_source(app.citadel, exchanges), name="validation")
        metrics.add(sources.state_source(app.state), name="state")
        metrics.add(sources.streams_source(app.registry, app.service), name="streams")
        if app.grpc.auth is not None:
            metrics.add(sources.auth_source(app.grpc.auth), name="auth")
        if app.service.history is not None:  # the store's modules load only with a store
            from raven.api.history import HistoryService

            if isinstance(app.service.history, HistoryService):
                metrics.add(sources.history_source(app.service.history), name="history")
        if app.tracing is not None:
            app.tracing.instrument(app.citadel, app.bus)
            metrics.add(sources.tracing_source(app.tracing), name="tracing")

    def _wire_storage(self, app: RavenApp) -> None:
        """Each store's writer and breaker; a check per store."""
        storage = app.storage
        if storage is None:
            return
        self.metrics.add(storage_source(storage), name="storage")
        for writer in storage.writers:
            self.metrics.add(sources.breaker_source(writer.breaker), name=f"{writer.name}-breaker")
        for check in storage_checks(storage, self.config.store_down_s):
            self.health.add(check)

    async def start(self) -> None:
        """Listen, then mark started and begin feeding the gRPC health service."""
        if self.http is not None:
            await self.http.start()
        self.health.start()
        self.gc.start()
        self._task = asyncio.create_task(self.monitor.run(), name="health-monitor")
        self._lag_task = asyncio.create_task(self.loop_lag.run(), name="loop-lag")

    async def stop(self) -> None:
        self.health.started = False
        self.gc.stop()
        for task in (self._task, self._lag_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._lag_task = None
        if self.http is not None:
            await self.http.stop()
