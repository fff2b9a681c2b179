"""The bus's shared log: cursors, wrap-around, the policies' invariants under random load."""

from __future__ import annotations

import random

import pytest

from raven.core.bus import Bus, Policy, Subscriber, Topic
from raven.types import Kind
from tests.core.drain import drain_all

TRADES: Topic = (Kind.TRADE, "x", "BTCUSDT", "")
ETH_TRADES: Topic = (Kind.TRADE, "x", "ETHUSDT", "")
QUOTES: Topic = (Kind.QUOTE, "x", "BTCUSDT", "")
ETH_QUOTES: Topic = (Kind.QUOTE, "x", "ETHUSDT", "")
BOOK: Topic = (Kind.BOOK, "x", "BTCUSDT", "deltas/5")
CANDLES: Topic = (Kind.CANDLE, "x", "BTCUSDT", "1m")
TOPICS = (TRADES, ETH_TRADES, QUOTES, ETH_QUOTES, BOOK, CANDLES)


def test_a_subscriber_that_keeps_up_reads_across_many_wraps() -> None:
    bus, sub = Bus(log_size=16, direct_topics=0), Subscriber("s", 10_000)
    assert bus.size == 16
    bus.subscribe(sub, TRADES)
    sent: list[bytes] = []
    got: list[bytes] = []
    for n in range(200):
        chunk = str(n).encode()
        bus.publish(TRADES, chunk, n)
        bus.publish(QUOTES, b"nobody's", n)  # no subscriber: not even logged
        sent.append(chunk)
        if n % 7 == 6:
            got += drain_all(sub, limit=3)
    got += drain_all(sub)
    assert got == sent
    assert bus.head == 200
    assert sub.stats.queued == sub.stats.sent == 200
    assert not sub.queue, "never fell behind: nothing went through the private queue"


def test_a_laggard_is_settled_before_the_ring_overwrites_its_entries() -> None:
    bus, sub = Bus(log_size=16, direct_topics=0), Subscriber("s", 100)
    bus.subscribe(sub, TRADES)
    sent = [str(n).encode() for n in range(50)]
    for chunk in sent:
        bus.publish(TRADES, chunk, 0)
    assert sub.queue, "more than a log's worth unread: moved to its own queue"
    assert sub.live == 50
    assert drain_all(sub) == sent
    assert sub.stats.dropped == sub.stats.conflated == 0


def test_a_subscriber_sees_only_what_was_published_after_it_subscribed() -> None:
    bus, early, late = Bus(direct_topics=0), Subscriber("early", 100), Subscriber("late", 100)
    bus.subscribe(early, TRADES)
    bus.publish(TRADES, b"before", 0)  # still unread by `early`: in the log
    bus.subscribe(late, TRADES)
    bus.subscribe(late, QUOTES)
    bus.publish(QUOTES, b"q", 0)
    bus.publish(TRADES, b"after", 0)
    assert drain_all(late) == [b"q", b"after"]
    assert drain_all(early) == [b"before", b"after"]


def test_a_topic_added_while_behind_starts_at_the_subscription() -> None:
    bus, sub, other = Bus(direct_topics=0), Subscriber("s", 100), Subscriber("o", 100)
    bus.subscribe(sub, TRADES)
    bus.subscribe(other, QUOTES)
    bus.publish(QUOTES, b"q-before", 0)
    bus.publish(TRADES, b"t1", 0)
    bus.subscribe(sub, QUOTES)  # `sub` has unread entries, some of QUOTES
    bus.publish(QUOTES, b"q-after", 0)
    assert drain_all(sub) == [b"t1", b"q-after"]


def test_unsubscribe_keeps_what_was_published_before_it() -> None:
    bus, sub = Bus(direct_topics=0), Subscriber("s", 100)
    bus.subscribe(sub, TRADES)
    bus.subscribe(sub, QUOTES)
    bus.publish(TRADES, b"t1", 0)
    bus.publish(QUOTES, b"q1", 0)
    bus.unsubscribe(sub, TRADES)
    sub.push_control(b"ack", 0)
    bus.publish(TRADES, b"t2", 0)
    bus.publish(QUOTES, b"q2", 0)
    assert drain_all(sub) == [b"t1", b"q1", b"control:ack", b"q2"]
    assert not bus.has_subscribers(TRADES)


def test_a_topic_id_freed_and_reused_does_not_leak_old_entries() -> None:
    bus, a, b = Bus(direct_topics=0), Subscriber("a", 100), Subscriber("b", 100)
    bus.subscribe(a, TRADES)
    bus.subscribe(b, ETH_TRADES)
    bus.publish(TRADES, b"btc", 0)
    bus.unsubscribe(a, TRADES)  # its id is free again
    bus.subscribe(b, QUOTES)  # may take that id
    bus.publish(QUOTES, b"q", 0)
    assert drain_all(b) == [b"q"]
    assert drain_all(a) == [b"btc"]


def test_only_idle_subscribers_of_the_topic_are_woken() -> None:
    bus, sub = Bus(direct_topics=0), Subscriber("s", 100)
    bus.subscribe(sub, TRADES)
    bus.subscribe(Subscriber("other", 100), QUOTES)
    assert drain_all(sub) == []

    def state() -> tuple[bool, bool, bool]:
        return sub.idle, sub.wakeup.is_set(), sub in bus.idle

    assert state() == (True, False, True)
    bus.publish(QUOTES, b"q", 0)
    assert state() == (True, False, True), "not its topic"
    bus.publish(TRADES, b"t", 0)
    assert state() == (False, True, False)


def test_many_subscribers_share_one_log_entry_per_event() -> None:
    bus = Bus(direct_topics=0)
    subs = [Subscriber(f"s{i}", 1000) for i in range(200)]
    for sub in subs:
        bus.subscribe(sub, TRADES)
        bus.subscribe(sub, QUOTES)
        drain_all(sub)
    for n in range(300):
        bus.publish(TRADES if n % 2 else QUOTES, str(n).encode(), n)
    assert bus.head == 300, "one entry per event, whatever the subscriber count"
    assert not bus.idle, "all woken by the first publish"
    assert all(not sub.queue and sub.live == 300 for sub in subs), "nothing per subscriber"
    expected = [str(n).encode() for n in range(300)]
    assert all(drain_all(sub, limit=128) == expected for sub in subs)


def test_remove_keeps_the_unread_for_a_final_drain() -> None:
    bus, sub = Bus(direct_topics=0), Subscriber("s", 100)
    bus.subscribe(sub, TRADES)
    bus.publish(TRADES, b"t1", 0)
    bus.remove(sub)
    bus.publish(TRADES, b"t2", 0)
    sub.push_state((Kind.STATUS, "", "", ""), b"bye", 0)
    assert sub.bus is None
    assert drain_all(sub) == [b"t1", b"bye"]


class Client:
    """What one subscriber's client sees, checked as it arrives: publish order
    (steps never go back), each book delta chaining from the book it holds,
    Gap counts; and what was published to it, for the final checks."""

    def __init__(self, sub: Subscriber) -> None:
        self.sub = sub
        self.topics: set[Topic] = set()
        self.published: list[tuple[Topic, bytes, bool]] = []  # (topic, chunk, keep) routed here
        self.delivered: list[bytes] = []
        self.step = -1  # publish step of the last event or control received
        self.book: int | None = None  # the book version held (None: none yet)
        self.gaps = 0

    def drain(self, limit: int) -> None:
        control, events = self.sub.drain(limit, 0)
        self.gaps += self.sub.pending_gap  # the sender turns it into a Gap marker
        self.sub.pending_gap = 0
        if control is not None:
            self.see_step(int(control.split(b"@")[1]))
            if control.startswith(b"book"):
                self.book = None  # (re)subscribed to the book: a fresh start
        for chunk in events:
            self.see(chunk)

    def see(self, chunk: bytes) -> None:
        self.delivered.append(chunk)
        parts = chunk.split(b":")
        if parts[0] == b"snap":
            self.book = int(parts[1])  # the view as of when it was sent
            return
        self.see_step(int(parts[1]))
        if parts[0] == b"delta":
            version = int(parts[2])
            assert self.book is None or self.book == version, "a delta must chain"
            self.book = version + 1

    def see_step(self, step: int) -> None:
        assert step > self.step, "publish order"
        self.step = step

    def check_counts(self) -> None:
        s, sub = self.sub.stats, self.sub
        assert self.gaps + sub.pending_gap == s.dropped
        assert s.sent == len(self.delivered)
        if not sub.failure:
            assert s.queued == len(self.published)
            assert s.queued == s.sent + s.conflated + s.dropped + sub.live
            assert sub.held <= sub.capacity + len(TOPICS)
        else:
            assert s.disconnected == 1
            assert sub.policies[Kind.TRADE] is Policy.DISCONNECT

    def check_final(self) -> None:
        """After a full drain: nothing lost that no policy took, the newest
        event of each conflated topic delivered, the book current."""
        s, delivered = self.sub.stats, set(self.delivered)
        if self.sub.failure:
            return
        if not (s.conflated or s.dropped):
            assert self.delivered == [chunk for _, chunk, _ in self.published]
        newest = {t: c for t, c, keep in self.published if t[0] is not Kind.TRADE and not keep}
        for topic, chunk in newest.items():
            if topic != BOOK:
                assert chunk in delivered, f"newest {topic} delivered"
            elif chunk not in delivered:  # conflated: a snapshot as of after it follows
                version = int(chunk.split(b":")[2])
                snaps = [int(c[5:]) for c in self.delivered if c.startswith(b"snap:")]
                assert snaps
                assert max(snaps) > version
        kept = [c for t, c, keep in self.published if t[0] is Kind.TRADE or keep]
        assert len(delivered.intersection(kept)) >= len(kept) - s.dropped


def random_ops(seed: int, steps: int, direct_topics: int) -> None:
    """Several subscribers on one small log, their clients checked after
    every operation (see `Client`) and at the end. With `direct_topics` 2
    they switch between reading the log and being offered each event as
    their topic count crosses it."""
    rng = random.Random(seed)
    bus = Bus(log_size=32, direct_topics=direct_topics)
    version = 0  # the book view's: moves on after each delta is published
    clients: list[Client] = []
    for i, capacity in enumerate((3, 8, 40, 200)):
        sub = Subscriber(f"s{i}", capacity)
        if i == 1:
            sub.policies[Kind.TRADE] = Policy.DISCONNECT
        clients.append(Client(sub))

    def resnapshot() -> bytes:
        return b"snap:%d" % version

    for step in range(steps):
        roll = rng.random()
        if roll < 0.6:
            topic = rng.choice(TOPICS)
            keep = topic == CANDLES and rng.random() < 0.2
            if topic == BOOK:
                chunk = b"delta:%d:%d" % (step, version)
            else:
                chunk = b"%s:%d" % (topic[0].name.encode(), step)
            for client in clients:
                if topic in client.topics:
                    client.published.append((topic, chunk, keep))
            bus.publish(topic, chunk, step, keep, resnapshot if topic == BOOK else None)
            version += topic == BOOK
        else:
            client = rng.choice(clients)
            if roll < 0.85:
                client.drain(rng.randint(1, 12))
            elif roll < 0.9:
                client.sub.push_control(b"ack@%d" % step, step)
            else:
                topic = rng.choice(TOPICS)
                if topic in client.topics and rng.random() < 0.5:
                    client.topics.discard(topic)
                    assert bus.unsubscribe(client.sub, topic)
                elif topic not in client.topics:
                    client.topics.add(topic)
                    assert bus.subscribe(client.sub, topic)
                    if topic == BOOK:
                        client.sub.push_control(b"book@%d" % step, step)
        for client in clients:
            client.check_counts()
    for client in clients:
        while client.sub.live or client.sub.queue:
            client.drain(1000)
        client.check_counts()
        client.check_final()


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("direct_topics", [0, 2])
def test_policies_keep_their_invariants_under_random_load(seed: int, direct_topics: int) -> None:
    random_ops(seed, 3000, direct_topics)


def mode(sub: Subscriber) -> str:
    return "direct" if sub.direct else "log"


def test_few_topics_are_offered_directly_and_many_read_the_log() -> None:
    bus = Bus(direct_topics=2)
    sub = Subscriber("s", 100)
    bus.subscribe(sub, TRADES)
    bus.publish(TRADES, b"t1", 0)
    assert mode(sub) == "direct"
    assert sub.queue, "offered on publish"
    bus.subscribe(sub, QUOTES)
    bus.subscribe(sub, BOOK)  # a third topic: reads the log from here on
    bus.publish(QUOTES, b"q1", 0)
    assert mode(sub) == "log"
    assert bus.head == 1, "only what a log reader wants is logged"
    bus.unsubscribe(sub, BOOK)  # back to two: offered again
    bus.publish(TRADES, b"t2", 0)
    assert mode(sub) == "direct"
    assert drain_all(sub) == [b"t1", b"q1", b"t2"]


def test_a_waiting_subscriber_that_starts_reading_the_log_is_woken() -> None:
    bus, sub = Bus(direct_topics=1), Subscriber("s", 100)
    bus.subscribe(sub, TRADES)
    assert drain_all(sub) == []
    assert not sub.wakeup.is_set(), "its sender waits"
    bus.subscribe(sub, QUOTES)  # two topics: a log reader now
    bus.publish(QUOTES, b"q", 0)
    assert sub.wakeup.is_set()
    assert drain_all(sub) == [b"q"]
