"""The client against a real server: reconnects after a restart, gaps the server marks."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from raven.api.streams import GAP_REASON
from raven.app import RavenApp
from raven.client import AsyncRavenClient, Gap, RavenClient
from raven.core.bus import Policy
from raven.model import Event, Trade
from raven.sim.server import Simulator
from raven.types import Kind
from tests.conftest import server_config
from tests.helpers import wait_until

# A receive window of 1 KiB (and no automatic growth) so that a client that stops
# reading holds the server back at once, instead of after megabytes of buffering.
SMALL_WINDOW = (("grpc.http2.lookahead_bytes", 1024), ("grpc.http2.bdp_probe", 0))


async def test_client_reconnects_and_resubscribes_after_the_server_restarts(
    sim: Simulator,
) -> None:
    first = RavenApp(server_config(sim))
    await first.start()
    port = first.grpc.port
    second: RavenApp | None = None
    items: list[Event | Gap] = []
    try:
        async with (
            AsyncRavenClient(f"127.0.0.1:{port}") as client,
            client.stream(["BTCUSDT"], [Kind.TRADE]) as stream,
        ):

            async def collect() -> None:
                async for item in stream.items():
                    items.append(item)

            reader = asyncio.create_task(collect())
            first_id = stream.stream_id
            sim.feed_enabled.set()
            await wait_until(lambda: len(items) >= 5, what="events from the first server")

            await first.stop()  # the server goes away...
            second = RavenApp(server_config(sim, server={"port": port}))
            await second.start()  # ...and comes back on the same port
            await wait_until(lambda: stream.reconnects > 0, timeout=30, what="a reconnect")
            before = next(n for n, i in enumerate(items) if isinstance(i, Gap))
            await wait_until(
                lambda: sum(isinstance(i, Trade) for i in items[before:]) >= 5,
                timeout=30,
                what="events from the restarted server",
            )
            reader.cancel()
            assert stream.reconnects == 1
            assert stream.stream_id != first_id
            assert stream.stream_id in second.registry.streams, "resubscribed on the new server"
    finally:
        sim.feed_enabled.clear()
        await first.stop()
        if second is not None:
            await second.stop()
    gaps = [i for i in items if isinstance(i, Gap)]
    assert len(gaps) == 1
    assert gaps[0].reconnect
    assert gaps[0].dropped == 0
    assert "reconnected after" in gaps[0].reason
    trades = [i for i in items if isinstance(i, Trade)]
    assert {t.symbol for t in trades} == {"BTCUSDT"}
    # Trade ids only move forward across the restart (the new server starts with the
    # latest state, which may repeat the last trade seen before the restart).
    ids = [t.trade_id for t in trades]
    assert ids == sorted(ids)


async def test_client_reports_the_gap_the_server_marks_when_it_falls_behind(
    sim: Simulator,
) -> None:
    app = RavenApp(server_config(sim, server={"queue_size": 5}))
    await app.start()
    try:
        target = f"127.0.0.1:{app.grpc.port}"
        async with (
            AsyncRavenClient(target, options=SMALL_WINDOW) as client,
            client.stream(
                ["BTCUSDT", "ETHUSDT"], [Kind.TRADE], policy=Policy.DROP_OLDEST
            ) as stream,
        ):
            await wait_until(lambda: bool(app.registry.streams), what="the stream to open")
            server_side = app.registry.streams[stream.stream_id].sub
            await wait_until(
                lambda: (Kind.TRADE, "binance_futures", "ETHUSDT", "") in server_side.topics,
                what="the subscription",
            )
            sim.feed_enabled.set()  # ...while the client reads nothing
            await wait_until(lambda: server_side.stats.dropped >= 20, timeout=30, what="drops")
            sim.feed_enabled.clear()

            trades: list[Trade] = []
            gaps: list[Gap] = []

            async def read() -> None:
                async for item in stream.items():
                    if isinstance(item, Gap):
                        gaps.append(item)
                    elif isinstance(item, Trade):
                        trades.append(item)

            reader = asyncio.create_task(read())
            # Frames still in flight when the feed stopped may cause a few more drops;
            # wait until the server has nothing left and the client has seen it all.
            await wait_until(
                lambda: (
                    not server_side.queue
                    and not server_side.pending_gap
                    and stream.gaps == server_side.stats.dropped
                    and len(trades) == server_side.stats.sent
                ),
                timeout=30,
                what="the client to catch up",
            )
            dropped_on_server = server_side.stats.dropped
            reader.cancel()
    finally:
        await app.stop()
    assert gaps
    assert all(g.reason == GAP_REASON and g.dropped > 0 for g in gaps)
    assert sum(g.dropped for g in gaps) == dropped_on_server
    assert list(stream.gap_log) == gaps
    ids = [t.trade_id for t in trades if t.symbol == "BTCUSDT"]
    assert ids == sorted(ids), "what did arrive is in order"


async def test_a_request_the_server_rejects_is_not_retried(
    sim: Simulator, app: RavenApp, client: AsyncRavenClient
) -> None:
    async with client.stream(["NOPE"], [Kind.TRADE]) as stream:
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            async for _ in stream:
                pass
    assert failure.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown symbol 'NOPE'" in (failure.value.details() or "")
    assert stream.reconnects == 0


async def test_snapshot_returns_typed_events(
    sim: Simulator, app: RavenApp, client: AsyncRavenClient
) -> None:
    sim.feed_enabled.set()
    await wait_until(
        lambda: (
            (r := app.state.get("binance_futures", "BTCUSDT")) is not None
            and r.trade is not None
            and r.quote is not None
        ),
        what="state",
    )
    sim.feed_enabled.clear()
    events = await client.snapshot("btcusdt")
    # the last trade, the quote, and the open candles built from trades
    assert {e.kind for e in events} == {Kind.TRADE, Kind.QUOTE, Kind.CANDLE}
    assert all(e.symbol == "BTCUSDT" for e in events)


async def test_blocking_client_streams_typed_events(sim: Simulator, app: RavenApp) -> None:
    sim.feed_enabled.set()
    try:

        def run() -> list[Event]:
            with RavenClient(f"127.0.0.1:{app.grpc.port}") as client:
                out: list[Event] = []
                for event in client.events(["ETHUSDT"], [Kind.TRADE, Kind.QUOTE]):
                    out.append(event)
                    if len(out) == 20:
                        break
            # Closed, not left to the garbage collector (an unclosed loop
            # warns from whichever later test happens to collect it).
            assert client._loop.is_closed()
            return out

        events = await asyncio.to_thread(run)
    finally:
        sim.feed_enabled.clear()
    assert len(events) == 20
    assert {e.symbol for e in events} == {"ETHUSDT"}
    assert {e.kind for e in events} <= {Kind.TRADE, Kind.QUOTE}
