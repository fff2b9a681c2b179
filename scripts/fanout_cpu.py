"""CPU µs per delivery of Raven's fan-out path alone, in one process.

Publishes events on a `Bus` to N `ClientStream`s and builds their frames the
way the gRPC sender does (`next_frame`), without gRPC: the bus, the
subscriber queues and the frame packing, measured in process CPU time
(`time.process_time`), which a machine shared with other work disturbs far
less than wall-clock rates. To compare two versions on the same machine,
run it against each source tree in turn:

    PYTHONPATH=/path/to/old/src .venv/bin/python scripts/fanout_cpu.py
    .venv/bin/python scripts/fanout_cpu.py

"dense": every stream subscribed to all 200 topics (the fan-out benchmark's
clients); "batch" is the events published between two drains, about the
events per frame. "sparse": 100 streams, each subscribed to 2 topics of its own.
"""

from __future__ import annotations

import random
import time

from raven.api.streams import ClientStream
from raven.core.bus import Bus, Topic
from raven.types import Kind

TOPICS: list[Topic] = [(Kind(1 + i % 4), "x", f"S{i // 4}", "") for i in range(200)]
CHUNK = b"\x12\x70" + bytes(112)  # an event chunk of the benchmark's average size


def drain(streams: list[ClientStream]) -> None:
    for stream in streams:
        while stream.next_frame(500) is not None:
            pass


def run(streams: list[ClientStream], bus: Bus, events: int, batch: int) -> tuple[float, int]:
    """(CPU µs per delivery, deliveries) for `events` random events."""
    drain(streams)
    rng = random.Random(1)
    sequence = [TOPICS[rng.randrange(len(TOPICS))] for _ in range(events)]
    sent_before = sum(s.sub.stats.sent for s in streams)
    now = time.time_ns()
    start = time.process_time()
    for first in range(0, events, batch):
        for topic in sequence[first : first + batch]:
            bus.publish(topic, CHUNK, now)
        drain(streams)
    cpu = time.process_time() - start
    delivered = sum(s.sub.stats.sent for s in streams) - sent_before
    return cpu / delivered * 1e6, delivered


def dense(n: int, batch: int) -> tuple[float, int]:
    bus = Bus()
    streams = [ClientStream("p", 10_000, None) for _ in range(n)]
    for stream in streams:
        for topic in TOPICS:
            bus.subscribe(stream.sub, topic)
    return run(streams, bus, 200_000 if n <= 10 else 40_000, batch)


def sparse() -> tuple[float, int]:
    bus = Bus()
    streams = [ClientStream("p", 10_000, None) for _ in range(100)]
    for k, stream in enumerate(streams):
        bus.subscribe(stream.sub, TOPICS[2 * k])
        bus.subscribe(stream.sub, TOPICS[2 * k + 1])
    return run(streams, bus, 200_000, 50)


def main() -> None:
    for n in (1, 10, 100):
        for batch in (5, 50):
            per, delivered = dense(n, batch)
            print(f"dense  streams={n:3d} batch={batch:2d}: {per:.3f} µs/delivery ({delivered:,})")
    per, delivered = sparse()
    print(f"sparse streams=100 2 topics each: {per:.3f} µs/delivery ({delivered:,})")


if __name__ == "__main__":
    main()
