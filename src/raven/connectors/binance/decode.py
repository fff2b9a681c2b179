"""Binance frames in, normalized events out: no I/O.

`FrameDecoder` turns one combined-stream frame into normalized events. A
frame that is not valid JSON, has the wrong shape, names an unknown event
type or a stream we did not subscribe to, or is larger than the limit, is
counted by reason and skipped: it never raises into the feed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from raven.connectors.binance import parse, wire
from raven.connectors.binance.streams import Stream, StreamType
from raven.model import Event

_Parser = Callable[[Any, str, int], Event]

_PARSERS: dict[StreamType, tuple[type[Any], _Parser]] = {
    StreamType.AGG_TRADE: (wire.AggTrade, parse.agg_trade),
    StreamType.TRADE: (wire.RawTrade, parse.raw_trade),
    StreamType.BOOK_TICKER: (wire.BookTicker, parse.book_ticker),
    StreamType.DEPTH_DIFF: (wire.DepthUpdate, parse.depth_diff),
    StreamType.DEPTH_PARTIAL: (wire.DepthUpdate, parse.partial_depth),
    StreamType.KLINE: (wire.Kline, parse.kline),
    StreamType.MARK_PRICE: (wire.MarkPrice, parse.mark_price),
    StreamType.FORCE_ORDER: (wire.ForceOrder, parse.force_order),
}

REASONS = ("malformed", "unknown_event", "unknown_stream", "oversized", "error_reply")


class DecodeStats(msgspec.Struct):
    """Counters a metrics exporter reads; plain ints, updated in place."""

    frames: int = 0
    events: int = 0
    replies: int = 0
    skipped: dict[str, int] = msgspec.field(default_factory=lambda: dict.fromkeys(REASONS, 0))


class FrameDecoder:
    """Decodes combined-stream frames of one connection's streams."""

    def __init__(self, exchange: str, streams: Iterable[Stream], max_frame_bytes: int) -> None:
        self.exchange = exchange
        self.max_frame_bytes = max_frame_bytes
        self.stats = DecodeStats()
        self.last_error = ""
        self._routes: dict[str, tuple[type[Any], _Parser]] = {}
        for stream in streams:
            self.add_stream(stream)

    def add_stream(self, stream: Stream) -> None:
        self._routes[stream.name] = _PARSERS[stream.type]

    def remove_stream(self, name: str) -> None:
        self._routes.pop(name, None)

    def decode(self, frame: bytes | str, received: int) -> tuple[Event, ...] | wire.Reply:
        """Events of one frame (empty when skipped), or a subscription reply."""
        self.stats.frames += 1
        if len(frame) > self.max_frame_bytes:
            return self._skip("oversized", f"frame of {len(frame)} bytes")
        try:
            msg = wire.combined_decoder.decode(frame)
        except msgspec.DecodeError as exc:
            return self._not_a_stream_frame(frame, exc)
        route = self._routes.get(msg.stream)
        if route is None:
            return self._skip("unknown_stream", msg.stream)
        cls, parser = route
        data = msg.data
        if type(data) is cls:
            self.stats.events += 1
            return (parser(data, self.exchange, received),)
        if isinstance(data, list) and cls is wire.MarkPrice:
            self.stats.events += len(data)
            return tuple(parser(row, self.exchange, received) for row in data if row.T)
        return self._skip("malformed", f"{msg.stream}: unexpected {type(data).__name__}")

    def _not_a_stream_frame(
        self, frame: bytes | str, exc: msgspec.DecodeError
    ) -> tuple[Event, ...] | wire.Reply:
        try:
            reply = wire.reply_decoder.decode(frame)
        except msgspec.DecodeError:
            reply = None
        if reply is not None and (reply.id is not None or reply.error is not None):
            self.stats.replies += 1
            if reply.error is not None:
                self._skip("error_reply", f"{reply.error.code}: {reply.error.msg}")
            return reply
        text = str(exc)
        reason = (
            "unknown_event" if "`$.data.e`" in text and "Invalid value" in text else "malformed"
        )
        return self._skip(reason, text)

    def _skip(self, reason: str, detail: str) -> tuple[Event, ...]:
        self.stats.skipped[reason] += 1
        self.last_error = f"{reason}: {detail}"
        return ()
