"""Fixtures for the storage tests: a real InfluxDB 1.x server, stores, databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from raven.config import InfluxDBConfig
from raven.storage.embedded import DuckDBStore
from raven.storage.influx import InfluxStore
from tests.storage.influxd import InfluxServer, require_influxd


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """One influxd for the session; tests use their own database in it."""
    server = InfluxServer(require_influxd(), tmp_path_factory.mktemp("influxd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def influx_config(server: InfluxServer, **overrides: object) -> InfluxDBConfig:
    values: dict[str, object] = {"url": server.url, "database": f"t_{uuid.uuid4().hex[:12]}"}
    values.update(overrides)
    return InfluxDBConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
async def influx_store(influxd: InfluxServer) -> AsyncIterator[InfluxStore]:
    store = InfluxStore(influx_config(influxd, timeout_s=5.0))
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def duck(tmp_path: Path) -> AsyncIterator[DuckDBStore]:
    store = DuckDBStore(tmp_path / "raven.duckdb")
    try:
        yield store
    finally:
        await store.close()
