"""`max_frames_per_s`: the open streams share a frame budget, so a stream's
frames are spaced (bigger, fewer) and nothing is lost or reordered."""

from __future__ import annotations

import asyncio
import time

from raven.model import Trade
from raven.types import Kind, Side
from tests.api.conftest import EXCHANGE, ServerFactory, connect, open_stream

BUDGET = 20.0  # frames/s over all streams: one stream writes at most every 50 ms
BATCHES, PER_BATCH = 20, 10


async def test_a_streams_frames_are_spaced_by_the_budget_and_lose_nothing(
    make_server: ServerFactory,
) -> None:
    now = time.time_ns()
    trades = [Trade(EXCHANGE, "BTCUSDT", "100.0", "0.001", Side.BUY, i + 1, now, now)
              for i in range(BATCHES * PER_BATCH)]  # fmt: skip
    async with (
        make_server(server={"max_frames_per_s": BUDGET}) as server,
        connect(server.target) as stub,
        open_stream(stub) as stream,
    ):
        await stream.subscribe(kinds=[Kind.TRADE])
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(BATCHES):
            await server.feed(trades[i * PER_BATCH : (i + 1) * PER_BATCH])
            await asyncio.sleep(0.01)
        frames, got = 0, list[int]()
        while len(got) < len(trades):
            frame = await stream.read()
            frames += bool(frame.events)
            got += [m.trade.trade_id for m in frame.events if m.HasField("trade")]
        elapsed = loop.time() - start
    assert got == [t.trade_id for t in trades]  # all of them, in order (sequence checked too)
    assert stream.gaps == 0
    # One frame per 1/BUDGET s at most (the first may go at once); a slower
    # machine only makes fewer, bigger frames.
    assert frames <= elapsed * BUDGET + 1, (frames, elapsed)
    assert frames < BATCHES
