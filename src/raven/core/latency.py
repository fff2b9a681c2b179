"""Cheap latency histograms for the hot path, exported by the metrics layer.

`observe()` is one bisect and two adds (the count is the buckets' sum): no
locks, no Prometheus call per event. The metrics collector reads `buckets`,
`count` and `sum` at scrape time and exposes them as a Prometheus histogram (cumulative buckets).
"""

from __future__ import annotations

from bisect import bisect_left

# Upper bounds in seconds, from 10 µs to 10 s.
DEFAULT_BOUNDS: tuple[float, ...] = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class Histogram:
    __slots__ = ("bounds", "buckets", "sum")

    def __init__(self, bounds: tuple[float, ...] = DEFAULT_BOUNDS) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)  # last: above every bound (+Inf)
        self.sum = 0.0

    @property
    def count(self) -> int:
        """Observations so far: the buckets' total, so an observation is one add
        less (the pipeline observes two per event)."""
        return sum(self.buckets)

    def observe(self, seconds: float) -> None:
        self.buckets[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    def observe_ns(self, nanos: int) -> None:
        seconds = nanos / 1e9  # written out, not via observe(): one call less per event
        self.buckets[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[float, int]]:
        """[(upper bound, count <= bound), ..., (inf, total)], as Prometheus wants."""
        out = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.buckets, strict=True):
            running += n
            out.append((bound, running))
        return out

    def quantile(self, q: float) -> float:
        """Upper bound of the bucket holding quantile q (0 when empty)."""
        if not self.count:
            return 0.0
        target = q * self.count
        for bound, running in self.cumulative():
            if running >= target:
                return bound
        return float("inf")
