"""Each validation rule alone, with good and bad data; exact decimal helpers."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raven.core import rules
from raven.core.decimals import Increment, Scaled, add, format_scaled, multiply, parse


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", (12, 0)),
        ("12.50", (1250, 2)),
        ("0.001", (1, 3)),
        ("0", (0, 0)),
    ],
)
def test_parse_plain_decimals(text: str, value: Scaled) -> None:
    assert parse(text) == value


@pytest.mark.parametrize(
    "text", ["", ".", "1.", ".5", "-1", "+1", "1e5", "nan", "inf", " 1", "1_0", "١٢", "1.2.3"]
)
def test_parse_rejects_anything_else(text: str) -> None:
    assert parse(text) is None


def test_parse_signed() -> None:
    assert parse("-0.0001", signed=True) == (-1, 4)
    assert parse("-x", signed=True) is None


@given(st.decimals(min_value=0, max_value=10**9, places=8, allow_nan=False))
def test_format_round_trips(value: Decimal) -> None:
    text = format(value, "f")
    parsed = parse(text)
    assert parsed is not None
    assert Decimal(format_scaled(*parsed)) == value


def test_exact_sums_and_products() -> None:
    total = add((1, 1), (2, 1))  # 0.1 + 0.2, which floats get wrong
    assert format_scaled(*total) == "0.3"
    assert format_scaled(*add((15, 1), (25, 3))) == "1.525"
    assert format_scaled(*multiply((432501, 1), (3, 3))) == "129.7503"


def test_positive_finite_good_and_bad() -> None:
    assert rules.positive_finite("43250.10") == (4325010, 2)
    for bad in ("0", "0.000", "-1", "nan", "inf", "1e3", "", "abc"):
        assert rules.positive_finite(bad) is None, bad
    assert rules.positive_finite("0.000", allow_zero=True) == (0, 3)


def test_finite_accepts_signed_rates() -> None:
    assert rules.finite("-0.00010000")
    assert not rules.finite("NaN")


def test_on_grid_keeps_values_on_the_tick() -> None:
    tick = Increment("0.10")
    value = (4325010, 2)
    assert rules.on_grid(value, tick) is value
    assert rules.on_grid((432501, 1), tick) is not None  # "43250.1": same price


def test_on_grid_snaps_rounding_errors() -> None:
    tick = Increment("0.1")
    snapped = rules.on_grid(parse("0.30000000000000004"), tick)  # type: ignore[arg-type]
    assert snapped is not None
    assert format_scaled(*snapped) == "0.3"
    below = rules.on_grid(parse("43250.0999999"), Increment("0.10"))  # type: ignore[arg-type]
    assert below is not None
    assert format_scaled(*below) == "43250.10"


def test_on_grid_rejects_off_grid_values() -> None:
    assert rules.on_grid((4325015, 2), Increment("0.10")) is None  # 43250.15
    assert rules.on_grid((15, 4), Increment("0.001")) is None  # 0.0015 on a 0.001 step


def test_on_grid_without_increment_accepts() -> None:
    value = (4325015, 2)
    assert rules.on_grid(value, None) is value


@given(st.integers(min_value=1, max_value=10**12), st.integers(min_value=0, max_value=8))
def test_grid_is_exact_for_any_multiple(units: int, scale: int) -> None:
    step = Increment(format_scaled(5, scale))  # 5 * 10**-scale
    on = (units * 5, scale)
    assert step.snap(on) is on
    off = (units * 5 + 2, scale)  # 40% of a step away: never a rounding error
    assert step.snap(off) is None


def test_increment_must_be_positive() -> None:
    with pytest.raises(ValueError, match="not a positive decimal"):
        Increment("0")


def test_price_band() -> None:
    assert rules.within_band(105.0, 100.0, 0.1)
    assert rules.within_band(90.0, 100.0, 0.1)
    assert not rules.within_band(111.0, 100.0, 0.1)
    assert not rules.within_band(89.0, 100.0, 0.1)
    assert rules.within_band(1e9, 0.0, 0.1)  # no reference yet
    assert rules.within_band(1e9, 100.0, 0.0)  # band off


def test_exchange_time_window() -> None:
    second = 1_000_000_000
    now = 1_700_000_000 * second
    assert rules.exchange_time(now - second, now, 10 * second, 300 * second) == ""
    assert rules.exchange_time(now + 11 * second, now, 10 * second, 300 * second) == (
        rules.TIME_FUTURE
    )
    assert rules.exchange_time(now - 301 * second, now, 10 * second, 300 * second) == (
        rules.TIME_PAST
    )
    assert rules.exchange_time(now - 10**6 * second, now, 10 * second, 0) == ""  # past off
    assert rules.exchange_time(0, now, 1, 1) == ""  # unknown time


def test_crossed_and_locked() -> None:
    assert rules.crossed(100.0, 100.0)
    assert rules.crossed(100.1, 100.0)
    assert not rules.crossed(99.9, 100.0)


def test_recent_ids_drop_duplicates_within_the_window() -> None:
    ids = rules.RecentIds(window=3)
    assert not ids.seen(1)
    assert not ids.seen(3)
    assert not ids.seen(2)  # out of order is fine
    assert ids.seen(3)
    assert not ids.seen(4)  # evicts 1
    assert not ids.seen(1)  # forgotten: memory stays bounded


def test_recent_ids_replay_and_wrap_around() -> None:
    ids = rules.RecentIds(window=4)
    assert [ids.seen(i) for i in (10, 11, 12, 13)] == [False] * 4
    assert all(ids.seen(i) for i in (10, 11, 12, 13))  # a replay after a reconnect
    assert not ids.seen(14)  # overwrites 10, the oldest
    assert not ids.seen(10)  # forgotten, remembered again (overwrites 11)
    assert ids.seen(10)
    assert ids.seen(14)
    assert not ids.seen(11)
    assert not ids.seen(2**64)  # not a fixed64 id: never remembered, never a duplicate
    assert not ids.seen(2**64)
    assert ids.seen(14)  # ids below a bad one are still found


def test_recent_ids_find_out_of_order_ids_in_a_wrapped_ring() -> None:
    ids = rules.RecentIds(window=5)
    for i in (50, 10, 40, 20, 30, 60, 5):  # out of order, and wrapped (60, 5 overwrote 50, 10)
        assert not ids.seen(i)
    for i in (40, 20, 30, 60, 5):
        assert ids.seen(i)
    assert not ids.seen(50)  # overwritten: forgotten


def test_recent_ids_byte_search_matches_whole_ids_only() -> None:
    ids = rules.RecentIds(window=3)
    assert not ids.seen(256)
    assert not ids.seen(512)
    # Little-endian 256 then 512 hold the bytes of 1 across a slot boundary.
    assert not ids.seen(1)
    assert ids.seen(1)
    assert ids.seen(256)
