"""The venue's REST request-weight limit, as a pure state machine with a clock.

Weight is counted per client IP over the UTC clock minute and reported in
`X-MBX-USED-WEIGHT-1M` on every response. A request that takes the minute
past the limit gets 429 with `Retry-After` (seconds to the next minute);
a client that keeps sending after a 429 in the same minute earns a 418
ban, whose length doubles on each new ban up to three days, as Binance
escalates. Rejected requests still count their weight, like on the venue.

The clock is a small protocol so tests can pin the minute (`FakeClock`)
instead of racing the real one.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

import msgspec

MAX_BAN_S = 3 * 86_400.0  # the venue's longest ban


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Verdict(msgspec.Struct, frozen=True):
    status: int  # 200, 429 or 418
    used: int  # weight used this minute, after this request
    retry_after: int = 0  # seconds; 0 when admitted
    banned_until_ms: int = 0


class _Ip:
    __slots__ = ("ban_s", "banned_until", "minute", "used", "violations")

    def __init__(self) -> None:
        self.minute = -1
        self.used = 0
        self.violations = 0  # over-limit requests this minute
        self.banned_until = 0.0
        self.ban_s = 0.0  # length of the last ban


class RestLimiter:
    def __init__(self, limit: int, ban_s: float, violations_before_ban: int, clock: Clock) -> None:
        self.limit = limit
        self.ban_s = ban_s
        self.violations_before_ban = violations_before_ban
        self.clock = clock
        self._ips: dict[str, _Ip] = {}

    def _ip(self, ip: str, now: float) -> _Ip:
        state = self._ips.get(ip)
        if state is None:
            state = self._ips[ip] = _Ip()
        minute = int(now // 60)
        if minute != state.minute:
            state.minute, state.used, state.violations = minute, 0, 0
        return state

    def admit(self, ip: str, weight: int) -> Verdict:
        """Count a request of `weight` from `ip` and say how to answer it."""
        now = self.clock.time()
        state = self._ip(ip, now)
        if now < state.banned_until:
            return self._banned(state, now)
        state.used += weight
        if state.used <= self.limit:
            return Verdict(200, state.used)
        state.violations += 1
        if state.violations > self.violations_before_ban:
            return self.ban(ip)
        return Verdict(429, state.used, self.retry_after(now))

    def retry_after(self, now: float | None = None) -> int:
        """`Retry-After` of a 429: whole seconds to the next minute, when the count resets."""
        now = self.clock.time() if now is None else now
        return math.ceil((math.floor(now / 60) + 1) * 60 - now)

    def ban(self, ip: str, seconds: float | None = None) -> Verdict:
        """Ban `ip` now: for `seconds`, else the next step of the escalation."""
        now = self.clock.time()
        state = self._ip(ip, now)
        if seconds is None:
            seconds = min(MAX_BAN_S, state.ban_s * 2 if state.ban_s else self.ban_s)
            state.ban_s = seconds
        state.banned_until = max(state.banned_until, now + seconds)
        return self._banned(state, now)

    def _banned(self, state: _Ip, now: float) -> Verdict:
        until_ms = int(state.banned_until * 1000)
        return Verdict(418, state.used, math.ceil(state.banned_until - now), until_ms)

    def used(self, ip: str) -> int:
        return self._ip(ip, self.clock.time()).used
