"""Reconnect delays: capped exponential backoff with jitter, as a generator.

The generator is swappable (tests pass a fixed one); `reset()` on the owner
restarts the sequence after a connection that was healthy.
"""

from __future__ import annotations

import random
from collections.abc import Iterator


def exponential_backoff(
    initial: float, cap: float, rng: random.Random | None = None
) -> Iterator[float]:
    """Delays initial, 2x, 4x ... up to cap, each scaled by a random factor in [0.5, 1]."""
    rand = rng or random.Random()
    delay = initial
    while True:
        yield delay * rand.uniform(0.5, 1.0)
        delay = min(cap, delay * 2)
