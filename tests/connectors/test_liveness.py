"""Per-stream silence detection: which busy streams went quiet, and when to look again."""

from __future__ import annotations

from raven.connectors.liveness import check_silence

S = 1_000_000_000


def test_a_stream_quiet_for_the_timeout_is_silent() -> None:
    seen = {"a@bookTicker": 100 * S, "b@bookTicker": 125 * S}
    out = check_silence(seen, ["a@bookTicker", "b@bookTicker"], 0, 130 * S, 30 * S)
    assert out.silent == ["a@bookTicker"]
    out = check_silence(seen, ["a@bookTicker", "b@bookTicker"], 0, 129 * S, 30 * S)
    assert out.silent == []
    assert out.deadline_ns == 130 * S, "wake when the quietest could time out"


def test_only_watched_streams_count() -> None:
    # a liquidation stream may be quiet for hours: it is not watched
    seen = {"a@bookTicker": 100 * S, "a@forceOrder": 1 * S}
    out = check_silence(seen, ["a@bookTicker"], 0, 110 * S, 30 * S)
    assert (out.silent, out.deadline_ns) == ([], 130 * S)


def test_a_stream_that_never_sent_is_silent_a_timeout_after_the_start() -> None:
    out = check_silence({}, ["x@depth"], 50 * S, 79 * S, 30 * S)
    assert (out.silent, out.deadline_ns) == ([], 80 * S)
    assert check_silence({}, ["x@depth"], 50 * S, 80 * S, 30 * S).silent == ["x@depth"]


def test_frames_before_the_start_count_as_the_start() -> None:
    # a reconnect: the old connection's last frame is older than the new start
    out = check_silence({"x@depth": 10 * S}, ["x@depth"], 50 * S, 60 * S, 30 * S)
    assert (out.silent, out.deadline_ns) == ([], 80 * S)


def test_nothing_watched_means_look_again_after_a_timeout() -> None:
    out = check_silence({}, [], 0, 5 * S, 30 * S)
    assert (out.silent, out.deadline_ns) == ([], 35 * S)
