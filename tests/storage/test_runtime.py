"""Storage built from the config: backends, book checkpoints, health and stats."""

from __future__ import annotations

from pathlib import Path

import pytest

from raven.config import HistoryConfig, RavenConfig, config_from_dict
from raven.storage.base import ReadQuery, StoreError, Table
from raven.storage.embedded import DuckDBStore
from raven.storage.influx import InfluxStore
from raven.storage.runtime import Storage
from tests.helpers import wait_until
from tests.storage.events import EX, Market
from tests.storage.influxd import InfluxServer


def config(tmp_path: Path, backend: str, **influx: object) -> RavenConfig:
    return config_from_dict(
        {
            "database": {
                "backend": backend,
                "path": str(tmp_path / "raven.duckdb"),
                "writer": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.02},
                "influxdb": influx,
            },
            "history": {"book_checkpoint_interval_s": 0.05},
        }
    )


def test_backends_from_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Storage.from_config(config(tmp_path, "none").database, HistoryConfig()) is None
    embedded = Storage.from_config(config(tmp_path, "embedded").database, HistoryConfig())
    assert embedded is not None
    assert [type(s) for s in embedded.stores] == [DuckDBStore]
    monkeypatch.delenv("INFLUX_TOKEN", raising=False)
    with pytest.raises(StoreError, match="INFLUX_TOKEN"):
        Storage.from_config(config(tmp_path, "influxdb", api="v2").database, HistoryConfig())


async def test_both_stores_get_everything_and_history_reads_the_embedded_one(
    tmp_path: Path, influxd: InfluxServer
) -> None:
    cfg = config(tmp_path, "both", url=influxd.url, database="both_test")
    market = Market(seed=8)
    storage = Storage.from_config(
        cfg.database, cfg.history, catalog={EX: market.symbols}, book_source=market
    )
    assert storage is not None
    assert [type(s) for s in storage.stores] == [DuckDBStore, InfluxStore]
    assert storage.reader.store is storage.embedded
    await storage.start()
    events = market.events(300)
    for e in events:
        storage.recorder.record(e)
    # The owned checkpoint task stores the live books every 0.05 s.
    await wait_until(lambda: storage.checkpoints >= 4, what="book checkpoints")
    await wait_until(lambda: all(w.pending == 0 for w in storage.writers), what="written")
    health = storage.health()
    assert [(h.store, h.up, h.breaker) for h in health] == [
        ("embedded", True, "closed"), ("influxdb", True, "closed"),
    ]  # fmt: skip
    query = ReadQuery(Table.TRADE, EX, market.symbols, 0, 2**62, 10_000)
    embedded, influx = [await s.read(query) for s in storage.stores]
    assert embedded == influx
    assert len(embedded) == sum(e.kind.name == "TRADE" for e in events)
    checkpoints = await storage.stores[0].read(
        ReadQuery(Table.BOOK_CHECKPOINT, EX, market.symbols, 0, 2**62, 10_000)
    )
    assert {item.symbol for _, item in checkpoints} == set(market.symbols)
    await storage.stop()
    stats = storage.stats()
    assert [s.written_events for s in stats] == [300 + storage.checkpoints] * 2
    assert [s.spool_events for s in stats] == [0, 0]
