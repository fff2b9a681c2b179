"""The simulator's counters: plain ints a metrics layer or a test reads."""

from __future__ import annotations

import msgspec


class SimStats(msgspec.Struct):
    steps: int = 0  # market transactions made by the feed
    skipped_steps: int = 0  # transactions the feed dropped after falling > 1 s behind
    published: int = 0  # payloads sent to at least one connection
    frames: int = 0  # frames queued to connections (a payload to 3 connections = 3)
    connections: int = 0  # connections accepted
    slow_closes: int = 0  # closed 1008: queue full (the client reads too slowly)
    rate_closes: int = 0  # closed 1008: more than the allowed incoming messages per second
    stream_limit_closes: int = 0  # closed 1008: too many subscriptions
    pings: int = 0
    pong_timeouts: int = 0
    expired: int = 0  # closed by the connection lifetime limit (24 h on the venue)
    dropped: int = 0  # connections dropped by a fault
    withheld: int = 0  # events not sent because of a gap fault
    stalled: int = 0  # events not sent during a stall fault
    malformed: int = 0  # malformed frames injected
    rest_requests: int = 0
    rest_429: int = 0
    rest_418: int = 0
    rest_delayed: int = 0
    replayed: int = 0  # capture frames replayed
