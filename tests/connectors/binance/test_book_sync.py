"""The book sync state machine, one situation at a time (synthetic, exact sequences)."""

from __future__ import annotations

from raven.connectors.binance.book_sync import BookState, BookSync
from raven.model import BookDelta, BookSnapshot, Status
from raven.types import StatusKind
from tests.connectors.binance.depth_model import EX, DepthModel, delta, snapshot
from tests.connectors.binance.replica import Replica


class Harness:
    """A BookSync whose output goes to a checking Replica; snapshot requests are recorded."""

    def __init__(
        self, symbols: tuple[str, ...] = ("AAAUSDT", "BBBUSDT"), raw: bool = False, **kw: int
    ) -> None:
        self.model = DepthModel(symbols, seed=5)
        self.replica = Replica(None if raw else self.model)  # raw: hand-made ids, no model
        self.wanted: list[str] = []
        self.sync = BookSync(EX, symbols, self.replica, self.wanted.append, clock=lambda: 7, **kw)

    def send(self, symbol: str, n: int = 1) -> list[BookDelta]:
        out = []
        for _ in range(n):
            d = delta(self.model.step(symbol))
            self.sync.on_delta(d)
            out.append(d)
        return out

    def state(self, symbol: str) -> BookState:
        return self.sync.stats[symbol].state

    def kinds(self) -> list[str]:
        return [
            f"status:{e.status.name}" if isinstance(e, Status) else type(e).__name__
            for e in self.replica.events
        ]


def raw_delta(
    symbol: str, first: int, last: int, prev: int, bids: list[tuple[str, str]]
) -> BookDelta:
    return BookDelta(EX, symbol, tuple(bids), (), first, last, prev, 1, 1)


def raw_snapshot(symbol: str, update_id: int, bids: list[tuple[str, str]]) -> BookSnapshot:
    return BookSnapshot(EX, symbol, tuple(bids), (), update_id, 1, 1)


def test_events_before_the_snapshot_are_buffered_then_the_book_goes_live() -> None:
    h = Harness()
    sent = h.send("AAAUSDT", 3)
    assert h.wanted == ["AAAUSDT"], "one snapshot request on the first event"
    assert h.replica.events == [], "nothing goes out before the snapshot"
    assert h.state("AAAUSDT") is BookState.SYNCING
    # the snapshot is taken after the 2nd event: the 1st is dropped, the 3rd bridges
    h.sync.on_snapshot(snapshot(h.model, "AAAUSDT", sent[1].update_id))
    # bridge: u == lastUpdateId is the 2nd event itself
    assert h.kinds() == ["BookSnapshot", "BookDelta", "BookDelta", "status:BOOK_LIVE"]
    assert [e.update_id for e in h.replica.events[1:3]] == [sent[1].update_id, sent[2].update_id]  # type: ignore[union-attr]
    stats = h.sync.stats["AAAUSDT"]
    assert stats.state is BookState.LIVE
    assert stats.last_update_id == sent[2].update_id
    assert stats.dropped == 1
    h.send("AAAUSDT", 5)
    assert h.replica.checks == 1 + 2 + 5


def test_bridge_at_the_lower_edge_u_first_equals_last_update_id() -> None:
    h = Harness(raw=True)
    d = raw_delta("AAAUSDT", 100, 105, 90, [("1.0", "2")])
    h.sync.on_delta(d)
    h.sync.on_snapshot(raw_snapshot("AAAUSDT", 100, [("1.0", "1"), ("0.9", "1")]))
    assert h.sync.stats["AAAUSDT"].bridge == (100, 100, 105)
    assert h.state("AAAUSDT") is BookState.LIVE
    assert h.replica.books["AAAUSDT"].top(0)[0] == (("1.0", "2"), ("0.9", "1"))


def test_bridge_at_the_upper_edge_u_equals_last_update_id() -> None:
    h = Harness(raw=True)
    h.sync.on_delta(raw_delta("AAAUSDT", 100, 105, 90, [("1.0", "2")]))
    h.sync.on_snapshot(raw_snapshot("AAAUSDT", 105, [("1.0", "2")]))
    assert h.sync.stats["AAAUSDT"].bridge == (100, 105, 105)
    assert h.state("AAAUSDT") is BookState.LIVE


def test_snapshot_between_two_events_of_the_stream_bridges() -> None:
    # ids 106..109 belong to other symbols: the book at 107 is the book at 105
    h = Harness(raw=True)
    h.sync.on_delta(raw_delta("AAAUSDT", 100, 105, 90, [("1.0", "2")]))
    h.sync.on_delta(raw_delta("AAAUSDT", 110, 112, 105, [("1.0", "3")]))
    h.sync.on_snapshot(raw_snapshot("AAAUSDT", 107, [("1.0", "2")]))
    assert h.state("AAAUSDT") is BookState.LIVE
    assert h.sync.stats["AAAUSDT"].bridge == (110, 107, 112)
    assert h.replica.books["AAAUSDT"].top(0)[0] == (("1.0", "3"),)


def test_snapshot_older_than_the_buffer_is_fetched_again() -> None:
    h = Harness(raw=True)
    h.sync.on_delta(raw_delta("AAAUSDT", 110, 112, 105, [("1.0", "3")]))
    h.sync.on_snapshot(raw_snapshot("AAAUSDT", 100, [("1.0", "2")]))  # 101..105 unknown
    assert h.state("AAAUSDT") is BookState.SYNCING
    assert h.sync.stats["AAAUSDT"].stale_snapshots == 1
    assert h.wanted == ["AAAUSDT", "AAAUSDT"]
    assert h.replica.events == []
    h.sync.on_snapshot(raw_snapshot("AAAUSDT", 111, [("1.0", "2.5")]))
    assert h.state("AAAUSDT") is BookState.LIVE


def test_snapshot_newer_than_every_buffered_event_waits_for_its_bridge() -> None:
    h = Harness()
    sent = h.send("AAAUSDT", 2)
    later = h.model.step("AAAUSDT")  # generated, not yet delivered
    h.sync.on_snapshot(snapshot(h.model, "AAAUSDT", later.U))
    assert h.state("AAAUSDT") is BookState.SYNCING
    assert h.replica.events == []
    assert h.sync.stats["AAAUSDT"].dropped == len(sent)
    h.sync.on_delta(delta(later))
    assert h.kinds() == ["BookSnapshot", "BookDelta", "status:BOOK_LIVE"]


def test_a_gap_makes_that_symbol_stale_and_resyncs_it_alone() -> None:
    h = Harness()
    for symbol in ("AAAUSDT", "BBBUSDT"):
        h.send(symbol)
        h.sync.on_snapshot(snapshot(h.model, symbol))
        h.send(symbol, 2)
    assert h.state("AAAUSDT") is h.state("BBBUSDT") is BookState.LIVE
    h.model.step("AAAUSDT")  # lost on the way: a gap
    gap = h.send("AAAUSDT")[0]
    assert h.state("AAAUSDT") is BookState.STALE
    stale = h.replica.statuses[-1]
    assert (stale.symbol, stale.status) == ("AAAUSDT", StatusKind.BOOK_STALE)
    assert "gap" in stale.detail
    assert h.wanted[-1] == "AAAUSDT"
    # the other symbol is untouched and keeps flowing
    before = len(h.replica.events)
    h.send("BBBUSDT", 3)
    assert h.state("BBBUSDT") is BookState.LIVE
    assert [type(e) for e in h.replica.events[before:]] == [BookDelta] * 3
    # the stale one is live again from a new snapshot, then its deltas flow
    h.send("AAAUSDT", 2)
    h.sync.on_snapshot(snapshot(h.model, "AAAUSDT", gap.update_id))
    h.send("AAAUSDT", 2)
    stats = h.sync.stats["AAAUSDT"]
    assert (stats.state, stats.resyncs, stats.gaps) == (BookState.LIVE, 1, 1)
    assert h.sync.stats["BBBUSDT"].resyncs == 0
    assert h.replica.statuses[-1].status is StatusKind.BOOK_LIVE
    assert h.replica.checks >= 12


def test_repeated_events_while_live_are_dropped() -> None:
    h = Harness()
    h.send("AAAUSDT")
    h.sync.on_snapshot(snapshot(h.model, "AAAUSDT"))
    sent = h.send("AAAUSDT", 2)
    count = len(h.replica.events)
    h.sync.on_delta(sent[0])
    h.sync.on_delta(sent[1])
    assert len(h.replica.events) == count
    assert h.state("AAAUSDT") is BookState.LIVE
    assert h.sync.stats["AAAUSDT"].dropped == 2


def test_requested_resync_goes_stale_now_and_live_after_a_new_snapshot() -> None:
    h = Harness()
    h.send("AAAUSDT")
    h.sync.on_snapshot(snapshot(h.model, "AAAUSDT"))
    h.sync.mark_stale("AAAUSDT", "validation rejected a delta")
    assert h.state("AAAUSDT") is BookState.STALE
    assert h.replica.statuses[-1].status is StatusKind.BOOK_STALE
    assert h.replica.statuses[-1].detail == "validation rejected a delta"
    h.send("AAAUSDT")  # buffered; asks for a snapshot
    assert h.wanted == ["AAAUSDT", "AAAUSDT"]
    h.sync.on_snapshot(snapshot(h.model, "AAAUSDT"))
    assert h.state("AAAUSDT") is BookState.LIVE
    assert isinstance(h.replica.events[-3], BookSnapshot)


def test_a_break_inside_the_buffer_keeps_the_events_after_it() -> None:
    h = Harness(raw=True)
    h.sync.on_delta(raw_delta("AAAUSDT", 100, 105, 90, [("1.0", "2")]))
    h.sync.on_delta(raw_delta("AAAUSDT", 120, 121, 115, [("1.0", "3")]))  # 106..115 lost
    h.sync.on_snapshot(raw_snapshot("AAAUSDT", 103, [("1.0", "1")]))
    assert h.state("AAAUSDT") is BookState.SYNCING
    assert h.sync.stats["AAAUSDT"].gaps == 1
    assert h.sync.stats["AAAUSDT"].buffered == 1
    h.sync.on_snapshot(raw_snapshot("AAAUSDT", 120, [("1.0", "3")]))
    assert h.state("AAAUSDT") is BookState.LIVE
    assert h.sync.stats["AAAUSDT"].last_update_id == 121


def test_buffer_limit_drops_the_oldest() -> None:
    h = Harness(buffer_limit=3)
    sent = h.send("AAAUSDT", 5)
    stats = h.sync.stats["AAAUSDT"]
    assert (stats.buffered, stats.dropped) == (3, 2)
    h.sync.on_snapshot(snapshot(h.model, "AAAUSDT", sent[2].update_id))
    assert h.state("AAAUSDT") is BookState.LIVE


def go_live(h: Harness, symbol: str = "AAAUSDT") -> None:
    h.send(symbol)
    h.sync.on_snapshot(snapshot(h.model, symbol))
    h.send(symbol, 3)
    assert h.state(symbol) is BookState.LIVE


def test_refresh_with_a_snapshot_behind_the_stream() -> None:
    h = Harness()
    go_live(h)
    assert h.sync.refresh("AAAUSDT")
    assert not h.sync.refresh("AAAUSDT"), "one refresh at a time"
    sent = h.send("AAAUSDT", 3)
    h.sync.on_snapshot(snapshot(h.model, "AAAUSDT", sent[0].update_id))
    last = h.replica.events[-1]
    assert isinstance(last, BookSnapshot)
    assert last.update_id == sent[-1].update_id
    assert h.sync.stats["AAAUSDT"].refreshes == 1
    assert h.state("AAAUSDT") is BookState.LIVE
    h.send("AAAUSDT", 2)


def test_refresh_with_a_snapshot_ahead_of_the_stream() -> None:
    h = Harness()
    go_live(h)
    assert h.sync.refresh("AAAUSDT")
    ahead = h.model.step("AAAUSDT")
    h.sync.on_snapshot(snapshot(h.model, "AAAUSDT"))
    assert not isinstance(h.replica.events[-1], BookSnapshot), "waits for its bridge"
    h.sync.on_delta(delta(ahead))
    assert [type(e) for e in h.replica.events[-2:]] == [BookDelta, BookSnapshot]
    assert h.replica.events[-1].update_id == ahead.u  # type: ignore[union-attr]
    h.send("AAAUSDT", 2)
    assert h.sync.stats["AAAUSDT"].refreshes == 1


def test_refresh_removes_levels_that_drifted_stale_beyond_the_snapshot_depth() -> None:
    h = Harness(raw=True)
    d = raw_delta("AAAUSDT", 100, 105, 90, [])
    h.sync.on_delta(d)
    h.sync.on_snapshot(raw_snapshot("AAAUSDT", 105, [("2.0", "1"), ("1.0", "1")]))
    # the level at 1.0 left the book while beyond the depth streamed: no delta said so
    assert h.sync.refresh("AAAUSDT")
    h.sync.on_snapshot(raw_snapshot("AAAUSDT", 105, [("2.0", "1")]))
    assert h.replica.books["AAAUSDT"].top(0)[0] == (("2.0", "1"),)


def test_refresh_too_old_to_line_up_is_counted_and_the_book_stays_live() -> None:
    h = Harness()
    go_live(h)
    old_id = h.sync.stats["AAAUSDT"].last_update_id - 1
    assert h.sync.refresh("AAAUSDT")
    h.send("AAAUSDT", 2)
    count = len(h.replica.events)
    h.sync.on_snapshot(snapshot(h.model, "AAAUSDT", old_id))
    assert len(h.replica.events) == count
    stats = h.sync.stats["AAAUSDT"]
    assert (stats.state, stats.refresh_failures) == (BookState.LIVE, 1)
    assert h.sync.refresh("AAAUSDT"), "the next refresh may start"


def test_a_gap_during_a_refresh_resyncs_with_its_snapshot() -> None:
    h = Harness()
    go_live(h)
    assert h.sync.refresh("AAAUSDT")
    h.model.step("AAAUSDT")
    h.send("AAAUSDT")
    assert h.state("AAAUSDT") is BookState.STALE
    assert h.wanted.count("AAAUSDT") == 2, "the refresh's request serves the resync"
    h.sync.on_snapshot(snapshot(h.model, "AAAUSDT"))
    assert h.state("AAAUSDT") is BookState.LIVE


def test_unknown_symbols_are_ignored() -> None:
    h = Harness(raw=True)
    h.sync.on_delta(raw_delta("ZZZUSDT", 1, 2, 0, []))
    h.sync.on_snapshot(raw_snapshot("ZZZUSDT", 2, []))
    h.sync.mark_stale("ZZZUSDT", "x")
    assert not h.sync.refresh("ZZZUSDT")
    assert h.replica.events == []
    assert h.wanted == []
