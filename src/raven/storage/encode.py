"""History events as protobuf bytes: one `HistoricalDataResponse.events` entry each. No I/O.

GetHistoricalData sends events as bytes built without a generated message
per event: rows of the embedded store are encoded a column at a time
(`raven.storage.rows`, Arrow; imported by the embedded store only, so a
server without storage doesn't load pyarrow), anything else (other stores,
candles built from trades, the book at T) with the live path's hand encoder
here. A response is then the entries joined, plus the cursor.
"""

from __future__ import annotations

from collections.abc import Sequence

from raven import fastproto
from raven.model import Event

EVENTS_TAG = b"\x0a"  # HistoricalDataResponse.events: field 1, length-delimited
CURSOR_TAG = b"\x12"  # HistoricalDataResponse.next_cursor: field 2


def encode_event(e: Event) -> bytes:
    """One model event as an `events` entry: the live encoding under this message's tag."""
    return EVENTS_TAG + fastproto.encode(e)[1:]


def response(entries: Sequence[bytes], cursor: str) -> bytes:
    """A serialized HistoricalDataResponse: the entries, then the cursor if any."""
    body = b"".join(entries)
    if not cursor:
        return body
    raw = cursor.encode()
    return body + CURSOR_TAG + fastproto.length(len(raw)) + raw
