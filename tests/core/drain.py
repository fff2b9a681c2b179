"""Read everything a subscriber has queued, as a stream's sender would."""

from __future__ import annotations

from raven.core.bus import Subscriber


def drain_all(sub: Subscriber, limit: int = 1000) -> list[bytes]:
    """Every chunk `sub` would send now, in order; control frames as b"control:..."."""
    out: list[bytes] = []
    while True:
        control, events = sub.drain(limit, 0)
        if control is not None:
            out.append(b"control:" + control)
        elif not events:
            return out
        out += events
