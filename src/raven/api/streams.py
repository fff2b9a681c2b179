"""Open client streams: subscriptions, initial state, framing and liveness.

`StreamRegistry.subscribe` routes a plan's topics to a stream's subscriber
and queues the current state first, all without awaiting, so no live event
can slip in between the state and the routing. The order a client sees:
the subscription's ack, then the current state of each new (kind, symbol),
then live events. Acks are control frames queued *behind* the events
already queued, so after an unsubscribe's ack no event of it follows.

What a new subscription gets first: the last trade, the last quote, the
book view's snapshot (and a BOOK_STALE status if the book is not live), the
current candle of each interval, the last funding. Liquidations and
statuses are events only. Each stream has at most one book view per symbol:
a new book subscription for a symbol replaces the old one (a new snapshot
follows).
"""

from __future__ import annotations

import asyncio
import struct
import time
import uuid

from raven import codec, fastproto
from raven.api.requests import BookMode, Catalog, Plan
from raven.core.bus import Bus, Subscriber, SubscriberStats, Topic
from raven.core.latency import Histogram
from raven.core.state import MarketRecord, MarketState, candle_channel
from raven.core.views import BookViews
from raven.model import Status
from raven.ops import tracing
from raven.types import Kind, StatusKind
from raven.v1 import market_data_pb2 as pb

GAP_REASON = "queue full: oldest events dropped (policy DROP_OLDEST)"


_TIME = struct.Struct("<q").pack


def frame_header(first_sequence: int, sent_time_ns: int) -> bytes:
    """= `fastproto.frame_header`, with the sequence's varint unrolled: one per frame."""
    v = first_sequence
    if v < 0x4000:
        seq = fastproto.length(v)
    elif v < 0x200000:
        seq = bytes(((v & 0x7F) | 0x80, ((v >> 7) & 0x7F) | 0x80, v >> 14))
    elif v < 0x10000000:
        seq = bytes(((v & 0x7F) | 0x80, ((v >> 7) & 0x7F) | 0x80, ((v >> 14) & 0x7F) | 0x80,
                     v >> 21))  # fmt: skip
    else:
        seq = fastproto.varint(v)
    return b"\x08" + seq + b"\x19" + _TIME(sent_time_ns)


class ClientStream:
    """Server-side state of one StreamMarketData call."""

    def __init__(self, peer: str, capacity: int, latency: Histogram | None) -> None:
        self.id = uuid.uuid4().hex
        self.peer = peer
        self.sub = Subscriber(self.id, capacity, latency)
        self.last_heard = time.monotonic()
        self.books: dict[tuple[str, str], Topic] = {}  # (exchange, symbol) -> its view's topic
        self.status_symbols: dict[str, set[str]] = {}  # exchange -> symbols with STATUS
        self.draining = False  # shutting down: send what is queued, then end
        self.failed = asyncio.Event()  # the subscriber's DISCONNECT policy fired
        self.sub.on_failure = self.failed.set

    def send_control(self, response: pb.StreamResponse) -> None:
        self.sub.push_control(response.SerializeToString(), time.time_ns())

    def next_frame(self, limit: int) -> bytes | None:
        """The next frame to write: a control frame or queued events, in order."""
        sub = self.sub
        now = time.time_ns()
        control, chunks = sub.drain(limit, now)
        if control is not None:
            return control
        if sub.traced is not None:  # a sampled event's chunk is queued (tracing on)
            tracing.sent(sub, chunks, now)
        if sub.pending_gap:
            chunks.insert(0, codec.gap_chunk(sub.pending_gap, GAP_REASON, now))
            sub.pending_gap = 0
        if not chunks:
            return None
        first = sub.next_sequence
        sub.next_sequence += len(chunks)
        # = codec.frame(first, chunks, now), joined once with the header in front.
        chunks.insert(0, frame_header(first, now))
        return b"".join(chunks)


class StreamRegistry:
    """The open streams by id, and the subscribe / unsubscribe operations on them."""

    def __init__(
        self,
        bus: Bus,
        state: MarketState,
        views: BookViews,
        catalog: Catalog,
        capacity: int,
    ) -> None:
        self.bus = bus
        self.state = state
        self.views = views
        self.catalog = catalog
        self.capacity = capacity
        self.streams: dict[str, ClientStream] = {}
        self.closed_stats = SubscriberStats()  # summed over streams already closed
        self.opened = 0
        self.latency_publish_to_send = Histogram()  # once per frame, its oldest event
        # Once per frame: from the writer's gRPC write call to the transport's
        # completion (the next frame of that stream waits for it).
        self.latency_write = Histogram()
        self.empty = asyncio.Event()
        self.empty.set()

    def open(self, peer: str) -> ClientStream:
        stream = ClientStream(peer, self.capacity, self.latency_publish_to_send)
        self.streams[stream.id] = stream
        self.opened += 1
        self.empty.clear()
        return stream

    def close(self, stream: ClientStream) -> None:
        if self.streams.pop(stream.id, None) is None:
            return
        self.bus.remove(stream.sub)
        for view_topic in stream.books.values():
            self.views.release(view_topic)
        stream.books.clear()
        total, stats = self.closed_stats, stream.sub.stats
        for field in stats.__struct_fields__:
            setattr(total, field, getattr(total, field) + getattr(stats, field))
        if not self.streams:
            self.empty.set()

    def stats(self) -> SubscriberStats:
        """Totals over every stream ever opened (monotonic counters)."""
        total = SubscriberStats(**{f: getattr(self.closed_stats, f)
                                   for f in SubscriberStats.__struct_fields__})  # fmt: skip
        for stream in self.streams.values():
            stats = stream.sub.stats  # a property: read it once per stream
            for field in total.__struct_fields__:
                setattr(total, field, getattr(total, field) + getattr(stats, field))
        return total

    def shutdown(self, detail: str) -> None:
        """Tell every stream the server is going away and let it drain."""
        now = time.time_ns()
        for stream in self.streams.values():
            self.bus.remove(stream.sub)
            event = Status("", "", StatusKind.SERVER_SHUTDOWN, detail, now, now)
            stream.sub.push_state((Kind.STATUS, "", "", ""), codec.encode(event), now)
            stream.draining = True

    # --- subscribe ----------------------------------------------------------

    def subscribe(self, stream: ClientStream, plan: Plan) -> pb.SubscriptionAck:
        ack = _ack(plan, unsubscribed=False)
        stream.send_control(pb.StreamResponse(ack=ack))
        sub = stream.sub
        if plan.policy is not None:
            for kind in plan.kinds:
                sub.policies[kind] = plan.policy
        now = time.time_ns()
        for kind in plan.kinds:
            for symbol in plan.symbols:
                rec = self.state.record(plan.exchange, symbol)
                if kind is Kind.BOOK:
                    self._book(stream, rec, plan, now)
                elif kind is Kind.CANDLE:
                    self._candles(stream, rec, plan.candle_intervals, now)
                else:
                    self._plain(stream, rec, kind, now)
        if Kind.STATUS in plan.kinds:
            symbols = stream.status_symbols.setdefault(plan.exchange, set())
            symbols.update(plan.symbols)
            self.bus.subscribe(sub, (Kind.STATUS, plan.exchange, "", ""))  # feed-wide statuses
        return ack

    def _plain(self, stream: ClientStream, rec: MarketRecord, kind: Kind, now: int) -> None:
        topic = rec.topics[kind]
        if not self.bus.subscribe(stream.sub, topic):
            return
        current = {Kind.TRADE: rec.trade, Kind.QUOTE: rec.quote, Kind.FUNDING: rec.funding}
        state = current.get(kind)
        if state is not None:
            stream.sub.push_state(topic, state[1], now)

    def _candles(
        self, stream: ClientStream, rec: MarketRecord, intervals: tuple[str, ...], now: int
    ) -> None:
        current = dict(rec.candle_state(intervals))
        for channel in self._candle_channels(rec.exchange, intervals):
            topic: Topic = (Kind.CANDLE, rec.exchange, rec.symbol, channel)
            if self.bus.subscribe(stream.sub, topic) and channel in current:
                stream.sub.push_state(topic, current[channel], now)

    def _candle_channels(self, exchange: str, intervals: tuple[str, ...]) -> list[str]:
        built = self.catalog.intervals
        klines = self.catalog.klines.get(exchange, ())
        channels = [candle_channel(i, True) for i in intervals if i in built]
        return channels + [candle_channel(i, False) for i in intervals if i in klines]

    def _book(self, stream: ClientStream, rec: MarketRecord, plan: Plan, now: int) -> None:
        key = (rec.exchange, rec.symbol)
        sub = stream.sub
        if plan.book_mode is BookMode.SNAPSHOTS:
            snap = self.views.snapshot_view(rec, plan.book_depth, plan.book_interval_ms)
            topic, chunk, resnapshot = snap.topic, snap.snapshot_chunk(), None
        else:
            view = self.views.delta_view(rec, plan.book_depth)
            topic, chunk, resnapshot = view.topic, view.snapshot_chunk(), view.resnapshot
        old = stream.books.get(key)
        if old is not None:
            self.bus.unsubscribe(sub, old)
            self.views.release(old)  # same view: the reference just taken keeps it
        stream.books[key] = topic
        self.bus.subscribe(sub, topic)
        sub.push_state(topic, chunk, now, resnapshot)
        if not rec.book_live:
            detail = "no book yet" if not rec.book.update_id else "book stale; resync pending"
            status = Status(rec.exchange, rec.symbol, StatusKind.BOOK_STALE, detail, now, now)
            sub.push_state(rec.topics[Kind.STATUS], codec.encode(status), now)

    # --- unsubscribe --------------------------------------------------------

    def unsubscribe(self, stream: ClientStream, plan: Plan) -> pb.SubscriptionAck:
        sub, bus = stream.sub, self.bus
        for kind in plan.kinds:
            for symbol in plan.symbols:
                if kind is Kind.BOOK:
                    view_topic = stream.books.pop((plan.exchange, symbol), None)
                    if view_topic is not None:
                        bus.unsubscribe(sub, view_topic)
                        self.views.release(view_topic)
                elif kind is Kind.CANDLE:
                    for channel in self._candle_channels(plan.exchange, plan.candle_intervals):
                        bus.unsubscribe(sub, (Kind.CANDLE, plan.exchange, symbol, channel))
                else:
                    bus.unsubscribe(sub, (kind, plan.exchange, symbol, ""))
        if Kind.STATUS in plan.kinds:
            symbols = stream.status_symbols.get(plan.exchange, set())
            symbols.difference_update(plan.symbols)
            if not symbols:
                bus.unsubscribe(sub, (Kind.STATUS, plan.exchange, "", ""))
        ack = _ack(plan, unsubscribed=True)
        stream.send_control(pb.StreamResponse(ack=ack))
        return ack


def _ack(plan: Plan, unsubscribed: bool) -> pb.SubscriptionAck:
    return pb.SubscriptionAck(
        symbols=list(plan.symbols),
        kinds=[int(k) for k in plan.kinds],  # type: ignore[misc]
        unsubscribed=unsubscribed,
    )
