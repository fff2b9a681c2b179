"""Open client streams: each one's subscriber queue, control frames and liveness."""

from __future__ import annotations

import collections
import time
import uuid

from raven import codec
from raven.api.requests import Plan
from raven.core.bus import Bus, Subscriber
from raven.core.state import MarketState
from raven.v1 import market_data_pb2 as pb


class ClientStream:
    """Server-side state of one StreamMarketData call."""

    def __init__(self, peer: str, capacity: int) -> None:
        self.id = uuid.uuid4().hex
        self.peer = peer
        self.sub = Subscriber(self.id, capacity)
        self.control: collections.deque[bytes] = collections.deque()  # non-event frames
        self.last_heard = time.monotonic()

    def send_control(self, response: pb.StreamResponse) -> None:
        self.control.append(response.SerializeToString())
        self.sub.wakeup.set()

    def next_frame(self, limit: int) -> bytes | None:
        """The next frame to write: control frames first, then queued events."""
        if self.control:
            return self.control.popleft()
        sub = self.sub
        chunks = sub.drain(limit)
        if sub.pending_gap:
            now = time.time_ns()
            chunks.insert(0, codec.gap_chunk(sub.pending_gap, "queue full: oldest dropped", now))
            sub.pending_gap = 0
        if not chunks:
            return None
        first = sub.next_sequence
        sub.next_sequence += len(chunks)
        return codec.frame(first, chunks, time.time_ns())


class StreamRegistry:
    """The open streams by id, and the subscribe / unsubscribe operations on them."""

    def __init__(self, bus: Bus, state: MarketState, catalog: dict[str, frozenset[str]]) -> None:
        self.bus = bus
        self.state = state
        self.catalog = catalog
        self.streams: dict[str, ClientStream] = {}

    def open(self, peer: str, capacity: int) -> ClientStream:
        stream = ClientStream(peer, capacity)
        self.streams[stream.id] = stream
        return stream

    def close(self, stream: ClientStream) -> None:
        self.bus.remove(stream.sub)
        self.streams.pop(stream.id, None)

    def subscribe(self, stream: ClientStream, plan: Plan) -> pb.SubscriptionAck:
        """Route the plan's topics to the stream, current state first. No await
        inside, so no live event can slip in between the state and the routing."""
        sub = stream.sub
        symbols = self._expand(plan)
        for kind in plan.kinds:
            if plan.policy is not None:
                sub.policies[kind] = plan.policy
            for symbol in symbols:
                if self.bus.subscribed(sub, kind, plan.exchange, symbol):
                    continue
                record = self.state.get(plan.exchange, symbol)
                if record is not None:
                    sub.push_now(record.chunks(kind))
            for symbol in plan.symbols:
                self.bus.subscribe(sub, kind, plan.exchange, symbol)
        return pb.SubscriptionAck(symbols=symbols, kinds=list(plan.kinds))  # type: ignore[arg-type]

    def unsubscribe(self, stream: ClientStream, plan: Plan) -> pb.SubscriptionAck:
        for kind in plan.kinds:
            for symbol in plan.symbols:
                self.bus.unsubscribe(stream.sub, kind, plan.exchange, symbol)
        return pb.SubscriptionAck(
            symbols=self._expand(plan),
            kinds=list(plan.kinds),  # type: ignore[arg-type]
            unsubscribed=True,
        )

    def _expand(self, plan: Plan) -> list[str]:
        if plan.symbols == ("*",):
            return sorted(self.catalog[plan.exchange])
        return list(plan.symbols)
