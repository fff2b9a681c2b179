"""The REST weight limiter with a fake clock and a pure model of the venue's counter."""

from __future__ import annotations

import math

import pytest

from raven.connectors.binance.limits import DEPTH_WEIGHTS, WeightLimiter

T0 = 1_699_999_980.0  # a UTC minute boundary (28_333_333 * 60)
MINUTE = 60.0


class Venue:
    """Binance's counter: weight per UTC clock minute (its clock may be offset)."""

    def __init__(self, limit: int = 2400, offset_s: float = 0.0, others: int = 0) -> None:
        self.limit = limit
        self.offset_s = offset_s
        self.others = others  # weight other users of the IP spend each minute
        self.used: dict[int, int] = {}
        self.rejected = 0

    def request(self, weight: int, at: float) -> tuple[int, int]:
        minute = math.floor((at + self.offset_s) / MINUTE)
        used = self.used.get(minute, self.others) + weight
        self.used[minute] = used
        if used > self.limit:
            self.rejected += 1
            return 429, used
        return 200, used


def run(
    limiter: WeightLimiter, venue: Venue, weights: list[int], start: float, rtt: float = 0.05
) -> tuple[list[float], float]:
    """Send each request when the limiter allows; returns the send times and the end."""
    now = start
    sent = []
    for weight in weights:
        while (wait := limiter.acquire(weight, now)) > 0:
            now += wait
        sent.append(now)
        status, used = venue.request(weight, now + rtt / 2)
        limiter.on_response(status, used, None, now + rtt)
        now += rtt
    return sent, now


def max_in_any_window(times: list[float], weights: list[int], window: float) -> int:
    return max(
        sum(w for t2, w in zip(times, weights, strict=True) if t1 <= t2 < t1 + window)
        for t1 in times
    )


COLD_START = [1] + [DEPTH_WEIGHTS[1000]] * 100  # exchangeInfo, then 100 snapshots


@pytest.mark.parametrize("offset_s", [0.0, 0.7, -0.7, 29.0, -59.5])
def test_a_100_symbol_cold_start_and_a_reconnect_stay_under_the_limit(offset_s: float) -> None:
    limiter = WeightLimiter(2400, 240)
    venue = Venue(offset_s=offset_s)
    start = T0 + 40.0  # 20 s before a minute boundary: the worst place for a burst
    first, now = run(limiter, venue, COLD_START, start)
    assert first[-1] - start < 10, "2001 weight fits the budget: no waiting"
    reconnect = [DEPTH_WEIGHTS[1000]] * 100
    second, _ = run(limiter, venue, reconnect, now + 1.0)
    assert venue.rejected == 0
    assert max(venue.used.values()) <= 2400 - 240 + 40  # budget; the reserve covers the rest
    times, weights = first + second, COLD_START + reconnect
    assert max_in_any_window(times, weights, 60.0) <= 2160
    assert second[-1] - first[0] < 125, "done within about two minutes"
    assert limiter.stats.waits > 0
    assert limiter.stats.rate_limited == 0


def test_weight_other_users_spent_this_minute_is_honoured() -> None:
    limiter = WeightLimiter(2400, 240)
    now = T0 + 10.0
    assert limiter.acquire(1, now) == 0.0
    limiter.on_response(200, 2150, None, now + 0.05)  # the venue counted 2150 this minute
    assert limiter.stats.used == 2150
    wait = limiter.acquire(20, now + 0.1)
    next_minute = (math.floor((now + 0.1) / MINUTE) + 1) * MINUTE
    assert wait == pytest.approx(next_minute + 1.0 - (now + 0.1))
    assert limiter.acquire(20, now + 0.1 + wait) == 0.0
    assert limiter.stats.used == 20


def test_429_backs_off_for_retry_after_and_holds_every_call() -> None:
    limiter = WeightLimiter(2400, 240)
    now = T0 + 5.0
    assert limiter.acquire(20, now) == 0.0
    limiter.on_response(429, 900, 7.0, now + 0.1)
    assert limiter.stats.rate_limited == 1
    assert limiter.acquire(1, now + 0.1) == pytest.approx(7.0)
    assert limiter.acquire(20, now + 5.1) == pytest.approx(2.0)
    assert limiter.acquire(20, now + 7.1) == 0.0
    # a 429 whose header says the minute is spent: Retry-After and the minute both hold
    limiter.on_response(429, 2500, 2.0, now + 8.0)
    assert now + 10.0 + limiter.acquire(20, now + 10.0) == pytest.approx(T0 + MINUTE + 1.0)
    # without Retry-After: until the next minute (the venue said this one is spent)
    later = T0 + 200.0
    limiter.on_response(429, None, None, later)
    wait = limiter.acquire(1, later)
    assert later + wait == pytest.approx((math.floor(later / MINUTE) + 1) * MINUTE + 1.0)


def test_418_stops_all_rest_until_the_ban_ends() -> None:
    limiter = WeightLimiter(2400, 240)
    now = T0 + 3.0
    limiter.on_response(418, 100, 120.0, now)
    assert limiter.stats.bans == 1
    for t in (now, now + 60.0, now + 119.0):
        assert limiter.acquire(1, t) == pytest.approx(now + 120.0 - t)
    assert limiter.acquire(1, now + 120.0) == 0.0
    # no Retry-After, but the message names the end (epoch ms)
    message = f"Way too many requests; IP banned until {int((now + 3600) * 1000)}."
    limiter.on_response(418, None, None, now + 200.0, message)
    assert limiter.acquire(1, now + 200.0) == pytest.approx(3400.0)
    # neither: the venue's shortest ban
    fresh = WeightLimiter(2400, 240)
    fresh.on_response(418, None, None, now, "banned")
    assert fresh.acquire(1, now) == pytest.approx(120.0)


def test_the_venues_stated_limit_lowers_the_budget() -> None:
    limiter = WeightLimiter(2400, 240)
    limiter.set_limit(1200)
    assert (limiter.stats.limit, limiter.stats.budget) == (1200, 960)
    limiter.set_limit(6000)
    assert limiter.stats.limit == 1200, "never raised above the configured limit"


def test_a_request_heavier_than_the_budget_still_goes_alone() -> None:
    limiter = WeightLimiter(100, 90)
    assert limiter.acquire(20, T0) == 0.0
    assert limiter.acquire(20, T0 + 1) > 0
    assert limiter.acquire(20, T0 + 61) == 0.0


def test_reserve_must_leave_a_budget() -> None:
    with pytest.raises(ValueError, match="reserve"):
        WeightLimiter(100, 100)


def test_optional_requests_only_use_their_share_of_the_budget() -> None:
    limiter = WeightLimiter(limit=1000, reserve=100)  # budget 900
    assert limiter.can_spare(20, 0.5, T0)
    assert limiter.acquire(430, T0) == 0.0
    assert limiter.can_spare(20, 0.5, T0 + 1)  # 450 of 900
    assert not limiter.can_spare(21, 0.5, T0 + 1)
    limiter.on_response(200, 700, None, T0 + 2)  # other users of the IP spent more
    assert not limiter.can_spare(1, 0.5, T0 + 2)
    assert limiter.acquire(150, T0 + 2) == 0.0, "required requests still use the rest"
    assert limiter.can_spare(20, 0.5, T0 + MINUTE + 1), "a new minute, the window passed"
    limiter.on_response(429, None, 5.0, T0 + MINUTE + 1)
    assert not limiter.can_spare(1, 0.5, T0 + MINUTE + 2), "nothing optional while held back"
