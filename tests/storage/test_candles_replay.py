"""Candles built from trades, and order books rebuilt from stored updates (no I/O)."""

from __future__ import annotations

import pytest

from raven.model import BookDelta, BookSnapshot, Trade
from raven.storage.candles import CandleBuilder, interval_ns
from raven.storage.replay import BookGapError, BookReplayer
from raven.types import S_NS, Side


@pytest.mark.parametrize(("text", "ns"), [("1s", S_NS), ("15m", 900 * S_NS), ("1d", 86400 * S_NS)])
def test_intervals(text: str, ns: int) -> None:
    assert interval_ns(text) == ns


@pytest.mark.parametrize("text", ["0s", "1w", "25h", "m", "1.5m", "", "2d", "500ms"])
def test_bad_intervals(text: str) -> None:
    with pytest.raises(ValueError, match="bad candle interval"):
        interval_ns(text)


def trade(t_s: float, price: str, qty: str) -> Trade:
    ns = int(t_s * S_NS)
    return Trade("ex", "S", price, qty, Side.BUY, 1, ns, ns + 1)


def test_bars_are_exact_and_closed_when_the_next_starts() -> None:
    builder = CandleBuilder("1m", range_end_ns=150 * S_NS)
    trades = [trade(1, "10.0", "0.10"), trade(2, "12.50", "0.2"), trade(3, "9.9", "0.001"),
              trade(61, "11", "1"), trade(130, "0.00000001", "100000000")]  # fmt: skip
    out = [builder.add(i, t) for i, t in enumerate(trades)]
    done = [c for c in out if c is not None]
    last = builder.finish()
    assert last is not None
    first, second = (c for _, c in done)
    assert (first.open, first.high, first.low, first.close) == ("10.0", "12.50", "9.9", "9.9")
    assert (first.volume, first.quote_volume, first.trade_count) == ("0.301", "3.5099", 3)
    assert (first.open_time, first.close_time, first.closed) == (0, 60 * S_NS, True)
    assert done[0][0] == 2  # keyed by its last trade
    assert (second.open_time, second.volume) == (60 * S_NS, "1")
    assert last[1].quote_volume == "1.00000000"  # no exponent notation
    assert last[1].closed is False  # the bar runs to 180 s, the range ends at 150 s
    assert CandleBuilder("1m", 0).finish() is None


def book(update_id: int) -> BookSnapshot:
    return BookSnapshot("ex", "S", (("10", "1"), ("9", "2")), (("11", "1"),), update_id, 0, 0)


def delta(first: int, last: int, prev: int, bids: tuple[tuple[str, str], ...]) -> BookDelta:
    return BookDelta("ex", "S", bids, (), first, last, prev, last, last)


def test_replay_skips_old_updates_accepts_overlap_and_refuses_gaps() -> None:
    r = BookReplayer("ex", "S")
    r.load(book(100))
    r.apply(delta(90, 99, 89, (("10", "5"),)))  # older than the snapshot: skipped
    r.apply(delta(95, 103, 94, (("10", "0"),)))  # straddles it: applied
    r.apply(delta(104, 104, 103, (("8", "3"),)))
    assert r.snapshot(0).bids == (("9", "2"), ("8", "3"))
    assert r.snapshot(1).bids == (("9", "2"),)
    assert (r.snapshot().update_id, r.applied) == (104, 2)
    with pytest.raises(BookGapError, match="between update ids 104 and 110"):
        r.apply(delta(111, 112, 110, ()))
