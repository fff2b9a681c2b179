"""Subscriber queues: capacity, each overflow policy, ordering, control frames."""

from __future__ import annotations

import pytest

from raven.core.bus import Bus, Policy, Subscriber, Topic
from raven.core.latency import Histogram
from raven.types import Kind
from tests.core.drain import drain_all

TRADES: Topic = (Kind.TRADE, "x", "BTCUSDT", "")
QUOTES: Topic = (Kind.QUOTE, "x", "BTCUSDT", "")
ETH_QUOTES: Topic = (Kind.QUOTE, "x", "ETHUSDT", "")


def publish(bus: Bus, topic: Topic, *items: bytes) -> None:
    for item in items:
        bus.publish(topic, item, 0)


def test_below_capacity_everything_arrives_in_order() -> None:
    bus, sub = Bus(), Subscriber("s", 10)
    bus.subscribe(sub, TRADES)
    bus.subscribe(sub, QUOTES)
    publish(bus, TRADES, b"t1")
    publish(bus, QUOTES, b"q1", b"q2")
    publish(bus, TRADES, b"t2")
    assert drain_all(sub) == [b"t1", b"q1", b"q2", b"t2"]
    assert sub.stats.queued == sub.stats.sent == 4
    assert sub.stats.conflated == sub.stats.dropped == 0


def test_unsubscribed_topics_are_not_delivered() -> None:
    bus, sub = Bus(), Subscriber("s", 10)
    bus.subscribe(sub, TRADES)
    publish(bus, QUOTES, b"q")
    bus.unsubscribe(sub, TRADES)
    publish(bus, TRADES, b"t")
    assert drain_all(sub) == []
    assert not bus.has_subscribers(TRADES)


def test_drop_oldest_drops_and_counts_a_gap() -> None:
    bus, sub = Bus(), Subscriber("s", 3)
    bus.subscribe(sub, TRADES)
    publish(bus, TRADES, b"1", b"2", b"3", b"4", b"5")
    assert sub.pending_gap == 2
    assert drain_all(sub) == [b"3", b"4", b"5"]
    assert sub.stats.dropped == 2


def test_conflate_keeps_the_newest_per_topic() -> None:
    bus, sub = Bus(), Subscriber("s", 3)
    bus.subscribe(sub, QUOTES)
    bus.subscribe(sub, ETH_QUOTES)
    publish(bus, QUOTES, b"b1", b"b2")
    publish(bus, ETH_QUOTES, b"e1")
    publish(bus, QUOTES, b"b3")  # full: b1 and b2 give way to b3, at the end
    publish(bus, QUOTES, b"b4")  # room again: queued
    publish(bus, ETH_QUOTES, b"e2")  # full: e1 gives way
    assert drain_all(sub) == [b"b3", b"b4", b"e2"]
    assert sub.stats.conflated == 3
    assert sub.pending_gap == 0


def test_disconnect_fails_the_subscriber_once() -> None:
    bus, sub = Bus(), Subscriber("s", 2)
    sub.policies[Kind.TRADE] = Policy.DISCONNECT
    failures: list[str] = []
    sub.on_failure = lambda: failures.append(sub.failure)
    bus.subscribe(sub, TRADES)
    publish(bus, TRADES, b"1", b"2", b"3", b"4")
    assert sub.failure.startswith("queue full (2 events)")
    assert failures == [sub.failure]
    assert sub.stats.disconnected == 1


def test_drop_oldest_conflates_conflatable_topics_first() -> None:
    bus, sub = Bus(), Subscriber("s", 3)
    bus.subscribe(sub, TRADES)
    bus.subscribe(sub, QUOTES)
    publish(bus, QUOTES, b"q1", b"q2")
    publish(bus, TRADES, b"t1", b"t2")  # full: q1 is conflated away instead of a trade
    assert drain_all(sub) == [b"q2", b"t1", b"t2"]
    assert sub.stats.dropped == 0
    assert sub.stats.conflated == 1


def test_a_conflated_book_delta_becomes_a_snapshot() -> None:
    book: Topic = (Kind.BOOK, "x", "BTCUSDT", "deltas/5")
    bus, sub = Bus(), Subscriber("s", 2)
    bus.subscribe(sub, book)
    view = {"state": b"snap@0"}
    resnapshot = lambda: view["state"]  # noqa: E731
    sub.push_state(book, b"snap@0", 0, resnapshot)
    for n in range(1, 7):
        bus.publish(book, f"delta@{n}".encode(), 0, False, resnapshot)
        view["state"] = f"snap@{n}".encode()  # the view moves on after publishing
    # Each overflow replaced the queued deltas by a snapshot made when sent:
    # the client's book jumps to the view's current state, and stays correct.
    assert drain_all(sub) == [b"snap@6"]
    assert sub.stats.conflated >= 5
    bus.publish(book, b"delta@7", 0, False, resnapshot)
    view["state"] = b"snap@7"
    assert drain_all(sub) == [b"delta@7"]  # keeping up again: deltas as they come


def test_pending_snapshot_is_made_before_a_newer_delta_is_queued() -> None:
    book: Topic = (Kind.BOOK, "x", "BTCUSDT", "deltas/5")
    bus, sub = Bus(), Subscriber("s", 2)
    bus.subscribe(sub, book)
    bus.subscribe(sub, TRADES)
    view = {"state": b""}
    resnapshot = lambda: view["state"]  # noqa: E731
    for n in (1, 2, 3):
        bus.publish(book, f"delta@{n}".encode(), 0, False, resnapshot)
        view["state"] = f"snap@{n}".encode()
    assert sub.drain(1, 0) == (None, [b"snap@3"])  # delta@1, 2 collapsed into snap@3
    bus.publish(book, b"delta@4", 0, False, resnapshot)  # room again: queued as a delta
    view["state"] = b"snap@4"
    assert drain_all(sub) == [b"delta@4"]


def test_control_frames_keep_their_place_and_split_frames() -> None:
    sub = Subscriber("s", 10)
    bus = Bus()
    bus.subscribe(sub, TRADES)
    publish(bus, TRADES, b"1", b"2")
    sub.push_control(b"ack", 0)
    publish(bus, TRADES, b"3")
    assert sub.drain(10, 0) == (None, [b"1", b"2"])
    assert sub.drain(10, 0) == (b"ack", [])
    assert sub.drain(10, 0) == (None, [b"3"])


def test_keep_events_are_never_conflated() -> None:
    candles: Topic = (Kind.CANDLE, "x", "BTCUSDT", "1m")
    bus, sub = Bus(), Subscriber("s", 2)
    bus.subscribe(sub, candles)
    bus.publish(candles, b"open", 0)
    bus.publish(candles, b"closed", 0, True)
    bus.publish(candles, b"next1", 0)
    bus.publish(candles, b"next2", 0)
    assert drain_all(sub) == [b"closed", b"next2"]  # open conflated into next; closed kept


def test_frames_are_capped() -> None:
    bus, sub = Bus(), Subscriber("s", 100)
    bus.subscribe(sub, TRADES)
    publish(bus, TRADES, *[bytes([i]) for i in range(10)])
    assert len(sub.drain(4, 0)[1]) == 4
    assert len(sub.drain(4, 0)[1]) == 4
    assert len(sub.drain(4, 0)[1]) == 2
    assert not sub.wakeup.is_set()


def test_latency_is_observed_per_frame() -> None:
    histogram = Histogram()
    bus, sub = Bus(), Subscriber("s", 10, histogram)
    bus.subscribe(sub, TRADES)
    bus.publish(TRADES, b"1", 1_000)
    bus.publish(TRADES, b"2", 2_000)
    sub.drain(10, 1_000_000)
    assert histogram.count == 1
    assert histogram.sum == pytest.approx(999_000 / 1e9)


def test_queue_stays_bounded_under_any_mix() -> None:
    bus, sub = Bus(), Subscriber("s", 50)
    topics = [(Kind.QUOTE, "x", f"S{i}", "") for i in range(10)]
    bus.subscribe(sub, TRADES)
    for topic in topics:
        bus.subscribe(sub, topic)
    for n in range(5000):
        bus.publish(topics[n % 10], b"q", 0)
        bus.publish(TRADES, b"t", 0)
        assert sub.live <= 50 + len(topics)
    delivered = drain_all(sub)
    assert len(delivered) == sub.stats.sent
    assert sub.stats.queued == sub.stats.sent + sub.stats.conflated + sub.stats.dropped
