"""A lagging log reader caught up in bulk: each policy, exact counts, recovery."""

from __future__ import annotations

from raven.core.bus import Bus, Policy, Subscriber, Topic
from raven.types import Kind
from tests.core.drain import drain_all

TRADES: Topic = (Kind.TRADE, "x", "BTCUSDT", "")
QUOTES: Topic = (Kind.QUOTE, "x", "BTCUSDT", "")
ETH_QUOTES: Topic = (Kind.QUOTE, "x", "ETHUSDT", "")
BOOK: Topic = (Kind.BOOK, "x", "BTCUSDT", "deltas/5")
CANDLES: Topic = (Kind.CANDLE, "x", "BTCUSDT", "1m")


def reader(capacity: int, *topics: Topic, log_size: int = 64) -> tuple[Bus, Subscriber]:
    """A subscriber that reads the log (not offered each event directly)."""
    bus, sub = Bus(log_size=log_size, direct_topics=0), Subscriber("s", capacity)
    for topic in topics:
        bus.subscribe(sub, topic)
    assert not sub.direct
    return bus, sub


def test_conflation_keeps_the_newest_per_topic_at_its_place_in_time() -> None:
    bus, sub = reader(4, QUOTES, ETH_QUOTES, TRADES)
    for n in range(6):
        bus.publish(QUOTES, b"b%d" % n, n)
    bus.publish(TRADES, b"t", 6)
    for n in range(3):
        bus.publish(ETH_QUOTES, b"e%d" % n, 7 + n)
    sub.settle()  # as its next deadline would: the unread entries, in one batch
    assert drain_all(sub) == [b"b5", b"t", b"e2"]
    assert (sub.stats.conflated, sub.stats.dropped, sub.pending_gap) == (7, 0, 0)
    assert sub.stats.queued == sub.stats.sent + sub.stats.conflated == 10


def test_drop_oldest_drops_exactly_the_overflow_and_counts_the_gap() -> None:
    bus, sub = reader(4, TRADES, QUOTES)
    for n in range(10):
        bus.publish(TRADES, b"%d" % n, n)
    sub.settle()
    assert drain_all(sub) == [b"6", b"7", b"8", b"9"]
    assert sub.stats.dropped == sub.pending_gap == 6
    assert sub.stats.queued == sub.stats.sent + sub.stats.dropped


def test_conflatable_topics_give_way_before_anything_is_dropped() -> None:
    bus, sub = reader(4, TRADES, QUOTES)
    for n in range(4):
        bus.publish(QUOTES, b"q%d" % n, n)
    bus.publish(TRADES, b"t1", 4)
    bus.publish(TRADES, b"t2", 5)
    sub.settle()
    assert drain_all(sub) == [b"q3", b"t1", b"t2"]
    assert (sub.stats.conflated, sub.stats.dropped) == (3, 0)


def test_keep_events_are_not_conflated_in_a_batch() -> None:
    bus, sub = reader(2, CANDLES, TRADES)
    bus.publish(CANDLES, b"open", 0)
    bus.publish(CANDLES, b"closed", 1, True)
    bus.publish(CANDLES, b"next1", 2)
    bus.publish(CANDLES, b"next2", 3)
    sub.settle()
    assert drain_all(sub) == [b"closed", b"next2"]
    assert sub.stats.conflated == 2


def test_disconnect_fails_the_subscriber_when_the_batch_overflows() -> None:
    bus, sub = reader(4, TRADES, QUOTES)
    sub.policies[Kind.TRADE] = Policy.DISCONNECT
    failures: list[str] = []
    sub.on_failure = lambda: failures.append(sub.failure)
    for n in range(10):
        bus.publish(QUOTES, b"q%d" % n, n)  # conflated: no reason to fail
    assert not sub.failure
    for n in range(10):
        bus.publish(TRADES, b"t%d" % n, 10 + n)
    assert sub.failure.startswith("queue full (4 events)")
    assert failures == [sub.failure]
    assert sub.stats.disconnected == 1


def test_a_conflated_book_view_is_resnapshotted_and_deltas_chain_after_it() -> None:
    bus, sub = reader(3, BOOK, TRADES)
    version = 0

    def resnapshot() -> bytes:
        return b"snap@%d" % version

    def delta() -> None:
        nonlocal version
        bus.publish(BOOK, b"delta@%d" % version, version, False, resnapshot)
        version += 1  # the view moves on after publishing

    for _ in range(8):
        delta()
    assert sub.due, "its deltas were conflated: a snapshot is due"
    delta()  # unread when the client drains: absorbed into the snapshot
    assert drain_all(sub) == [b"snap@9"]
    assert sub.stats.conflated == 8
    delta()
    delta()
    assert drain_all(sub) == [b"delta@9", b"delta@10"], "chained from snap@9"


def test_a_book_view_conflated_to_make_room_is_resnapshotted() -> None:
    bus, sub = Bus(), Subscriber("s", 3)  # offered each event: the per-event queue
    bus.subscribe(sub, BOOK)
    bus.subscribe(sub, TRADES)
    version = 0

    def resnapshot() -> bytes:
        return b"snap@%d" % version

    for _ in range(2):
        bus.publish(BOOK, b"delta@%d" % version, 0, False, resnapshot)
        version += 1
    bus.publish(TRADES, b"t1", 0)
    bus.publish(TRADES, b"t2", 0)  # full: delta@0 gives way, delta@1 would not chain
    assert drain_all(sub) == [b"snap@2", b"t1", b"t2"]


def test_a_laggard_is_settled_once_per_slack_not_on_every_publish() -> None:
    # The bus's first subscriber: a slack of half its capacity (8), 4.
    bus, sub = reader(8, TRADES, QUOTES, log_size=64)
    for n in range(13):
        bus.publish(TRADES, b"%d" % n, n)  # capacity + slack behind: settled
    assert (sub.held, sub.stats.dropped, len(sub.queue)) == (8, 5, 8)
    for n in range(13, 17):
        bus.publish(TRADES, b"%d" % n, n)
    assert len(sub.queue) == 8, "the new entries wait in the log for the next batch"
    assert sub.live == 12
    assert sub.stats.dropped == 5
    bus.publish(TRADES, b"17", 17)  # a slack later: the next batch, dropped in bulk
    assert (sub.held, sub.stats.dropped, sub.pending_gap) == (8, 10, 10)
    assert drain_all(sub) == [b"%d" % n for n in range(10, 18)]


def test_laggards_that_fell_behind_together_are_settled_at_different_publishes() -> None:
    bus = Bus(log_size=1024, direct_topics=0)
    subs = [Subscriber(f"s{i}", 64) for i in range(8)]
    for sub in subs:
        bus.subscribe(sub, TRADES)
        bus.subscribe(sub, QUOTES)
    settled_at: dict[str, int] = {}
    for n in range(200):
        bus.publish(TRADES, b"%d" % n, n)
        for sub in subs:
            if sub.queue and sub.name not in settled_at:
                settled_at[sub.name] = n
    assert len(settled_at) == 8
    assert len(set(settled_at.values())) == 8, "each its own slack: no single stall"


def test_a_laggard_that_drains_reads_straight_from_the_log_again() -> None:
    bus, sub = reader(4, TRADES, QUOTES)
    for n in range(10):
        bus.publish(TRADES, b"%d" % n, n)
    sub.settle()
    assert drain_all(sub) == [b"6", b"7", b"8", b"9"]
    assert not sub.queue
    bus.publish(TRADES, b"10", 10)
    bus.publish(QUOTES, b"q", 11)
    assert not sub.queue, "nothing per subscriber on publish"
    assert sub.live == 2
    assert drain_all(sub) == [b"10", b"q"]
    assert sub.stats.dropped == 6, "no more losses once caught up"


def test_many_laggards_share_the_log_and_each_keeps_exact_counts() -> None:
    bus = Bus(log_size=256, direct_topics=0)
    subs = [Subscriber(f"s{i}", 50) for i in range(20)]
    for sub in subs:
        for topic in (TRADES, QUOTES, ETH_QUOTES):
            bus.subscribe(sub, topic)
    topics = (TRADES, QUOTES, ETH_QUOTES)
    for n in range(3000):
        bus.publish(topics[n % 3], b"%d" % n, n)
    for sub in subs:
        got = drain_all(sub)
        s = sub.stats
        assert s.queued == 3000 == s.sent + s.conflated + s.dropped
        assert s.dropped == sub.pending_gap
        assert got[-3:] == [b"2997", b"2998", b"2999"], "the newest always arrives"
        assert got == sorted(got, key=int), "in publish order"
