"""The bench's progress lines: a step stamped with the time since its scenario began."""

from __future__ import annotations

import io

from raven.bench.base import Progress


def test_steps_are_stamped_from_the_scenarios_start() -> None:
    now = [100.0]
    out = io.StringIO()
    progress = Progress(out, clock=lambda: now[0])
    progress.begin()
    now[0] += 75.4
    progress.step("step 2/8, 1,000 events/s asked, 10 clients: sustained")
    progress.begin()  # a new scenario starts the clock again
    now[0] += 3661.0
    progress.step("an hour and a minute in")
    assert out.getvalue().splitlines() == [
        "  [01:15] step 2/8, 1,000 events/s asked, 10 clients: sustained",
        "  [61:01] an hour and a minute in",
    ]
