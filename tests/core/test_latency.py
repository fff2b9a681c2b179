from __future__ import annotations

from raven.core.latency import Histogram


def test_cumulative_buckets_and_quantile() -> None:
    h = Histogram((0.001, 0.01, 0.1))
    for value in (0.0005, 0.001, 0.005, 0.05, 2.0):
        h.observe(value)
    h.observe_ns(20_000_000)
    assert h.count == 6
    assert h.cumulative() == [(0.001, 2), (0.01, 3), (0.1, 5), (float("inf"), 6)]
    assert h.quantile(0.5) == 0.01
    assert h.quantile(1.0) == float("inf")
    assert abs(h.sum - 2.0765) < 1e-9
