"""Tracing: free when off; spans per operation, per gRPC call and per sampled event."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from raven.app import RavenApp
from raven.client import AsyncRavenClient
from raven.config import TracingConfig, ValidationConfig
from raven.connectors.binance.book_sync import BookState
from raven.core.bus import Bus, Subscriber
from raven.core.citadel import Citadel
from raven.core.pipeline import Pipeline
from raven.core.state import MarketState
from raven.model import Event, Trade
from raven.ops import tracing
from raven.sim.server import Simulator
from raven.types import Kind, Side
from raven.v1 import market_data_pb2 as pb
from tests.helpers import wait_until
from tests.ops.scrape import full_config


def trade(n: int) -> Trade:
    return Trade("binance_futures", "BTCUSDT", "100.5", "0.1", Side.BUY, n, n * 1000, n * 1000 + 5)


@pytest.fixture
def memory_tracing() -> Iterator[tracing.Tracing]:
    config = TracingConfig(enabled=True, exporter="memory", event_sample_rate=0.25)
    active = tracing.Tracing(config)
    active.activate()
    try:
        yield active
    finally:
        active.shutdown()


def finished(t: tracing.Tracing) -> list[ReadableSpan]:
    assert isinstance(t.exporter, InMemorySpanExporter)
    return list(t.exporter.get_finished_spans())


def test_off_by_default_and_then_free() -> None:
    assert not tracing.enabled()
    first = tracing.span("connector.connect", connection="x")
    assert first is tracing.span("store.write_batch")
    assert first is tracing.event_span("citadel.validate")
    with first as value:
        assert value is None
    assert tracing.start_span("book.resync", symbol="BTCUSDT") is None
    tracing.end_span(None, update_id=1)  # nothing to end


def test_operation_spans_nest_and_carry_attributes(memory_tracing: tracing.Tracing) -> None:
    with tracing.span("book.resync", symbol="BTCUSDT"), tracing.span("rest.snapshot", limit=1000):
        pass
    spans = {s.name: s for s in finished(memory_tracing)}
    assert set(spans) == {"book.resync", "rest.snapshot"}
    outer, inner = spans["book.resync"], spans["rest.snapshot"]
    assert outer.attributes == {"symbol": "BTCUSDT"}
    assert inner.parent is not None
    assert outer.context is not None
    assert inner.parent.span_id == outer.context.span_id
    assert outer.resource.attributes["service.name"] == "raven"


def test_every_nth_event_gets_a_trace_and_every_event_reaches_the_sink(
    memory_tracing: tracing.Tracing,
) -> None:
    seen: list[Event] = []

    def pipeline(event: Event) -> None:
        with tracing.event_span("citadel.validate", kind="trade"):
            seen.append(event)

    sink = memory_tracing.event_sink(pipeline)
    events = [trade(n) for n in range(1, 13)]
    for event in events:
        sink(event)
    assert seen == events
    spans = finished(memory_tracing)
    roots = [s for s in spans if s.name == "raven.event"]
    assert len(roots) == 3  # 12 events at a sample rate of 1/4
    assert memory_tracing.sampled_events == 3
    assert [r.start_time for r in roots] == [e.receive_time for e in events[3::4]]
    for root in roots:
        assert root.attributes is not None
        assert root.attributes["raven.symbol"] == "BTCUSDT"
        assert root.attributes["raven.exchange_to_receive_s"] == pytest.approx(5e-9)
        assert root.context is not None
        children = [s for s in spans if s.parent and s.parent.span_id == root.context.span_id]
        assert sorted(c.name for c in children) == ["connector.decode", "pipeline.ingest"]
        ingest = next(c for c in children if c.name == "pipeline.ingest")
        assert ingest.context is not None
        hops = [s for s in spans if s.parent and s.parent.span_id == ingest.context.span_id]
        assert [h.name for h in hops] == ["citadel.validate"]
    assert sum(s.name == "citadel.validate" for s in spans) == 3, "unsampled events: no spans"


def test_a_long_span_starts_a_trace_of_its_own_and_ends_later(
    memory_tracing: tracing.Tracing,
) -> None:
    with tracing.span("pipeline.ingest") as current:
        long = tracing.start_span("book.resync", symbol="BTCUSDT", reason="gap")
    assert long is not None
    assert [s.name for s in finished(memory_tracing)] == ["pipeline.ingest"], "not ended yet"
    tracing.end_span(long, update_id=42)
    spans = {s.name: s for s in finished(memory_tracing)}
    resync = spans["book.resync"]
    assert resync.parent is None, "not a child of what was current when it started"
    assert resync.context is not None
    assert current is not None
    assert resync.context.trace_id != current.get_span_context().trace_id
    assert resync.attributes == {"symbol": "BTCUSDT", "reason": "gap", "update_id": 42}


def pipeline_with_a_reader() -> tuple[Pipeline, Subscriber]:
    """The real pipeline, citadel and bus, with one subscriber to BTCUSDT trades."""
    bus = Bus()
    increments = {"BTCUSDT": ("0.1", "0.001")}
    citadel = Citadel(ValidationConfig(), lambda exchange, symbol: increments.get(symbol))
    pipeline = Pipeline(MarketState(), bus, citadel)
    sub = Subscriber("reader", capacity=100)
    bus.subscribe(sub, (Kind.TRADE, "binance_futures", "BTCUSDT", ""))
    return pipeline, sub


def pending(sub: Subscriber) -> dict[int, Any] | None:
    """The sampled chunks `sub` is waiting to send (read fresh each time)."""
    return sub.traced


def test_a_sampled_event_is_followed_through_citadel_and_bus_to_the_send(
    memory_tracing: tracing.Tracing,
) -> None:
    pipeline, sub = pipeline_with_a_reader()
    memory_tracing.instrument(pipeline.citadel, pipeline.bus)
    sink = memory_tracing.event_sink(pipeline.ingest)
    for n in range(1, 5):
        sink(trade(n))
    assert "publish" not in vars(pipeline.bus), "the plain method is back after the event"
    assert "check" not in vars(pipeline.citadel)
    waiting = pending(sub)
    assert waiting is not None
    assert len(waiting) == 1, "one of four events sampled"
    _, chunks = sub.drain(100, 10_000_000)
    tracing.sent(sub, chunks, 10_000_000)
    assert pending(sub) is None, "nothing left to follow: the sender's check is off again"

    spans = finished(memory_tracing)
    by_id = {s.context.span_id: s for s in spans if s.context is not None}

    def chain(span: ReadableSpan) -> list[str]:
        names = [span.name]
        while span.parent is not None:
            span = by_id[span.parent.span_id]
            names.append(span.name)
        return names

    send = [s for s in spans if s.name == "stream.send"]
    assert len(send) == 1
    assert chain(send[0]) == ["stream.send", "bus.publish", "pipeline.ingest", "raven.event"]
    assert send[0].attributes == {"raven.stream": "reader"}
    assert send[0].end_time == 10_000_000
    validate = [s for s in spans if s.name == "citadel.validate"]
    assert [chain(s) for s in validate] == [["citadel.validate", "pipeline.ingest", "raven.event"]]
    publish = [s for s in spans if s.name == "bus.publish"]
    assert publish[0].attributes == {
        "raven.topic": "trade/binance_futures/BTCUSDT",
        "raven.subscribers": 1,
    }


def test_a_sampled_chunk_never_sent_is_forgotten(memory_tracing: tracing.Tracing) -> None:
    pipeline, sub = pipeline_with_a_reader()
    memory_tracing.instrument(pipeline.citadel, pipeline.bus)
    sink = memory_tracing.event_sink(pipeline.ingest)
    for n in range(1, 5):
        sink(trade(n))
    waiting = pending(sub)
    assert waiting is not None
    ((_, _, published),) = waiting.values()
    tracing.sent(sub, [b"another event"], published + tracing.SEND_WAIT_NS - 1)
    assert pending(sub) is not None, "still waiting"
    tracing.sent(sub, [b"another event"], published + tracing.SEND_WAIT_NS + 1)
    assert pending(sub) is None, "given up: conflated or dropped, it will never be sent"
    assert not [s for s in finished(memory_tracing) if s.name == "stream.send"]


def test_only_one_tracing_is_active_at_a_time() -> None:
    first = tracing.Tracing(TracingConfig(enabled=True, exporter="memory"))
    first.activate()
    try:
        second = tracing.Tracing(TracingConfig(enabled=True, exporter="memory"))
        with pytest.raises(RuntimeError, match="another Tracing is active"):
            second.activate()
        assert tracing.active() is first
    finally:
        first.shutdown()
    assert not tracing.enabled()


async def test_server_spans_for_every_operation_and_sampled_events_to_the_send(
    sim: Simulator, tmp_path: Path
) -> None:
    tracing_section: dict[str, object] = {
        "enabled": True,
        "exporter": "memory",
        "event_sample_rate": 0.1,
    }
    app = RavenApp(full_config(sim, tmp_path, tracing=tracing_section))
    assert app.tracing is not None
    exporter = app.tracing.exporter
    assert isinstance(exporter, InMemorySpanExporter)

    def named(name: str) -> list[ReadableSpan]:
        return [s for s in exporter.get_finished_spans() if s.name == name]

    await app.start()
    try:
        assert app.binance is not None
        connections = app.binance.connections
        await wait_until(lambda: all(c.connected for c in connections), what="connections")
        async with AsyncRavenClient(f"127.0.0.1:{app.grpc.port}") as client:
            await client.snapshot("BTCUSDT")
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await client.stub.GetSnapshot(pb.GetSnapshotRequest(symbol="NOPE"))
            assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            kinds = [Kind.TRADE, Kind.QUOTE, Kind.BOOK]
            async with client.stream(["BTCUSDT"], kinds) as stream:
                sim.feed_enabled.set()
                books = app.binance.books.stats.values()
                await wait_until(
                    lambda: all(b.state is BookState.LIVE for b in books), timeout=30, what="books"
                )
                sim.faults.gap("BTCUSDT")
                await wait_until(lambda: bool(named("book.resync")), timeout=30, what="resync")
                await wait_until(
                    lambda: bool(named("stream.send")), timeout=30, what="a sampled event sent"
                )
                await wait_until(lambda: bool(named("store.write_batch")), what="a store write")
                sim.feed_enabled.clear()
                assert stream.stream_id
        await wait_until(
            lambda: bool(named("grpc raven.v1.MarketDataService/StreamMarketData")),
            what="the stream's span to end",
        )
        spans = list(exporter.get_finished_spans())
    finally:
        sim.feed_enabled.clear()
        await app.stop()
    assert not tracing.enabled(), "stopping the app deactivates its tracing"
    check_server_spans(spans, {c.label for c in connections})


def check_server_spans(spans: list[ReadableSpan], labels: set[str]) -> None:
    by_name: dict[str, list[ReadableSpan]] = {}
    for s in spans:
        by_name.setdefault(s.name, []).append(s)
    snapshot_calls = by_name["grpc raven.v1.MarketDataService/GetSnapshot"]
    codes = sorted(int((s.attributes or {})["rpc.grpc.status_code"]) for s in snapshot_calls)  # type: ignore[arg-type]
    assert codes == [0, grpc.StatusCode.INVALID_ARGUMENT.value[0]]
    connects = by_name["connector.connect"]
    assert {(s.attributes or {})["connection"] for s in connects} == labels
    # Operations: book sync and resync (each a trace of its own), REST, store writes.
    resync = by_name["book.resync"][0]
    assert resync.parent is None
    assert (resync.attributes or {})["symbol"] == "BTCUSDT"
    assert str((resync.attributes or {})["reason"]).startswith("gap")
    assert {(s.attributes or {})["symbol"] for s in by_name["book.sync"]} == {"BTCUSDT", "ETHUSDT"}
    paths = {(s.attributes or {})["path"] for s in by_name["rest.get"]}
    assert paths == {"/fapi/v1/exchangeInfo", "/fapi/v1/depth"}
    assert all((s.attributes or {})["http.status_code"] == 200 for s in by_name["rest.get"])
    write = by_name["store.write_batch"][0]
    assert (write.attributes or {})["store"] == "embedded"
    assert int((write.attributes or {})["events"]) > 0  # type: ignore[arg-type]
    # Sampled events, hop by hop: connector, citadel, bus, send.
    roots = by_name["raven.event"]
    assert roots, "sampled events were traced"
    assert len(by_name["pipeline.ingest"]) == len(roots)
    assert len(by_name["connector.decode"]) == len(roots)
    assert by_name["citadel.validate"]
    ids = {s.context.span_id: s for s in spans if s.context is not None}
    for send in by_name["stream.send"]:
        hops = []
        span: ReadableSpan | None = send
        while span is not None:
            hops.append(span.name)
            span = ids[span.parent.span_id] if span.parent is not None else None
        assert hops == ["stream.send", "bus.publish", "pipeline.ingest", "raven.event"]
