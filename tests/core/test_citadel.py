"""The citadel on whole events: every rule with good and bad data, counters, logs."""

from __future__ import annotations

import logging

import pytest

from raven.config import ValidationConfig
from raven.core import rules
from raven.core.citadel import Citadel
from raven.model import (
    BookDelta,
    BookSnapshot,
    Candle,
    Funding,
    Liquidation,
    Quote,
    Status,
    Trade,
)
from raven.types import S_NS, Side, StatusKind

EX = "binance_futures"
NOW = 1_700_000_000 * S_NS
INCREMENTS = {"BTCUSDT": ("0.10", "0.001")}


def citadel(**settings: object) -> Citadel:
    config = ValidationConfig(**settings)  # type: ignore[arg-type]
    return Citadel(config, lambda exchange, symbol: INCREMENTS.get(symbol))


def trade(price: str = "43250.10", qty: str = "0.005", trade_id: int = 1, **kw: int) -> Trade:
    return Trade(EX, "BTCUSDT", price, qty, Side.BUY, trade_id, kw.get("et", NOW), NOW)


def quote(bid: str, ask: str) -> Quote:
    return Quote(EX, "BTCUSDT", bid, "1.000", ask, "2.000", 9, NOW, NOW)


def rejected(c: Citadel, rule: str, symbol: str = "BTCUSDT") -> int:
    return c.rejected.get((rule, EX, symbol), 0)


def test_good_trade_passes_unchanged() -> None:
    c = citadel()
    event = trade()
    assert c.check(event) is event
    assert not c.rejected


@pytest.mark.parametrize("price", ["0", "-1", "nan", "inf", "1e5", "abc", ""])
def test_non_positive_or_non_finite_price_is_rejected(price: str) -> None:
    c = citadel()
    assert c.check(trade(price=price)) is None
    assert rejected(c, rules.POSITIVE_FINITE) == 1


def test_non_positive_quantity_is_rejected() -> None:
    c = citadel()
    assert c.check(trade(qty="0")) is None
    assert rejected(c, rules.POSITIVE_FINITE) == 1


def test_price_off_the_tick_is_rejected_and_near_it_is_snapped() -> None:
    c = citadel()
    assert c.check(trade(price="43250.15")) is None
    assert rejected(c, rules.PRICE_TICK) == 1
    snapped = c.check(trade(price="43250.1000000001", trade_id=2))
    assert isinstance(snapped, Trade)
    assert snapped.price == "43250.10"
    assert c.normalized[(rules.PRICE_TICK, EX, "BTCUSDT")] == 1


def test_quantity_off_the_step_is_rejected_and_near_it_is_snapped() -> None:
    c = citadel()
    assert c.check(trade(qty="0.0055")) is None
    assert rejected(c, rules.QUANTITY_STEP) == 1
    snapped = c.check(trade(qty="0.0049999999999", trade_id=2))
    assert isinstance(snapped, Trade)
    assert snapped.quantity == "0.005"


def test_grid_rules_skip_symbols_without_known_increments() -> None:
    c = citadel()
    event = Trade(EX, "ETHUSDT", "2000.123456", "0.1", Side.SELL, 1, NOW, NOW)
    assert c.check(event) is event


def test_increments_are_asked_again_once_known() -> None:
    known: dict[str, tuple[str, str]] = {}
    c = Citadel(ValidationConfig(), lambda exchange, symbol: known.get(symbol))
    assert c.check(trade(price="43250.15")) is not None  # unknown: no grid check
    known["BTCUSDT"] = ("0.10", "0.001")
    c.refresh()
    assert c.check(trade(price="43250.15", trade_id=2)) is None
    assert rejected(c, rules.PRICE_TICK) == 1


def test_price_far_from_the_last_trade_is_rejected() -> None:
    c = citadel(max_price_deviation=0.1)
    assert c.check(trade(price="40000.00", trade_id=1)) is not None
    assert c.check(trade(price="44000.00", trade_id=2)) is not None  # +10%: inside
    assert c.check(trade(price="50000.00", trade_id=3)) is None
    assert rejected(c, rules.PRICE_BAND) == 1
    assert c.check(trade(price="43000.00", trade_id=4)) is not None


def test_the_mark_price_is_a_reference_too() -> None:
    c = citadel(max_price_deviation=0.05)
    funding = Funding(EX, "BTCUSDT", "40000.00", "40001.00", "0", "0.0001", NOW, NOW, NOW)
    assert c.check(funding) is funding
    assert c.check(trade(price="45000.00")) is None
    assert rejected(c, rules.PRICE_BAND) == 1


def test_band_reanchors_after_consecutive_misses() -> None:
    c = citadel(max_price_deviation=0.1, price_band_reanchor_after=3)
    assert c.check(trade(price="100.00", trade_id=1)) is not None  # a bad first print
    assert c.check(trade(price="40000.00", trade_id=2)) is None
    assert c.check(trade(price="40000.10", trade_id=3)) is None
    assert c.check(trade(price="40000.20", trade_id=4)) is not None  # third miss: new reference
    assert c.check(trade(price="40000.30", trade_id=5)) is not None
    assert rejected(c, rules.PRICE_BAND) == 2


def test_exchange_time_in_the_future_or_past_is_rejected() -> None:
    c = citadel(max_future_s=10.0, max_past_s=300.0)
    assert c.check(trade(et=NOW + 11 * S_NS)) is None
    assert c.check(trade(et=NOW - 301 * S_NS)) is None
    assert rejected(c, rules.TIME_FUTURE) == 1
    assert rejected(c, rules.TIME_PAST) == 1
    assert c.check(trade(et=NOW - 2 * S_NS)) is not None


def test_old_rest_snapshot_is_not_too_old() -> None:
    c = citadel(max_past_s=300.0)
    snap = BookSnapshot(EX, "BTCUSDT", (("1.00", "1.000"),), (), 5, NOW - 3600 * S_NS, NOW)
    assert c.check(snap) is snap  # a quiet book's last change can be an hour old


def test_duplicate_trade_id_is_dropped() -> None:
    c = citadel()
    assert c.check(trade(trade_id=7)) is not None
    assert c.check(trade(trade_id=7)) is None
    assert c.check(trade(trade_id=8)) is not None
    assert rejected(c, rules.DUPLICATE_TRADE) == 1


def test_crossed_or_locked_quote_is_rejected() -> None:
    c = citadel()
    assert c.check(quote("100.00", "100.10")) is not None
    assert c.check(quote("100.10", "100.10")) is None
    assert c.check(quote("100.20", "100.10")) is None
    assert rejected(c, rules.CROSSED_QUOTE) == 2


def test_book_levels_are_checked_and_zero_removes() -> None:
    c = citadel()
    good = BookDelta(EX, "BTCUSDT", (("100.00", "0"),), (("100.10", "1.000"),), 1, 2, 1, NOW, NOW)
    assert c.check(good) is good
    bad = BookDelta(EX, "BTCUSDT", (("100.05", "1.000"),), (), 1, 3, 2, NOW, NOW)
    assert c.check(bad) is None
    assert rejected(c, rules.PRICE_TICK) == 1
    zero_in_snapshot = BookSnapshot(EX, "BTCUSDT", (("100.00", "0"),), (), 5, NOW, NOW)
    assert c.check(zero_in_snapshot) is None


def test_book_levels_are_snapped_in_a_copy() -> None:
    c = citadel()
    delta = BookDelta(
        EX, "BTCUSDT", (("100.00", "1.000"), ("99.9000000001", "2.000")), (), 1, 2, 1, NOW, NOW
    )
    out = c.check(delta)
    assert isinstance(out, BookDelta)
    assert out.bids == (("100.00", "1.000"), ("99.90", "2.000"))


def test_klines_funding_and_liquidations() -> None:
    c = citadel()
    kline = Candle(EX, "BTCUSDT", "1m", NOW, NOW + 60 * S_NS, "1.0", "2.0", "0.5", "1.5", "0",
                   "0", 0, False, False, NOW, NOW)  # fmt: skip
    assert c.check(kline) is kline
    bad_kline = Candle(EX, "BTCUSDT", "1m", NOW, NOW + 60 * S_NS, "1.0", "-2", "0.5", "1.5", "0",
                       "0", 0, False, False, NOW, NOW)  # fmt: skip
    assert c.check(bad_kline) is None
    funding = Funding(EX, "BTCUSDT", "40000.00", "40001.00", "0", "-0.0001", NOW, NOW, NOW)
    assert c.check(funding) is funding
    assert c.check(Funding(EX, "BTCUSDT", "0", "1", "0", "0", NOW, NOW, NOW)) is None
    liq = Liquidation(EX, "BTCUSDT", Side.SELL, "40100.00", "0.010", "0", "0", "NEW", NOW, NOW)
    assert c.check(liq) is liq
    far = Liquidation(EX, "BTCUSDT", Side.SELL, "90000.00", "0.010", "0", "0", "NEW", NOW, NOW)
    assert c.check(far) is None
    assert rejected(c, rules.POSITIVE_FINITE) == 2
    assert rejected(c, rules.PRICE_BAND) == 1


def test_status_events_are_not_checked() -> None:
    c = citadel()
    status = Status(EX, "", StatusKind.FEED_CONNECTED, "", 0, 0)
    assert c.check(status) is status
    assert c.checked == 0


def test_rejections_are_logged_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    c = citadel(log_interval_s=3600.0)
    with caplog.at_level(logging.WARNING, logger="raven.core.citadel"):
        for i in range(50):
            c.check(trade(price="0", trade_id=i))
    lines = [r for r in caplog.records if "positive_finite" in r.getMessage()]
    assert len(lines) == 1
    assert rejected(c, rules.POSITIVE_FINITE) == 50


def test_counters_are_per_symbol() -> None:
    c = citadel()
    c.check(trade(price="0"))
    c.check(Trade(EX, "ETHUSDT", "0", "1", Side.BUY, 1, NOW, NOW))
    assert rejected(c, rules.POSITIVE_FINITE, "BTCUSDT") == 1
    assert rejected(c, rules.POSITIVE_FINITE, "ETHUSDT") == 1
