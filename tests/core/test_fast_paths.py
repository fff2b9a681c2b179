"""The ingest hot path's written-out helpers equal the plain functions they replace.

The hot path inlines a few small helpers (level by level book updates,
decimal parsing, grid snapping, the citadel's cache comparisons); each test
here runs the inlined form and the plain one on the same generated input.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from raven.config import ValidationConfig
from raven.core import decimals, rules
from raven.core.book import BookSide
from raven.core.citadel import Citadel
from raven.core.decimals import Increment, Scaled
from raven.model import BookDelta, Candle, Quote, Trade
from raven.types import Side

prices = st.sampled_from(["1", "1.0", "1.5", "2", "2.50", "3.25", "10", "0.001", "99.9"])
quantities = st.sampled_from(["0", "0.000", "1", "0.5", "2.25", "7"])
levels = st.lists(st.tuples(prices, quantities), max_size=30)


@given(st.lists(levels, max_size=8), st.booleans())
def test_side_apply_equals_setting_each_level(
    updates: list[list[tuple[str, str]]], desc: bool
) -> None:
    applied, each = BookSide(desc), BookSide(desc)
    for update in updates:
        applied.apply(update)
        for price, qty in update:
            each.set(price, qty)
        assert applied.top(0) == each.top(0)
        assert applied.best() == each.best()


decimal_texts = st.one_of(
    st.from_regex(r"\A[0-9]{1,12}(\.[0-9]{0,12})?\Z"),
    st.text(alphabet="0123456789.-e+ _x", max_size=12),
    st.sampled_from(["", ".", "1.", ".5", "nan", "inf", "١٢", "1" + "0" * 45, "0." + "1" * 45]),
)


@given(decimal_texts, st.booleans())
def test_positive_finite_equals_parse_and_sign_check(text: str, allow_zero: bool) -> None:
    parsed = decimals.parse(text)
    expected = (
        parsed
        if parsed is not None and (parsed[0] > 0 or (allow_zero and parsed[0] == 0))
        else None
    )
    assert rules.positive_finite(text, allow_zero) == expected


def snap_reference(inc: Increment, value: Scaled) -> Scaled | None:
    """Increment.snap as it was written, with `rescale`."""
    step = inc.step
    scale = max(value[1], step[1])
    mantissa = decimals.rescale(value, scale)
    unit = decimals.rescale(step, scale)
    remainder = mantissa % unit
    if remainder == 0:
        return value
    distance = min(remainder, unit - remainder)
    if distance * 1_000_000 > int(inc.tolerance * 1_000_000) * unit:
        return None
    units = (mantissa + unit // 2) // unit
    return units * step[0], step[1]


@given(
    st.sampled_from(["0.1", "0.01", "0.5", "1", "0.001", "25", "0.0001"]),
    st.integers(0, 10**15),
    st.integers(0, 15),
    st.sampled_from([0.0, 0.001, 0.01]),
)
def test_snap_equals_the_rescale_form(step: str, mantissa: int, scale: int, tol: float) -> None:
    inc = Increment(step, tol)
    assert inc.snap((mantissa, scale)) == snap_reference(inc, (mantissa, scale))


def citadel() -> Citadel:
    return Citadel(ValidationConfig(), lambda exchange, symbol: ("0.1", "0.001"))


def test_cached_texts_return_the_event_itself() -> None:
    """A cache hit hands back an equal text, not the event's own object: the
    event passes through unchanged, not copied."""
    c = citadel()
    first = Quote("x", "S", "100.0", "1.000", "100.1", "2.000", 1, 10, 10)
    assert c.check(first) is first
    again = Quote("x", "S", "".join(["100", ".0"]), "1.000", "100.1", "2.000", 2, 11, 11)
    assert again.bid_price is not first.bid_price
    assert c.check(again) is again
    trade = Trade("x", "S", "".join(["100", ".0"]), "1.000", Side.BUY, 5, 12, 12)
    assert c.check(trade) is trade
    delta = BookDelta("x", "S", (("".join(["100", ".0"]), "0"),), (), 1, 2, 1, 13, 13)
    assert c.check(delta) is delta


def test_snapped_texts_still_make_a_sanitized_copy() -> None:
    c = citadel()
    q = Quote("x", "S", "100.00000000001", "1.000", "100.1", "2.000", 1, 10, 10)
    for _ in range(2):  # the miss, then the cache hit
        out = c.quote(q)
        assert out is not None
        assert out is not q
        assert (out.bid_price, out.ask_price) == ("100.0", "100.1")
    d = BookDelta("x", "S", (("99.9", "1"), ("100.00000000001", "1")), (), 1, 2, 1, 13, 13)
    out_d = c.delta(d)
    assert out_d is not None
    assert out_d.bids == (("99.9", "1"), ("100.0", "1"))


def test_time_rule_inline_names_the_same_rule() -> None:
    c = Citadel(ValidationConfig(max_future_s=1, max_past_s=1))
    assert c.check(Trade("x", "S", "1", "1", Side.BUY, 1, 5 * 10**9, 1)) is None
    assert c.check(Trade("x", "S", "1", "1", Side.BUY, 2, 1, 5 * 10**9)) is None
    assert c.check(Trade("x", "S", "1", "1", Side.BUY, 3, 0, 5 * 10**9)) is not None  # unknown
    assert c.rejected == {(rules.TIME_FUTURE, "x", "S"): 1, (rules.TIME_PAST, "x", "S"): 1}
    off = Citadel(ValidationConfig(max_future_s=0, max_past_s=0))
    assert off.check(Trade("x", "S", "1", "1", Side.BUY, 1, 10**18, 1)) is not None


def test_kline_texts_seen_before_skip_the_parse_but_bad_ones_still_fail() -> None:
    c = citadel()

    def kline(open_: str, volume: str) -> Candle:
        return Candle("x", "S", "1m", 0, 60, open_, "2", "1", "1.5", volume, "3", 4, False,
                      False, 10, 10)  # fmt: skip

    for _ in range(2):  # parsed, then known
        good = kline("1.0", "0")
        assert c.kline(good) is good
    assert c.kline(kline("0", "0")) is None  # a price must be > 0, even if "0" is a known volume
    assert c.kline(kline("1.0", "-1")) is None
    assert c.kline(kline("1.0", "1e3")) is None
    assert c.rejected == {(rules.POSITIVE_FINITE, "x", "S"): 3}
