"""REST request weight for Binance USD-M: a pure limiter, the clock passed in.

The venue counts request weight per IP per UTC clock minute (2400), reports
its count in `X-MBX-USED-WEIGHT-1M` on every response, answers 429 past the
limit and bans the IP (418, two minutes to three days) for repeated 429s.
So before each request `acquire(weight, now)` says "go" (0) or how long to
wait, and `on_response` feeds back what the venue said:

- Raven's own requests are kept within `limit - reserve` in ANY 60 seconds
  (a sliding window). That also bounds every venue minute whatever the
  offset between the two clocks, and spreads a burst of snapshot requests
  (a cold start of 100 symbols is 2000 weight) over time instead of
  letting two bursts land in one venue minute.
- The venue's own count (other users of the IP) for the current UTC minute
  is honoured too: when it says the minute is spent, wait for the next one.
- 429: nothing goes out until `Retry-After` passed (without one: the next minute).
- 418: the IP is banned; nothing goes out until the ban ends.

`reserve` absorbs what the venue counts before its header reaches Raven
(requests in flight). `window_s` is 60 on the venue; tests shrink it.
"""

from __future__ import annotations

import collections
import math
import re

import msgspec

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
DEFAULT_BAN_S = 120.0  # the venue's shortest ban, when a 418 says nothing longer
CLOCK_SKEW_S = 1.0  # a new venue minute is trusted this long after ours started

EXCHANGE_INFO_WEIGHT = 1
DEPTH_WEIGHTS = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}  # limit -> weight

_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")  # epoch ms in a 418's message


class WeightStats(msgspec.Struct):
    """What the limiter knows, for metrics: plain numbers, updated in place."""

    limit: int  # the venue's weight per window
    budget: int  # what Raven allows itself: limit - reserve
    used: int = 0  # weight in the current venue minute: the venue's count or ours, the higher
    sent_recent: int = 0  # Raven's weight in the last window_s (sliding)
    requests: int = 0
    weight_sent: int = 0
    waits: int = 0  # times a request was told to wait
    rate_limited: int = 0  # 429 responses
    bans: int = 0  # 418 responses
    banned_until: float = 0.0  # epoch s; past: not banned
    backoff_until: float = 0.0  # epoch s, after a 429


class WeightLimiter:
    def __init__(
        self,
        limit: int = 2400,
        reserve: int = 240,
        window_s: float = 60.0,
        skew_s: float = CLOCK_SKEW_S,
        default_ban_s: float = DEFAULT_BAN_S,
    ) -> None:
        if not 0 <= reserve < limit:
            raise ValueError("reserve must be at least 0 and below limit")
        self.reserve = reserve
        self.window_s = window_s
        self.skew_s = skew_s
        self.default_ban_s = default_ban_s
        self.stats = WeightStats(limit=limit, budget=limit - reserve)
        self._sent: collections.deque[tuple[float, int]] = collections.deque()
        self._minute = -1  # index of the venue minute `used` belongs to
        self._minute_venue = 0  # the venue's highest count this minute
        self._minute_own = 0  # Raven's weight this minute

    def set_limit(self, limit: int) -> None:
        """The venue's stated limit (exchangeInfo `rateLimits`), if lower than configured."""
        if self.reserve < limit < self.stats.limit:
            self.stats.limit = limit
            self.stats.budget = limit - self.reserve

    def used_now(self, now: float) -> int:
        """`stats.used` as of `now`: 0 once a new venue minute began. For metrics,
        which read between requests; changes nothing."""
        return self.stats.used if math.floor(now / self.window_s) == self._minute else 0

    def acquire(self, weight: int, now: float) -> float:
        """0.0: go now (the weight is counted); else seconds to wait and ask again."""
        stats = self.stats
        self._advance(now)
        hold = max(stats.banned_until, stats.backoff_until) - now
        if hold > 0:
            stats.waits += 1
            return hold
        budget = stats.budget
        if stats.used + weight > budget and stats.used > 0:
            stats.waits += 1
            return self._next_minute(now) - now
        if stats.sent_recent + weight > budget and self._sent:
            stats.waits += 1
            return self._sent_frees(weight) - now
        self._sent.append((now, weight))
        stats.sent_recent += weight
        self._minute_own += weight
        stats.used = max(self._minute_venue, self._minute_own)
        stats.requests += 1
        stats.weight_sent += weight
        return 0.0

    def can_spare(self, weight: int, share: float, now: float) -> bool:
        """Would `weight` now keep Raven within `share` of its budget (and is REST
        not held back)? For optional requests, which must leave the rest free."""
        stats = self.stats
        self._advance(now)
        if max(stats.banned_until, stats.backoff_until) > now:
            return False
        return max(stats.used, stats.sent_recent) + weight <= stats.budget * share

    def on_response(
        self, status: int, used_weight: int | None, retry_after: float | None, now: float,
        message: str = "",
    ) -> None:  # fmt: skip
        """What a response said: its status, `X-MBX-USED-WEIGHT-1M`, `Retry-After` (s)
        and, for a 418, the error message (it may name the ban's end)."""
        stats = self.stats
        self._advance(now)
        if used_weight is not None:
            self._minute_venue = max(self._minute_venue, used_weight)
            stats.used = max(self._minute_venue, self._minute_own)
        if status == 429:
            stats.rate_limited += 1
            if retry_after is not None:
                stats.backoff_until = max(stats.backoff_until, now + retry_after)
            else:  # the venue's minute is spent: wait for the next one
                self._minute_venue = stats.limit
                stats.used = stats.limit
        elif status == 418:
            stats.bans += 1
            stats.banned_until = max(stats.banned_until, self._ban_end(retry_after, now, message))

    def _ban_end(self, retry_after: float | None, now: float, message: str) -> float:
        if retry_after is not None:
            return now + retry_after
        named = _BANNED_UNTIL.search(message)
        if named is not None:
            return int(named.group(1)) / 1000
        return now + self.default_ban_s

    def _advance(self, now: float) -> None:
        minute = math.floor(now / self.window_s)
        if minute != self._minute:
            self._minute = minute
            self._minute_venue = 0
            self._minute_own = 0
            self.stats.used = 0
        sent = self._sent
        horizon = now - self.window_s
        while sent and sent[0][0] <= horizon:
            self.stats.sent_recent -= sent.popleft()[1]

    def _next_minute(self, now: float) -> float:
        return (math.floor(now / self.window_s) + 1) * self.window_s + self.skew_s

    def _sent_frees(self, weight: int) -> float:
        """When enough of Raven's recent weight leaves the sliding window for `weight`."""
        excess = self.stats.sent_recent + weight - self.stats.budget
        for sent_at, sent_weight in self._sent:
            excess -= sent_weight
            if excess <= 0:
                return sent_at + self.window_s + 1e-6
        return self._sent[-1][0] + self.window_s + 1e-6
