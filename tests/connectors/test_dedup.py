"""Duplicate dropping and the handover from an old connection to its replacement."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from raven.connectors.dedup import Deduplicator, Handover


def test_only_ids_above_the_last_pass_per_stream() -> None:
    dedup = Deduplicator()
    assert [dedup.accept("a", i) for i in (5, 6, 6, 4, 7)] == [True, True, False, False, True]
    assert dedup.accept("b", 1), "streams are independent"
    assert dedup.duplicates == 2
    dedup.reset()
    assert dedup.accept("a", 1), "after a reset ids may start over (a venue restart)"


def test_switch_when_the_old_connection_delivers_an_event_the_new_one_holds() -> None:
    dedup = Deduplicator()
    for i in (1, 2):
        dedup.accept("a", i)
    handover: Handover[str] = Handover(dedup, limit=100)
    dedup.watch = handover
    handover.hold("a", 3, "a3")
    handover.hold("a", 4, "a4")
    waiting = handover.ready
    assert not waiting, "the old one has not delivered a3 yet"
    assert dedup.accept("a", 3)  # the old one delivers a3: caught up
    assert handover.ready
    assert list(handover.release()) == ["a4"]
    assert handover.dedup.watch is None, "the watch ended"
    assert not dedup.accept("a", 4), "a4 went out once, from the held events"


def test_ready_at_once_when_the_old_connection_is_already_ahead() -> None:
    dedup = Deduplicator()
    for i in range(1, 6):
        dedup.accept("t", i)
    handover: Handover[str] = Handover(dedup, limit=100)
    handover.hold("t", 4, "t4")
    assert handover.ready
    handover.hold("t", 6, "t6")
    assert list(handover.release()) == ["t6"]


def test_too_much_held_forces_the_switch() -> None:
    handover: Handover[int] = Handover(Deduplicator(), limit=3)
    for i in range(3):
        assert not handover.ready
        handover.hold("x", i + 10, i)
    assert handover.ready
    assert handover.overflowed
    assert list(handover.release()) == [0, 1, 2]


@given(
    st.integers(2, 60),  # events the venue sends, over two streams
    st.data(),
)
def test_the_switch_delivers_every_event_once_in_order(total: int, data: st.DataObject) -> None:
    """The venue sends one sequence; the old socket carries [0, close), the new one
    [subscribe, total) with subscribe < close; reads interleave at random."""
    sent = [("a" if data.draw(st.booleans()) else "b", i) for i in range(total)]
    subscribe = data.draw(st.integers(0, total - 1))
    close = data.draw(st.integers(subscribe + 1, total))
    old = sent[:close]
    new = sent[subscribe:]
    dedup = Deduplicator()
    out: list[int] = []
    for key, i in old[: data.draw(st.integers(0, subscribe))]:  # before the new one opens
        if dedup.accept(key, i):
            out.append(i)
    old = old[len(out) :]
    handover: Handover[int] = Handover(dedup, limit=10_000)
    dedup.watch = handover
    while not handover.ready:
        if old and (not new or data.draw(st.booleans())):
            key, i = old.pop(0)
            if dedup.accept(key, i):
                out.append(i)
        else:
            assert new, "the old socket ran out without catching up"
            key, i = new.pop(0)
            handover.hold(key, i, i)
    out.extend(handover.release())  # the old socket is closed here
    for key, i in new:
        if dedup.accept(key, i):
            out.append(i)
    assert out == list(range(total))
