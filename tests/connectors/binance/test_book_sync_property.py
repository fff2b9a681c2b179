"""Property: whatever the stream does, a book the sync calls live is the true book.

Hypothesis drives a two-symbol `DepthModel` through random faults: events
lost (gaps), repeated, swapped, delivered late (so REST snapshots can be
ahead of the stream) and snapshots served late, lagging, ahead or at an id
that belongs to another symbol; resyncs and refreshes requested at random.
The `Replica` applies every emitted snapshot and delta as the state layer
would and compares the book with the model's truth after each one. A clean
tail at the end must bring every symbol back to live.
"""

from __future__ import annotations

import collections

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raven.connectors.binance import wire
from raven.connectors.binance.book_sync import BookState, BookSync
from tests.connectors.binance.depth_model import EX, DepthModel, delta, snapshot
from tests.connectors.binance.replica import Replica

SYMBOLS = ("AAAUSDT", "BBBUSDT")
ACTIONS = ["deliver"] * 6 + ["drop"] * 2 + ["repeat", "swap", "resync", "refresh", "wait"]


class Run:
    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.model = DepthModel(SYMBOLS, seed=data.draw(st.integers(0, 2**32), label="seed"))
        self.replica = Replica(self.model)
        self.requests: list[str] = []
        self.due: list[tuple[int, str]] = []  # (step, symbol) of snapshots on the way
        self.queue: collections.deque[wire.DepthUpdate] = collections.deque()
        limit = data.draw(st.sampled_from([3, 10, 10_000]), label="buffer_limit")
        self.sync = BookSync(EX, SYMBOLS, self.replica, self.requests.append, limit)

    def deliver(self, event: wire.DepthUpdate) -> None:
        self.sync.on_delta(delta(event))

    def step(self, now: int) -> None:
        draw = self.data.draw
        for _ in range(draw(st.integers(0, 2), label="generate")):
            self.queue.append(self.model.step())
        action = draw(st.sampled_from(ACTIONS), label="action")
        symbol = draw(st.sampled_from(SYMBOLS), label="symbol")
        if action == "resync":
            self.sync.mark_stale(symbol, "test")
        elif action == "refresh":
            self.sync.refresh(symbol)
        elif action != "wait" and self.queue:
            event = self.queue.popleft()
            if action == "swap" and self.queue:
                self.deliver(self.queue.popleft())
                self.deliver(event)
            elif action != "drop":
                self.deliver(event)
                if action == "repeat":
                    self.deliver(event)
        self.serve(now)

    def serve(self, now: int) -> None:
        draw = self.data.draw
        while self.requests:
            self.due.append((now + draw(st.integers(0, 8), label="delay"), self.requests.pop()))
        for item in [d for d in self.due if d[0] <= now]:
            self.due.remove(item)
            symbol = item[1]
            latest = self.model.last_update_id(symbol)
            lid = draw(
                st.sampled_from(
                    [
                        latest,  # as of now: possibly ahead of what was delivered
                        self.model.updates[symbol][-3][0],  # lagging, maybe mid-event
                        self.model.updates[symbol][-12][0],  # a REST cache well behind
                        self.model.updates[symbol][-25][0],
                        self.model.next_id - 1,  # the newest id of any symbol
                    ]
                ),
                label="snapshot id",
            )
            self.sync.on_snapshot(snapshot(self.model, symbol, lid))

    def clean_tail(self) -> None:
        """No faults, snapshots served at once as of now: every symbol goes live."""
        while self.queue:
            self.deliver(self.queue.popleft())
        for _ in range(3):
            for symbol in SYMBOLS:
                self.deliver(self.model.step(symbol))
                self.serve_now()
        self.serve_now()

    def serve_now(self) -> None:
        waiting = [s for _, s in self.due] + self.requests
        self.due.clear()
        self.requests.clear()
        for symbol in waiting:
            self.sync.on_snapshot(snapshot(self.model, symbol))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_live_book_is_always_the_true_book(data: st.DataObject) -> None:
    run = Run(data)
    steps = data.draw(st.integers(5, 80), label="steps")
    for now in range(steps):
        run.step(now)
        for symbol in SYMBOLS:
            if run.sync.stats[symbol].state is BookState.LIVE:
                assert run.replica.synced[symbol]
                book = run.replica.books[symbol]
                assert book.update_id == run.sync.stats[symbol].last_update_id
    run.clean_tail()
    for symbol in SYMBOLS:
        stats = run.sync.stats[symbol]
        assert stats.state is BookState.LIVE, f"{symbol} not live after a clean tail"
        run.replica.check(symbol)
        assert run.replica.books[symbol].update_id == stats.last_update_id
    assert run.replica.checks > 0
