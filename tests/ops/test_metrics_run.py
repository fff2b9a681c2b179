"""/metrics scraped during a full end-to-end run: books, faults, bad data, a store, a client.

A real simulator feeds diff depth, trades and quotes; a scripted second
exchange (`FakeConnector`) sends data that breaks each validation rule; an
embedded DuckDB store records everything; a real client streams books and
trades. The counters must move where the run says they should, and the
scrape must pass `promtool check metrics`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from raven.app import RavenApp
from raven.client import AsyncRavenClient
from raven.connectors.binance.book_sync import BookState
from raven.connectors.fake import FakeConnector
from raven.core import rules
from raven.model import Event, Quote, Trade
from raven.ops import catalog
from raven.sim.server import Simulator
from raven.types import S_NS, Kind, Side
from tests.helpers import wait_until
from tests.ops.promtool import promtool_check
from tests.ops.scrape import Samples, full_config, has, parse, scrape, total

FAKE = "fake"


def bad_data(now: int) -> tuple[list[Event], dict[str, int]]:
    """Events for `fake` (tick 0.1, step 0.001): each rejection rule once, one
    price snapped to the grid, and the rejections expected per rule."""

    def trade(n: int, price: str, exchange_time: int = now) -> Trade:
        return Trade(FAKE, "BTCUSDT", price, "0.001", Side.BUY, n, exchange_time, now)

    events: list[Event] = [
        trade(1, "100.0"),  # accepted: the reference price
        trade(1, "100.0"),  # the same id again
        trade(2, "-5"),
        trade(3, "100.05"),  # half a tick off
        trade(4, "100.00001"),  # within the grid tolerance: snapped to 100.0
        trade(5, "1000.0"),  # 10x the reference
        trade(6, "100.0", now + 3600 * S_NS),  # an hour in the future
        Quote(FAKE, "BTCUSDT", "101.0", "1.000", "100.0", "1.000", 7, now, now),  # crossed
    ]
    expected = {
        rules.DUPLICATE_TRADE: 1,
        rules.POSITIVE_FINITE: 1,
        rules.PRICE_TICK: 1,
        rules.PRICE_BAND: 1,
        rules.TIME_FUTURE: 1,
        rules.CROSSED_QUOTE: 1,
    }
    return events, expected


def books_live(app: RavenApp) -> bool:
    assert app.binance is not None
    return all(s.state is BookState.LIVE for s in app.binance.books.stats.values())


async def test_a_full_run_moves_every_counter_and_passes_promtool(
    sim: Simulator, tmp_path: Path
) -> None:
    app = RavenApp(full_config(sim, tmp_path))
    fake = FakeConnector(FAKE, app.pipeline.ingest, ["BTCUSDT"], {"BTCUSDT": ("0.1", "0.001")})
    app.add_connector(fake, ["BTCUSDT"])
    await app.start()
    try:
        before = parse(await scrape(app))
        during = await run_traffic(sim, app, fake)
        after = parse(during)
        check_connector(before, after, app)
        check_books(after)
        check_validation(after)
        check_pipeline_and_streams(after)
        check_store(after)
        # Every family declared in the catalog is one the code really exports
        # here, except those of parts this run doesn't have.
        absent = {
            "raven_grpc_auth_rejections_total",  # auth off
            "raven_tracing_sampled_events_total",  # tracing off
        }
        for family in catalog.ALL:
            if family.name not in absent:
                assert any(name.startswith(family.name) for name, _ in after), family.name
        promtool_check(during)
    finally:
        await app.stop()


async def run_traffic(sim: Simulator, app: RavenApp, fake: FakeConnector) -> bytes:
    """Stream books and trades to a client through a gap and a malformed frame,
    feed the bad data, let the store write; the scrape taken at the end."""
    async with AsyncRavenClient(f"127.0.0.1:{app.grpc.port}") as client:
        symbols = list(sim.config.symbols)
        async with client.stream(symbols, [Kind.TRADE, Kind.QUOTE, Kind.BOOK]) as stream:
            received = 0

            async def read() -> None:
                nonlocal received
                async for _ in stream:
                    received += 1

            reader = asyncio.create_task(read())
            try:
                await wait_until(lambda: bool(stream.acks), what="the subscription's ack")
                sim.feed_enabled.set()
                await wait_until(lambda: books_live(app), timeout=30, what="books live")
                assert app.binance is not None
                stats = app.binance.books.stats["BTCUSDT"]
                sim.faults.gap("BTCUSDT")
                await wait_until(lambda: stats.resyncs >= 1, timeout=30, what="a resync")
                await wait_until(lambda: books_live(app), timeout=30, what="live again")
                decoder = app.binance.connections[0].decoder.stats
                assert sim.faults.malformed("btcusdt@bookTicker", form="not_json") >= 1
                await wait_until(lambda: decoder.skipped["malformed"] >= 1, what="a bad frame")
                events, _ = bad_data(time.time_ns())
                await fake.feed(events)
                await fake.drained()
                await wait_until(lambda: received >= 200, timeout=30, what="200 events sent")
                assert app.storage is not None
                writer = app.storage.writers[0]
                await wait_until(lambda: writer.written > 100, timeout=30, what="writes")
                return await scrape(app)
            finally:
                sim.feed_enabled.clear()
                reader.cancel()


def check_connector(before: Samples, after: Samples, app: RavenApp) -> None:
    for name in ("raven_connector_frames_total", "raven_connector_events_total"):
        assert total(after, name) >= total(before, name) + 100, name
    assert total(after, "raven_connector_connected") == len(app.connectors[0].connections)  # type: ignore[attr-defined]
    assert total(after, "raven_connector_connects_total") >= 2
    assert total(after, "raven_connector_frames_skipped_total", reason="malformed") >= 1
    assert total(after, "raven_connector_frames_skipped_total", reason="oversized") == 0
    assert total(after, "raven_connector_last_message_timestamp_seconds") > 0
    for kind in ("trade", "quote", "book", "status"):
        count = total(after, "raven_received_events_total", exchange="binance_futures", kind=kind)
        assert count > 0, kind
    assert has(after, "raven_received_events_total", exchange="binance_futures", kind="funding")
    assert total(after, "raven_received_events_total", exchange=FAKE, kind="trade") == 7
    assert total(after, "raven_received_events_total", exchange=FAKE, kind="quote") == 1
    # REST: exchangeInfo plus the snapshots of two syncs and a resync.
    assert total(after, "raven_rest_requests_total") >= 4
    assert total(after, "raven_rest_weight_sent_total") >= 1 + 3 * 20
    assert total(after, "raven_rest_weight_used") > 0
    assert total(after, "raven_rest_weight_limit") == 2400
    assert total(after, "raven_book_snapshots_fetched_total") >= 3
    assert total(after, "raven_circuit_breaker_state", breaker="binance_futures-rest") == 0


def check_books(after: Samples) -> None:
    btc = {"exchange": "binance_futures", "symbol": "BTCUSDT"}
    assert total(after, "raven_book_resyncs_total", **btc) >= 1
    assert total(after, "raven_book_gaps_total", **btc) >= 1
    assert total(after, "raven_book_syncs_total", **btc) >= 2
    assert total(after, "raven_book_live") == 2
    assert total(after, "raven_book_stale") == 0
    assert total(after, "raven_book_last_update_timestamp_seconds", **btc) > time.time() - 600
    for side in ("bid", "ask"):
        assert total(after, "raven_book_levels", side=side, **btc) > 0, side
    assert total(after, "raven_book_deltas_applied_total") > 0
    assert total(after, "raven_book_snapshots_applied_total") >= 3
    assert total(after, "raven_component_healthy", kind="book") == 2


def check_validation(after: Samples) -> None:
    _, expected = bad_data(0)
    for rule in rules.RULES:
        if rule == rules.CROSSED_BOOK:
            continue
        got = total(after, "raven_validation_rejections_total", exchange=FAKE, rule=rule)
        assert got == expected.get(rule, 0), rule
        assert has(
            after, "raven_validation_rejections_total", exchange="binance_futures", rule=rule
        )
    sanitized = total(after, "raven_validation_sanitized_total", exchange=FAKE, rule="price_tick")
    assert sanitized == 1
    assert total(after, "raven_validation_rejections_total", exchange="binance_futures") == 0
    assert total(after, "raven_pipeline_events_rejected_total") == sum(expected.values())
    assert total(after, "raven_validation_checked_total") > 100


def check_pipeline_and_streams(after: Samples) -> None:
    assert total(after, "raven_pipeline_events_total") > 100
    assert total(after, "raven_bus_published_total", kind="trade") > 0
    assert total(after, "raven_bus_published_total", kind="book") > 0, "book views published"
    stages = ("exchange_to_receive", "receive_to_published", "published_to_sent", "sent_to_written")
    for stage in stages:
        count = total(after, "raven_stage_latency_seconds_count", stage=stage)
        assert count > 0, stage
        inf = total(after, "raven_stage_latency_seconds_bucket", stage=stage, le="+Inf")
        assert inf == count, stage
    assert total(after, "raven_streams_open") == 1
    assert total(after, "raven_streams_opened_total") == 1
    assert total(after, "raven_stream_events_sent_total") >= 200
    assert total(after, "raven_stream_events_queued_total") >= total(
        after, "raven_stream_events_sent_total"
    )
    assert total(after, "raven_book_views", mode="deltas") == 2
    assert has(after, "raven_stream_events_dropped_total", policy="drop_oldest")
    assert total(after, "raven_stream_disconnects_total") == 0
    assert total(after, "raven_component_healthy", component="grpc") == 1
    assert total(after, "raven_build_info") == 1
    assert total(after, "process_cpu_seconds_total") > 0


def check_store(after: Samples) -> None:
    embedded = {"store": "embedded"}
    assert total(after, "raven_store_up", **embedded) == 1
    assert total(after, "raven_store_events_written_total", **embedded) > 100
    assert total(after, "raven_store_events_recorded_total", **embedded) >= total(
        after, "raven_store_events_written_total", **embedded
    )
    assert total(after, "raven_store_batches_written_total", **embedded) > 0
    assert total(after, "raven_store_batch_write_seconds_count", **embedded) > 0
    assert total(after, "raven_store_write_failures_total", **embedded) == 0
    assert has(after, "raven_store_write_lag_seconds", **embedded)
    assert total(after, "raven_store_spooled_events", **embedded) == 0
    assert total(after, "raven_store_spool_bytes", **embedded) == 0
    assert total(after, "raven_circuit_breaker_state", breaker="store embedded") == 0
    assert total(after, "raven_component_healthy", component="store:embedded") == 1
