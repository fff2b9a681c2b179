"""Noticing a stream that went quiet: pure, times passed in.

A venue acknowledges every subscription, even to a misspelt symbol, and a
half-dead connection can keep answering pings while a stream stops, so
silence is detected per stream: a stream that should be busy and sent
nothing for `timeout_ns` is silent. The caller sleeps until the returned
deadline (the earliest moment any watched stream could become silent) and
asks again; nothing is checked on a fixed tick.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from raven.types import Nanos


class Silence:
    """The outcome of one check."""

    __slots__ = ("deadline_ns", "silent")

    def __init__(self, silent: list[str], deadline_ns: Nanos) -> None:
        self.silent = silent  # watched streams quiet for the timeout or longer
        self.deadline_ns = deadline_ns  # check again at this time


def check_silence(
    last_seen: Mapping[str, Nanos],
    watched: Iterable[str],
    since_ns: Nanos,
    now_ns: Nanos,
    timeout_ns: Nanos,
) -> Silence:
    """Which `watched` streams sent nothing since `now_ns - timeout_ns`.

    `last_seen` is the receive time of each stream's latest frame; `since_ns`
    (the connection's start) counts as a frame, so a stream that never sent
    anything is silent `timeout_ns` after the connection opened.
    """
    silent: list[str] = []
    deadline = now_ns + timeout_ns
    for name in watched:
        expires = max(last_seen.get(name, since_ns), since_ns) + timeout_ns
        if expires <= now_ns:
            silent.append(name)
        elif expires < deadline:
            deadline = expires
    return Silence(silent, deadline)
