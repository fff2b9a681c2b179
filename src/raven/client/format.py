"""One-line, human-readable renderings of normalized events."""

from __future__ import annotations

import time

from raven.model import (
    BookDelta,
    BookSnapshot,
    Candle,
    Event,
    Funding,
    Liquidation,
    Quote,
    Status,
    Trade,
)
from raven.types import Side


def clock(ns: int) -> str:
    """HH:MM:SS.mmm (UTC) of a nanosecond timestamp."""
    secs, rem = divmod(ns, 1_000_000_000)
    return time.strftime("%H:%M:%S", time.gmtime(secs)) + f".{rem // 1_000_000:03d}"


def format_event(event: Event) -> str:
    head = f"{clock(event.exchange_time)} {event.symbol:<10}"
    if isinstance(event, Trade):
        side = "BUY " if event.side is Side.BUY else "SELL"
        return f"{head} trade  {side} {event.quantity} @ {event.price}  id={event.trade_id}"
    if isinstance(event, Quote):
        return (
            f"{head} quote  {event.bid_quantity} @ {event.bid_price}  /  "
            f"{event.ask_price} @ {event.ask_quantity}"
        )
    if isinstance(event, BookSnapshot | BookDelta):
        kind = "book  " if isinstance(event, BookSnapshot) else "delta "
        return f"{head} {kind} {len(event.bids)} bids {len(event.asks)} asks u={event.update_id}"
    if isinstance(event, Candle):
        state = "closed" if event.closed else "open"
        return (
            f"{head} candle {event.interval} O {event.open} H {event.high} L {event.low} "
            f"C {event.close} V {event.volume} ({state})"
        )
    if isinstance(event, Funding):
        return f"{head} funding mark {event.mark_price} rate {event.funding_rate}"
    if isinstance(event, Liquidation):
        return f"{head} liquidation {event.side.name} {event.quantity} @ {event.price}"
    if isinstance(event, Status):
        return f"{head} status {event.status.name} {event.detail}"
    raise TypeError(f"not an event: {event!r}")
