"""`Operations`: metrics sources, health checks and their listeners for one RavenApp.

This is the one place that knows which components a `RavenApp` has. A new
component adds one `metrics.add(...)` and one `health.add(...)` line to
`Operations.__init__` (or calls them on `app.ops` after building it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from raven.api.service import SERVICE
from raven.connectors.binance.connection import EXCHANGE
from raven.connectors.binance.connector import BinanceFuturesConnector
from raven.ops import catalog, sources
from raven.ops.health import HealthMonitor, HealthRegistry, feed_check, flag_check
from raven.ops.http import OpsServer
from raven.ops.metrics import MetricsRegistry

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
        metrics, health = self.metrics, self.health

        metrics.add(sources.build_info_source, name="build_info")
        for connector in app.connectors:
            if isinstance(connector, BinanceFuturesConnector):
                metrics.add(sources.connections_source(EXCHANGE, connector.connections), EXCHANGE)
                for conn in connector.connections:
                    health.add(feed_check(conn, config.stale_feed_s))
        metrics.add(sources.pipeline_source(app.pipeline, app.bus), name="pipeline")
        metrics.add(sources.state_source(app.state), name="state")
        metrics.add(sources.StreamsSource(app.registry.streams), name="streams")
        health.add(flag_check("grpc", "grpc", lambda: app.grpc.serving, "stopped"))
        metrics.add(sources.health_source(health), name="health")

        self.monitor = HealthMonitor(
            health, config.health_interval_s, app.grpc.health, services=("", SERVICE)
        )
        self.http: OpsServer | None = None
        if config.enabled:
            self.http = OpsServer(
                config.host, config.metrics_port, config.health_check_port, metrics, health
            )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen, then mark started and begin feeding the gRPC health service."""
        if self.http is not None:
            await self.http.start()
        self.health.started = True
        self._task = asyncio.create_task(self.monitor.run(), name="health-monitor")

    async def stop(self) -> None:
        self.health.started = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.http is not None:
            await self.http.stop()
