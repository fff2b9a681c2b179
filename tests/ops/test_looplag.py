"""The event loop's lag, sampled: a blocked loop shows up as a late wake-up."""

from __future__ import annotations

import asyncio
import time

from raven.ops import catalog
from raven.ops.looplag import LoopLag
from raven.ops.metrics import MetricsRegistry
from raven.ops.sources import loop_lag_source
from tests.helpers import wait_until
from tests.ops.promtool import promtool_check
from tests.ops.scrape import parse, total


async def test_a_blocked_loop_is_recorded_as_lag() -> None:
    lag = LoopLag(interval_s=0.01)
    task = asyncio.create_task(lag.run())
    try:
        await asyncio.sleep(0)  # the sampler is now waiting for its wake-up
        time.sleep(0.05)  # noqa: ASYNC251  # hold the loop, as a long callback would
        await wait_until(lambda: lag.lag.count >= 1)
        # due 10 ms after it started, run no sooner than the 50 ms block ended
        assert lag.longest >= 0.04
        assert lag.lag.sum >= 0.04
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()


def test_an_early_timer_counts_as_no_lag() -> None:
    lag = LoopLag()
    lag.observe(-0.0002)
    lag.observe(0.003)
    assert lag.lag.buckets[0] == 1  # <= 1 ms
    assert lag.lag.count == 2
    assert lag.longest == 0.003


def test_the_lag_histogram_is_exported() -> None:
    lag = LoopLag()
    lag.observe(0.02)
    registry = MetricsRegistry(catalog.ALL, process=False)
    registry.add(loop_lag_source(lag))
    text = registry.exposition()
    samples = parse(text)
    assert total(samples, "raven_event_loop_lag_seconds_count") == 1
    assert samples[("raven_event_loop_lag_seconds_bucket", (("le", "0.01"),))] == 0
    assert samples[("raven_event_loop_lag_seconds_bucket", (("le", "0.025"),))] == 1
    promtool_check(text)
