"""Outgoing message pacing and the URL/SUBSCRIBE split, with a fake clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from raven.connectors.pacing import SendPacer, split_subscriptions


def send_all(pacer: SendPacer, wanted: list[float]) -> list[float]:
    """Each send waits as the pacer says (the fake clock moves by the wait)."""
    now = 0.0
    sent = []
    for at in wanted:
        now = max(now, at)
        while (wait := pacer.delay(now)) > 0:
            now += wait
        pacer.record(now)
        sent.append(now)
    return sent


@given(
    st.integers(1, 9),
    st.lists(st.floats(0, 20, allow_nan=False), max_size=120).map(sorted),
)
def test_no_window_ever_holds_more_than_the_limit(limit: int, wanted: list[float]) -> None:
    sent = send_all(SendPacer(limit), wanted)
    assert len(sent) == len(wanted)
    for i in range(len(sent) - limit):
        assert sent[i + limit] - sent[i] >= 1.0, "limit+1 sends within one second"
    for at, out in zip(wanted, sent, strict=True):
        assert out >= at


def test_a_burst_goes_out_in_limit_sized_groups_a_second_apart() -> None:
    sent = send_all(SendPacer(5), [0.0] * 12)
    assert sent[:5] == [0.0] * 5
    assert all(1.0 <= t < 1.01 for t in sent[5:10])
    assert all(2.0 <= t < 2.02 for t in sent[10:])


def test_sends_below_the_limit_never_wait() -> None:
    pacer = SendPacer(3)
    assert send_all(pacer, [0.0, 0.5, 1.6, 2.0, 3.7]) == [0.0, 0.5, 1.6, 2.0, 3.7]
    assert pacer.sends == 5


def test_everything_in_the_url_when_it_fits() -> None:
    names = ["btcusdt@aggTrade", "ethusdt@aggTrade"]
    assert split_subscriptions(names, 40, 4000, 100) == (names, [])
    assert split_subscriptions([], 40, 4000, 100) == ([], [])


def test_the_rest_goes_in_batches_in_order() -> None:
    names = [f"s{i:04d}usdt@depth@100ms" for i in range(1000)]  # 21 chars each
    base = len("ws://127.0.0.1:8800/public/stream?streams=")
    in_url, batches = split_subscriptions(names, base, 4000, 200)
    assert base + len("/".join(in_url)) <= 4000
    assert base + len("/".join(names[: len(in_url) + 1])) > 4000, "the URL is filled"
    assert all(len(b) <= 200 for b in batches)
    assert in_url + [n for b in batches for n in b] == names


def test_a_tiny_url_budget_subscribes_everything_by_message() -> None:
    names = ["a@trade", "b@trade", "c@trade"]
    assert split_subscriptions(names, 50, 50, 2) == ([], [["a@trade", "b@trade"], ["c@trade"]])
