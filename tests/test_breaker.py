from __future__ import annotations

from raven.breaker import CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_then_probes_and_recovers() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("store", failure_threshold=3, reset_timeout_s=5, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure("down")
    assert breaker.state.name == "CLOSED"
    assert breaker.allow()
    breaker.record_failure("down")
    assert breaker.state.name == "OPEN"
    assert not breaker.allow()
    assert breaker.seconds_until_probe() == 5
    clock.now += 5
    assert breaker.allow()  # the probe
    assert breaker.state.name == "HALF_OPEN"
    assert not breaker.allow()  # only one probe at a time
    breaker.record_success()
    assert breaker.state.name == "CLOSED"
    assert breaker.allow()
    assert breaker.rejections == 2


def test_failed_probe_reopens() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("rest", failure_threshold=1, reset_timeout_s=2, clock=clock)
    breaker.record_failure("x")
    clock.now += 2
    assert breaker.allow()
    breaker.record_failure("still down")
    assert breaker.state.name == "OPEN"
    assert breaker.last_error == "still down"
    assert not breaker.allow()
