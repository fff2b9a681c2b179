"""A candle replay at high speed gives exactly the candles of the same replay in real time."""

from __future__ import annotations

import asyncio
import random
import time

import msgspec

from raven.model import Candle, Trade
from raven.types import S_NS, Kind, Side
from tests.api.conftest import EXCHANGE, ServerFactory, connect, open_stream

DURATION_MS = 2_500  # of exchange time: crosses at least two 1 s boundaries
EVENTS_TIMEOUT_S = 30.0  # generous: fail with the counts rather than hang


def recorded_trades() -> list[Trade]:
    rng = random.Random(4)
    start = (time.time_ns() // S_NS - 10) * S_NS + 700 * 1_000_000  # mid-second, 10 s ago
    trades = []
    offset = 0
    price = 1000
    for trade_id in range(1, 10_000):
        offset += rng.choice((5, 20, 40, 90))
        if offset > DURATION_MS:
            break
        price += rng.choice((-1, 0, 1))
        t = start + offset * 1_000_000
        qty = f"0.{rng.randint(1, 999):03d}"
        trades.append(
            Trade(EXCHANGE, "BTCUSDT", f"{price / 10:.1f}", qty, Side.BUY, trade_id, t, t)
        )
    return trades


async def replay(make_server: ServerFactory, trades: list[Trade], speed: float) -> list[Candle]:
    async with make_server() as server, connect(server.target) as stub, open_stream(stub) as stream:
        await stream.subscribe(kinds=[Kind.CANDLE], candle_intervals=["1s", "1m"])
        await server.feed(trades, speed=speed)
        # Every trade updates both intervals; the closes come on top of that.
        stats = server.app.pipeline.stats
        expected = 2 * len(trades) + stats.candles_closed
        got = await asyncio.wait_for(
            stream.events_until(lambda out: len(out) >= expected), EVENTS_TIMEOUT_S
        )
        assert len(got) == expected, (
            f"{len(got)} candle events, expected {expected}: {len(trades)} trades, "
            f"{stats.candles_closed} closed, {stats.rejected} rejected, {stats.accepted} accepted"
        )
    return [msgspec.structs.replace(c, receive_time=0) for c in got if isinstance(c, Candle)]


async def test_fast_replay_equals_real_time(make_server: ServerFactory) -> None:
    trades = recorded_trades()
    real_time = await replay(make_server, trades, speed=1.0)
    fast = await replay(make_server, trades, speed=100.0)
    assert fast == real_time
    closed = [c for c in real_time if c.closed and c.interval == "1s"]
    assert len(closed) >= 2
    assert sum(c.trade_count for c in closed) < len(trades)
    for bar in closed:
        assert bar.close_time - bar.open_time == S_NS
        assert bar.open_time % S_NS == 0
