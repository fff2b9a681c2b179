"""Mark price, index price and funding of one simulated symbol. No I/O.

Values are integers in units of 1e-8 (Binance prints them with 8 decimals).
The index follows the book's mid with a small random-walk basis; funding
follows Binance's formula on a moving average of the premium: rate =
premium + clamp(interest - premium, +-0.05%), capped at +-0.75%. Each
symbol has its own random generator, so how often the scheduler ticks
never changes the book the market model produces.

Funding history before the simulator started is synthesized from the seed
(deterministic); funding events while it runs are recorded as they happen.
"""

from __future__ import annotations

import random

import msgspec

from raven.connectors.binance import wire
from raven.sim.instruments import fmt

E8 = 10**8
FUNDING_MS = 8 * 3600 * 1000  # funding every 8 h: 00:00, 08:00, 16:00 UTC
INTEREST = 0.0001  # Binance's default interest rate per funding period
SYNTHETIC_PERIODS = 1000  # funding records before the start (~333 days)


def next_funding(now_ms: int) -> int:
    return (now_ms // FUNDING_MS + 1) * FUNDING_MS


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


class PremiumIndex(msgspec.Struct):
    """A `GET /fapi/v1/premiumIndex` row."""

    symbol: str
    markPrice: str
    indexPrice: str
    estimatedSettlePrice: str
    lastFundingRate: str
    interestRate: str
    nextFundingTime: int
    time: int


class FundingRecord(msgspec.Struct):
    """A `GET /fapi/v1/fundingRate` row (key order as in the reference)."""

    symbol: str
    fundingTime: int
    fundingRate: str
    markPrice: str
    rateType: str = "NORMAL"  # the reference lists the key without its values


class FundingState:
    def __init__(self, symbol: str, seed: int, mid_e8: int) -> None:
        self.symbol = symbol
        self.seed = seed
        self.rng = random.Random(f"{seed}:{symbol}:funding")
        self.basis = 0.0  # (index - mid) / mid, a bounded random walk
        self.premium_avg = 0.0
        self.index = self.mark = self.mark_avg = self.settle = mid_e8
        self.rate = round(INTEREST * E8)
        self.start_ms = 0
        self.last_ms = 0
        self.recorded: list[FundingRecord] = []  # funding events while running
        self.start_e8 = mid_e8

    def tick(self, now_ms: int, mid_e8: int) -> None:
        """Advance one step (the scheduler calls this every second)."""
        if not self.start_ms:
            self.start_ms = now_ms
        self.basis = _clamp(self.basis + self.rng.gauss(0.0, 2e-5), -1e-3, 1e-3)
        index = round(mid_e8 * (1.0 + self.basis))
        premium = (mid_e8 - index) / index
        self.premium_avg += (premium - self.premium_avg) / 60.0
        rate = self.premium_avg + _clamp(INTEREST - self.premium_avg, -0.0005, 0.0005)
        self.rate = round(_clamp(rate, -0.0075, 0.0075) * E8)
        self.index = index
        self.mark = round(index * (1.0 + self.premium_avg))
        self.mark_avg += (self.mark - self.mark_avg) // 60
        self.settle += (index - self.settle) // 600
        if self.last_ms and next_funding(self.last_ms) <= now_ms:
            funding_time = next_funding(self.last_ms)
            self.recorded.append(
                FundingRecord(self.symbol, funding_time, fmt(self.rate, 8), fmt(self.mark, 8))
            )
        self.last_ms = now_ms

    def mark_price(self, now_ms: int) -> wire.MarkPrice:
        return wire.MarkPrice(
            E=now_ms,
            s=self.symbol,
            p=fmt(self.mark, 8),
            ap=fmt(self.mark_avg, 8),
            P=fmt(self.settle, 8),
            i=fmt(self.index, 8),
            r=fmt(self.rate, 8),
            T=next_funding(now_ms),
            st=1,
        )

    def premium_index(self, now_ms: int) -> PremiumIndex:
        return PremiumIndex(
            self.symbol,
            fmt(self.mark, 8),
            fmt(self.index, 8),
            fmt(self.settle, 8),
            fmt(self.rate, 8),
            fmt(round(INTEREST * E8), 8),
            next_funding(now_ms),
            now_ms,
        )

    def history(self, start: int | None, end: int | None, now_ms: int) -> list[FundingRecord]:
        """Funding events in [start, end], oldest first: synthetic ones before the start."""
        began = self.start_ms or now_ms
        first_real = next_funding(began)
        lo = first_real - SYNTHETIC_PERIODS * FUNDING_MS
        t = max(lo, -(-(start or lo) // FUNDING_MS) * FUNDING_MS)
        last = min(end if end is not None else now_ms, now_ms)
        out: list[FundingRecord] = []
        while t <= last and t < first_real:
            out.append(self._synthetic(t))
            t += FUNDING_MS
        out.extend(r for r in self.recorded if (start or 0) <= r.fundingTime <= last)
        return out

    def _synthetic(self, funding_time: int) -> FundingRecord:
        rng = random.Random(f"{self.seed}:{self.symbol}:{funding_time}")
        rate = rng.randint(-5_000, 30_000)  # -0.00005 .. 0.0003
        mark = round(self.start_e8 * (1.0 + rng.uniform(-0.05, 0.05)))
        return FundingRecord(self.symbol, funding_time, fmt(rate, 8), fmt(mark, 8))
