"""Pacing what Raven sends to a venue over one connection: pure, clock passed in.

Venues close a connection that sends too many messages (Binance USD-M: more
than 10 a second, then a 1008 close). `SendPacer` keeps any window of
`window_s` seconds at `limit` sends or fewer; `split_subscriptions` decides
which streams go in the connection URL and which follow as batched
subscription messages.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence


class SendPacer:
    """At most `limit` sends in any `window_s` seconds (a sliding window)."""

    def __init__(self, limit: int, window_s: float = 1.0) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window_s = window_s
        self._sent: collections.deque[float] = collections.deque()
        self.sends = 0  # total, for metrics

    def delay(self, now: float) -> float:
        """Seconds to wait before the next send may go out (0: now)."""
        sent = self._sent
        while sent and sent[0] <= now - self.window_s:
            sent.popleft()
        if len(sent) < self.limit:
            return 0.0
        return max(sent[0] + self.window_s - now, 1e-6)

    def record(self, now: float) -> None:
        """A send went out at `now` (call only after `delay(now)` returned 0)."""
        self._sent.append(now)
        self.sends += 1


def split_subscriptions(
    names: Sequence[str], url_length: int, max_url_length: int, batch_size: int
) -> tuple[list[str], list[list[str]]]:
    """(streams for the URL, batches of streams for subscription messages).

    `url_length` is the length of the URL with no streams in it; streams go in
    the URL, in order and "/"-separated, while it stays within
    `max_url_length`. The rest follow in batches of at most `batch_size`.
    """
    in_url: list[str] = []
    length = url_length
    index = 0
    for index, name in enumerate(names):  # noqa: B007 - index used after the loop
        extra = len(name) + (1 if in_url else 0)
        if length + extra > max_url_length:
            break
        in_url.append(name)
        length += extra
    else:
        return in_url, []
    rest = list(names[index:])
    return in_url, [rest[i : i + batch_size] for i in range(0, len(rest), batch_size)]
