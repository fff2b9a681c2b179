"""Candles from trades: OHLCV by exchange time, exact volumes, closes, late trades."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raven.config import CandlesConfig, ConfigError, config_from_dict
from raven.core.candles import CandleBuilder, CandleSet, RollupBuilder
from raven.core.decimals import multiply
from raven.model import Candle, Trade
from raven.types import S_NS, Side

EX = "binance_futures"
T0 = 1_700_000_040 * S_NS  # a whole minute


def trade(offset_ms: int, price: str, qty: str, trade_id: int = 0) -> Trade:
    t = T0 + offset_ms * 1_000_000
    return Trade(EX, "BTCUSDT", price, qty, Side.BUY, trade_id, t, t + 5_000_000)


def run(candles: CandleSet, trades: list[Trade]) -> list[Candle]:
    """Feed trades; returns every closed bar and the open ones at the end."""
    out: list[Candle] = []
    for t in trades:
        out += [closed for _, closed in candles.add(t)]
    out += [c for b in candles.builders if (c := b.current()) is not None]
    return out


def test_ohlcv_of_one_bar() -> None:
    candles = CandleSet(EX, "BTCUSDT", ("1m",))
    [bar] = run(candles, [trade(0, "100.0", "0.1"), trade(10, "101.5", "0.2"),
                          trade(20, "99.5", "0.3"), trade(30, "100.5", "0.4")])  # fmt: skip
    assert (bar.open, bar.high, bar.low, bar.close) == ("100.0", "101.5", "99.5", "100.5")
    assert bar.volume == "1.0"
    assert bar.quote_volume == "100.35"  # 10.00 + 20.30 + 29.85 + 40.20, exactly
    assert bar.trade_count == 4
    assert (bar.open_time, bar.close_time) == (T0, T0 + 60 * S_NS)
    assert not bar.closed
    assert bar.from_trades


def test_bar_closes_on_the_first_trade_past_its_end() -> None:
    candles = CandleSet(EX, "BTCUSDT", ("1s",))
    bars = run(candles, [trade(0, "1.0", "1"), trade(999, "2.0", "1"), trade(1000, "3.0", "1"),
                         trade(3500, "4.0", "1")])  # fmt: skip
    assert [(b.open, b.close, b.closed, b.trade_count) for b in bars] == [
        ("1.0", "2.0", True, 2),
        ("3.0", "3.0", True, 1),
        ("4.0", "4.0", False, 1),  # no bars for the seconds without trades
    ]
    assert bars[2].open_time == T0 + 3 * S_NS


def test_volumes_are_exact_where_floats_are_not() -> None:
    candles = CandleSet(EX, "BTCUSDT", ("1h",))
    trades = [trade(i, "0.1", "0.1") for i in range(1000)]
    [bar] = run(candles, trades)
    assert bar.volume == "100.0"
    assert Decimal(bar.quote_volume) == Decimal("10")
    assert sum([0.1] * 1000) != 100.0  # what a float sum would have said


def test_late_trade_is_counted_and_left_out() -> None:
    builder = CandleBuilder(EX, "BTCUSDT", "1s")
    candles = CandleSet(EX, "BTCUSDT", ())
    for t in (trade(1500, "2.0", "1"), trade(500, "9.0", "1")):
        qty = candles.number(t.quantity)
        builder.add(t, float(t.price), qty, multiply(candles.number(t.price), qty))
    bar = builder.current()
    assert bar is not None
    assert bar.high == "2.0"
    assert builder.late == 1


def test_every_interval_is_built_at_once() -> None:
    candles = CandleSet(EX, "BTCUSDT", ("1s", "1m", "5m", "1h"))
    bars = run(candles, [trade(0, "1.0", "1"), trade(61_000, "2.0", "1")])
    by_interval: dict[str, list[Candle]] = {}
    for bar in bars:
        by_interval.setdefault(bar.interval, []).append(bar)
    assert [b.trade_count for b in by_interval["1s"]] == [1, 1]
    assert [b.trade_count for b in by_interval["1m"]] == [1, 1]
    assert [b.trade_count for b in by_interval["1h"]] == [2]


def test_candle_config_rejects_bad_intervals() -> None:
    assert CandlesConfig(intervals=("1s", "15m", "4h", "1d")).intervals
    with pytest.raises(ConfigError, match="bad interval '1x'"):
        config_from_dict({"candles": {"intervals": ["1x"]}})
    with pytest.raises(ConfigError, match="must divide a day"):
        config_from_dict({"candles": {"intervals": ["7m"]}})


def direct(intervals: tuple[str, ...], trades: list[Trade]) -> list[Candle]:
    """The same candles with every interval fed trade by trade (no roll-up)."""
    out: list[Candle] = []
    for name in intervals:
        candles = CandleSet(EX, "BTCUSDT", ())
        builder = CandleBuilder(EX, "BTCUSDT", name)
        for t in trades:
            qty = candles.number(t.quantity)
            closed = builder.add(t, float(t.price), qty, multiply(candles.number(t.price), qty))
            if closed is not None:
                out.append(closed)
        if (current := builder.current()) is not None:
            out.append(current)
    return out


@given(
    st.lists(
        st.tuples(st.integers(0, 400_000), st.integers(1, 2000), st.integers(1, 99)),
        min_size=1,
        max_size=300,
    ).map(sorted)
)
def test_rolled_up_intervals_equal_intervals_built_from_every_trade(
    ticks: list[tuple[int, int, int]],
) -> None:
    intervals = ("1s", "5s", "1m", "5m")
    trades = [trade(ms, f"{p}.{p % 10}", f"0.{q:02d}") for ms, p, q in ticks]
    rolled = run(CandleSet(EX, "BTCUSDT", intervals), trades)
    key = lambda c: (c.interval, c.open_time, c.closed)  # noqa: E731
    assert sorted(rolled, key=key) == sorted(direct(intervals, trades), key=key)


def test_an_interval_that_is_not_a_multiple_is_fed_directly() -> None:
    trades = [trade(ms, "1.0", "1") for ms in (0, 3_000, 7_500, 14_000, 21_100)]
    intervals = ("2s", "3s", "6s")
    candles = CandleSet(EX, "BTCUSDT", intervals)
    assert not isinstance(candles.builders[1], RollupBuilder)  # 3s is no multiple of 2s
    assert isinstance(candles.builders[2], RollupBuilder)
    key = lambda c: (c.interval, c.open_time, c.closed)  # noqa: E731
    assert sorted(run(candles, trades), key=key) == sorted(direct(intervals, trades), key=key)
