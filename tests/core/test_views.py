"""Book views: top-N deltas rebuild the right book, even through conflation."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from raven import codec
from raven.core.book import OrderBook
from raven.core.books import BookKeeper
from raven.core.bus import Bus, Subscriber
from raven.core.state import MarketRecord
from raven.core.views import BookViews, diff_levels
from raven.model import BookDelta, BookSnapshot, Level
from raven.v1 import market_data_pb2 as pb
from tests.core.bookgen import random_book_events

EX = "x"


def test_diff_levels_removes_first_then_sets() -> None:
    old = (("100.0", "1"), ("99.0", "2"), ("98.0", "3"))
    new = (("100.0", "1"), ("99.0", "5"), ("97.5", "1"))
    assert diff_levels(old, new) == (("98.0", "0"), ("99.0", "5"), ("97.5", "1"))
    assert diff_levels(old, old) == ()


class Client:
    """What a client does: load snapshots, apply deltas in order, check the chain."""

    def __init__(self) -> None:
        self.book = OrderBook("BTC")
        self.update_id = -1
        self.seen: list[int] = []

    def take(self, chunks: list[bytes]) -> None:
        frame = pb.StreamResponse.FromString(codec.frame(1, chunks, 0))
        for message in frame.events:
            event = codec.from_proto(message)
            if isinstance(event, BookSnapshot):
                self.book.load(event.bids, event.asks, event.update_id)
            elif isinstance(event, BookDelta):
                assert event.prev_update_id == self.update_id, "delta does not chain"
                self.book.apply(event.bids, event.asks, event.update_id)
            else:
                continue
            self.update_id = self.book.update_id
            self.seen.append(self.update_id)


def replay(events: list[BookSnapshot | BookDelta], depth: int, capacity: int, seed: int) -> None:
    bus = Bus()
    views = BookViews(bus)
    keeper = BookKeeper(bus, views, None)
    rec = MarketRecord(EX, "BTC")
    truth: dict[int, tuple[tuple[Level, ...], tuple[Level, ...]]] = {}
    reference = OrderBook("BTC")
    sub = Subscriber("client", capacity)
    client = Client()
    rng = random.Random(seed)
    half = len(events) // 2
    for i, event in enumerate(events):
        if isinstance(event, BookSnapshot):
            keeper.snapshot(rec, event, 0)
            reference.load(event.bids, event.asks, event.update_id)
        else:
            keeper.delta(rec, event, 0)
            reference.apply(event.bids, event.asks, event.update_id)
        truth[event.update_id] = reference.top(depth)
        if i == half:  # subscribe mid-stream, like StreamRegistry does
            view = views.delta_view(rec, depth)
            bus.subscribe(sub, view.topic)
            sub.push_state(view.topic, view.snapshot_chunk(), 0, view.resnapshot)
        if i >= half and rng.random() < 0.3:  # a client that reads now and then
            client.take(sub.drain(rng.randint(1, 5), 0)[1])
            assert client.book.top(depth) == truth[client.update_id]
    client.take(sub.drain(10**6, 0)[1])
    assert client.book.top(depth) == reference.top(depth)
    for update_id in client.seen:
        assert update_id in truth


def test_client_book_matches_over_thousands_of_events() -> None:
    replay(random_book_events(seed=1, count=3000), depth=10, capacity=10_000, seed=1)


def test_conflated_client_book_still_matches() -> None:
    replay(random_book_events(seed=2, count=3000), depth=5, capacity=3, seed=2)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    depth=st.integers(1, 25),
    capacity=st.integers(1, 50),
)
def test_any_depth_and_capacity(seed: int, depth: int, capacity: int) -> None:
    replay(random_book_events(seed, count=300), depth, capacity, seed)


def test_snapshot_after_resync_is_a_delta_for_the_view() -> None:
    events = random_book_events(seed=3, count=50)
    bus = Bus()
    views = BookViews(bus)
    keeper = BookKeeper(bus, views, None)
    rec = MarketRecord(EX, "BTC")
    keeper.snapshot(rec, events[0], 0)  # type: ignore[arg-type]
    view = views.delta_view(rec, 5)
    sub = Subscriber("c", 100)
    bus.subscribe(sub, view.topic)
    sub.push_state(view.topic, view.snapshot_chunk(), 0, view.resnapshot)
    fresh = BookSnapshot(EX, "BTC", (("90.0", "1"),), (("110.0", "1"),), 777, 0, 0)
    keeper.snapshot(rec, fresh, 0)
    client = Client()
    client.take(sub.drain(100, 0)[1])
    assert client.update_id == 777
    assert client.book.top(5) == ((("90.0", "1"),), (("110.0", "1"),))
