"""A lagging stream's frames: the Gap marker of a bulk catch-up, then the newest events."""

from __future__ import annotations

from raven import codec
from raven.api.streams import ClientStream
from raven.core.bus import Bus, Topic
from raven.model import Trade
from raven.types import Kind, Side
from raven.v1 import market_data_pb2 as pb

SYMBOLS = [f"S{i:02d}USDT" for i in range(20)]  # more topics than a direct subscriber's


def trade(n: int) -> bytes:
    symbol = SYMBOLS[n % len(SYMBOLS)]
    return codec.encode(Trade("x", symbol, "1.5", "2", Side.BUY, n, n, n))


def test_a_caught_up_laggard_gets_a_gap_marker_with_the_exact_count() -> None:
    bus, stream = Bus(), ClientStream("peer", 100, None)
    topics: list[Topic] = [(Kind.TRADE, "x", symbol, "") for symbol in SYMBOLS]
    for topic in topics:
        bus.subscribe(stream.sub, topic)
    assert not stream.sub.direct, "a log reader"
    for n in range(1000):
        bus.publish(topics[n % len(topics)], trade(n), n)
    stream.sub.settle()  # as its next deadline would
    frame = stream.next_frame(500)
    assert frame is not None
    response = pb.StreamResponse.FromString(frame)
    gap, *events = response.events
    assert gap.WhichOneof("payload") == "gap"
    assert gap.gap.dropped == stream.sub.stats.dropped == 900
    assert [e.trade.trade_id for e in events] == list(range(900, 1000)), "the newest, in order"
    assert response.first_sequence == 1
