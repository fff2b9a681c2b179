"""Tracing: free when off; spans per operation, per gRPC call and per sampled event."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from raven.app import RavenApp
from raven.client import AsyncRavenClient
from raven.config import TracingConfig
from raven.model import Event, Trade
from raven.ops import tracing
from raven.sim.server import Simulator
from raven.types import Kind, Side
from raven.v1 import market_data_pb2 as pb
from tests.conftest import server_config
from tests.helpers import wait_until


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


async def test_server_spans_for_grpc_calls_reconnects_and_sampled_events(sim: Simulator) -> None:
    tracing_section: dict[str, object] = {
        "enabled": True,
        "exporter": "memory",
        "event_sample_rate": 0.1,
    }
    app = RavenApp(server_config(sim, tracing=tracing_section))
    assert app.tracing is not None
    await app.start()
    try:
        connections = app.connectors[0].connections  # type: ignore[attr-defined]
        await wait_until(lambda: all(c.connected for c in connections), what="connections")
        async with AsyncRavenClient(f"127.0.0.1:{app.grpc.port}") as client:
            await client.snapshot("BTCUSDT")
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await client.stub.GetSnapshot(pb.GetSnapshotRequest(symbol="NOPE"))
            assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            async with client.stream(["BTCUSDT"], [Kind.TRADE]) as stream:
                sim.feed_enabled.set()
                await wait_until(lambda: app.pipeline.ingested > 50, what="events")
                sim.feed_enabled.clear()
                assert stream.stream_id
        exporter = app.tracing.exporter
        assert isinstance(exporter, InMemorySpanExporter)
        await wait_until(
            lambda: any("StreamMarketData" in s.name for s in exporter.get_finished_spans()),
            what="the stream's span to end",
        )
        spans = list(exporter.get_finished_spans())
    finally:
        await app.stop()
    assert not tracing.enabled(), "stopping the app deactivates its tracing"

    by_name: dict[str, list[ReadableSpan]] = {}
    for s in spans:
        by_name.setdefault(s.name, []).append(s)
    snapshot_calls = by_name["grpc raven.v1.MarketDataService/GetSnapshot"]
    codes = sorted(int((s.attributes or {})["rpc.grpc.status_code"]) for s in snapshot_calls)  # type: ignore[arg-type]
    assert codes == [0, grpc.StatusCode.INVALID_ARGUMENT.value[0]]
    assert by_name["grpc raven.v1.MarketDataService/StreamMarketData"]
    connects = by_name["connector.connect"]
    assert {(s.attributes or {})["connection"] for s in connects} == {c.label for c in connections}
    assert by_name["raven.event"], "sampled events were traced"
    assert len(by_name["pipeline.ingest"]) == len(by_name["raven.event"])
