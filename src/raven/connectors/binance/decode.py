"""Binance frames in, normalized events out: no I/O.

`FrameDecoder` turns one combined-stream frame into normalized events. A
frame that is not valid JSON, has the wrong shape, names an unknown event
type or a stream we did not subscribe to, or is larger than the limit, is
counted by reason and skipped: it never raises into the feed.

Each frame is decoded once into its wire struct; the stream's id (aggTrade
`a`, trade `t`, depth and bookTicker `u`, kline/markPrice/forceOrder event
time `E`) goes through a `Deduplicator` shared by every socket of one
connection, so the overlap of an old and a new socket delivers nothing
twice. The receive time of each stream's latest frame is kept for
silence detection (`last_seen`).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from raven.connectors.binance import parse, wire
from raven.connectors.binance.streams import Stream, StreamType
from raven.connectors.dedup import Deduplicator
from raven.model import Event

_Parser = Callable[[Any, str, int], Event]

_KINDS: dict[StreamType, tuple[type[Any], _Parser, Callable[[Any], int]]] = {
    StreamType.AGG_TRADE: (wire.AggTrade, parse.agg_trade, operator.attrgetter("a")),
    StreamType.TRADE: (wire.RawTrade, parse.raw_trade, operator.attrgetter("t")),
    StreamType.BOOK_TICKER: (wire.BookTicker, parse.book_ticker, operator.attrgetter("u")),
    StreamType.DEPTH_DIFF: (wire.DepthUpdate, parse.depth_diff, operator.attrgetter("u")),
    StreamType.DEPTH_PARTIAL: (wire.DepthUpdate, parse.partial_depth, operator.attrgetter("u")),
    StreamType.KLINE: (wire.Kline, parse.kline, operator.attrgetter("E")),
    StreamType.MARK_PRICE: (wire.MarkPrice, parse.mark_price, operator.attrgetter("E")),
    StreamType.FORCE_ORDER: (wire.ForceOrder, parse.force_order, operator.attrgetter("E")),
}

_decode_combined = wire.combined_decoder.decode


def _is_rows(route: _Route, data: Any) -> bool:
    """`!markPrice@arr`: a list of mark price rows."""
    return type(data) is list and route.cls is wire.MarkPrice


REASONS = ("malformed", "unknown_event", "unknown_stream", "oversized", "error_reply")


class DecodeStats(msgspec.Struct):
    """Counters a metrics exporter reads; plain ints, updated in place."""

    frames: int = 0
    events: int = 0
    replies: int = 0
    skipped: dict[str, int] = msgspec.field(default_factory=lambda: dict.fromkeys(REASONS, 0))


class _Route:
    """One subscribed stream: how to read it, and where it stands."""

    __slots__ = ("cls", "cursor", "ident", "parse", "seen")

    def __init__(self, stream: Stream, dedup: Deduplicator) -> None:
        cls, parser, ident = _KINDS[stream.type]
        if stream.type is StreamType.DEPTH_PARTIAL:
            parser = functools.partial(parse.partial_depth, depth=stream.depth)
        self.cls: type[Any] = cls
        self.parse: _Parser = parser
        self.ident = ident
        self.cursor = dedup.cursor(stream.name)
        self.seen = 0  # receive time (ns) of the stream's latest frame


_Hit = tuple[str, _Route, Any]  # stream name, its route, the decoded payload


class FrameDecoder:
    """Decodes combined-stream frames of one connection's streams."""

    def __init__(
        self,
        exchange: str,
        streams: Iterable[Stream],
        max_frame_bytes: int,
        dedup: Deduplicator | None = None,
    ) -> None:
        self.exchange = exchange
        self.max_frame_bytes = max_frame_bytes
        self.dedup = dedup if dedup is not None else Deduplicator()
        self.stats = DecodeStats()
        self.last_error = ""
        self._routes: dict[str, _Route] = {}
        for stream in streams:
            self.add_stream(stream)

    def add_stream(self, stream: Stream) -> None:
        self._routes[stream.name] = _Route(stream, self.dedup)

    def remove_stream(self, name: str) -> None:
        self._routes.pop(name, None)

    @property
    def last_seen(self) -> dict[str, int]:
        """Stream name -> receive time (ns) of its latest frame (streams heard from)."""
        return {name: route.seen for name, route in self._routes.items() if route.seen}

    def decode(self, frame: bytes | str, received: int) -> tuple[Event, ...] | wire.Reply:
        """Events of one frame (empty when skipped or seen), or a subscription reply."""
        # The hot path: written out rather than shared with decode_held.
        stats = self.stats
        stats.frames += 1
        if len(frame) > self.max_frame_bytes:
            self._skip("oversized", f"frame of {len(frame)} bytes")
            return ()
        try:
            msg = _decode_combined(frame)
        except msgspec.DecodeError as exc:
            reply = self._not_a_stream_frame(frame, exc)
            return () if reply is None else reply
        route = self._routes.get(msg.stream)
        if route is None:
            self._skip("unknown_stream", msg.stream)
            return ()
        data = msg.data
        if type(data) is not route.cls:
            return self._other_shape(msg.stream, route, data, received)
        route.seen = received
        cursor, ident, dedup = route.cursor, route.ident(data), self.dedup
        if ident > cursor.last and dedup.watch is None:
            cursor.last = ident  # Deduplicator.advance's common case, written out
        elif not dedup.advance(cursor, ident):
            return ()  # counted in dedup.duplicates
        stats.events += 1
        return (route.parse(data, self.exchange, received),)

    def decode_held(
        self, frame: bytes | str, received: int
    ) -> tuple[str, int, tuple[Event, ...]] | wire.Reply | None:
        """(stream, id, events) of a frame on a socket whose events are held back
        (see `raven.connectors.dedup.Handover`): not checked against the
        deduplicator yet. None when skipped."""
        hit = self._open(frame, received)
        if hit is None or isinstance(hit, wire.Reply):
            return hit
        name, route, data = hit
        exchange = self.exchange
        if type(data) is list:
            rows = tuple(route.parse(row, exchange, received) for row in data if row.T)
            return name, max((row.E for row in data), default=0), rows
        return name, route.ident(data), (route.parse(data, exchange, received),)

    def _open(self, frame: bytes | str, received: int) -> _Hit | wire.Reply | None:
        self.stats.frames += 1
        if len(frame) > self.max_frame_bytes:
            self._skip("oversized", f"frame of {len(frame)} bytes")
            return None
        try:
            msg = _decode_combined(frame)
        except msgspec.DecodeError as exc:
            return self._not_a_stream_frame(frame, exc)
        name = msg.stream
        route = self._routes.get(name)
        if route is None:
            self._skip("unknown_stream", name)
            return None
        data = msg.data
        if type(data) is not route.cls and not _is_rows(route, data):
            self._skip("malformed", f"{name}: unexpected {type(data).__name__}")
            return None
        route.seen = received
        return name, route, data

    def _other_shape(self, name: str, route: _Route, data: Any, received: int) -> tuple[Event, ...]:
        if not _is_rows(route, data):
            self._skip("malformed", f"{name}: unexpected {type(data).__name__}")
            return ()
        route.seen = received
        return self._rows(name, route, data, received)

    def _rows(
        self, name: str, route: _Route, data: list[wire.MarkPrice], received: int
    ) -> tuple[Event, ...]:
        if not self.dedup.advance(route.cursor, max((row.E for row in data), default=0)):
            return ()
        exchange = self.exchange
        events = tuple(route.parse(row, exchange, received) for row in data if row.T)
        self.stats.events += len(events)
        return events

    def _not_a_stream_frame(
        self, frame: bytes | str, exc: msgspec.DecodeError
    ) -> wire.Reply | None:
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
        self._skip(reason, text)
        return None

    def _skip(self, reason: str, detail: str) -> None:
        self.stats.skipped[reason] += 1
        self.last_error = f"{reason}: {detail}"
