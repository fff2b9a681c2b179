"""Reconnect delays: capped exponential back-off with jitter, forever."""

from __future__ import annotations

import itertools
import random

from raven.connectors.backoff import exponential_backoff


def test_delays_double_up_to_the_cap_with_jitter_and_never_end() -> None:
    delays = list(itertools.islice(exponential_backoff(0.5, 30.0, random.Random(1)), 200))
    nominal = [min(30.0, 0.5 * 2**n) for n in range(200)]
    for delay, base in zip(delays, nominal, strict=True):
        assert base * 0.5 <= delay <= base
    assert max(delays) <= 30.0
    assert len(set(delays)) == len(delays), "jitter: no two delays alike"
    assert sum(d > 15.0 for d in delays[-50:]) > 0, "reaches the cap region"


def test_a_new_generator_starts_over() -> None:
    rng = random.Random(2)
    first = next(exponential_backoff(1.0, 8.0, rng))
    again = next(exponential_backoff(1.0, 8.0, rng))
    assert 0.5 <= first <= 1.0
    assert 0.5 <= again <= 1.0
