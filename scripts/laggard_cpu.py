"""CPU per published event of Raven's fan-out when some streams lag, in one process.

Publishes a fixed, seeded feed (20 symbols: quotes, book deltas with their
resnapshot, trades, candles, funding, in Binance-like proportions) on a
`Bus` to 100 `ClientStream`s subscribed to all of it, with the server's
default queue size. `K` of them lag: "stalled" ones are never drained (their
client stopped reading), "slow" ones take one frame of 500 events every
1,000 events published (half the rate). The others are drained every 50
events, frames built as the gRPC sender does (`next_frame`). Measured in
process CPU time over the events after a warm-up long enough for every
laggard to have overflowed its queue: a machine shared with other work
disturbs it far less than wall-clock rates.

Run it against one source tree, or two side by side (each (K, mode) point
alternates between the trees, in subprocesses):

    .venv/bin/python scripts/laggard_cpu.py
    .venv/bin/python scripts/laggard_cpu.py --compare /path/to/old/src --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time

CHUNK = b"\x12\x70" + bytes(112)  # an event chunk of the benchmark's average size
SNAPSHOT = b"\x12\x70" + bytes(400)  # a top-N book snapshot chunk
WEIGHTS = {"quote": 40, "book": 30, "trade": 25, "candle": 4, "funding": 1}


def measure(laggards: int, mode: str, warmup: int, events: int) -> dict[str, float]:
    """Server CPU µs per published event, and what the keeping-up streams got."""
    from raven.api.streams import ClientStream
    from raven.core.bus import Bus, Topic
    from raven.types import Kind

    kinds = {"quote": Kind.QUOTE, "book": Kind.BOOK, "trade": Kind.TRADE}
    kinds.update(candle=Kind.CANDLE, funding=Kind.FUNDING)
    channel = {"book": "deltas/20", "candle": "1m"}
    rng = random.Random(7)
    names = list(WEIGHTS)
    feed: list[tuple[Topic, bool]] = []
    for _ in range(warmup + events):
        name = rng.choices(names, [WEIGHTS[n] for n in names])[0]
        topic: Topic = (kinds[name], "x", f"S{rng.randrange(20)}", channel.get(name, ""))
        feed.append((topic, name == "book"))
    bus = Bus()
    streams = [ClientStream("p", 10_000, None) for _ in range(100)]
    for stream in streams:
        for topic in {t for t, _ in feed}:
            bus.subscribe(stream.sub, topic)
    lagging, keeping = streams[:laggards], streams[laggards:]

    def resnapshot() -> bytes:
        return SNAPSHOT

    def run(start: int, stop: int) -> None:
        now = time.time_ns()
        for first in range(start, stop, 50):
            for topic, book in feed[first : first + 50]:
                bus.publish(topic, CHUNK, now, False, resnapshot if book else None)
            for stream in keeping:
                while stream.next_frame(500) is not None:
                    pass
            if mode == "slow" and first % 1000 == 0:
                for stream in lagging:
                    stream.next_frame(500)

    run(0, warmup)
    sent = sum(s.sub.stats.sent for s in keeping)
    cpu = time.process_time()
    run(warmup, warmup + events)
    cpu = time.process_time() - cpu
    lost = sum(s.sub.stats.conflated + s.sub.stats.dropped for s in lagging)
    return {
        "us_per_event": cpu / events * 1e6,
        "keeping_deliveries": sum(s.sub.stats.sent for s in keeping) - sent,
        "laggards_conflated_or_dropped": lost,
    }


def _child(args: argparse.Namespace) -> None:
    result = measure(args.k, args.mode, args.warmup, args.events)
    print(json.dumps(result))


def _run(src: str, k: int, mode: str, args: argparse.Namespace) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=src)
    argv = [sys.executable, __file__, "--child", "--k", str(k), "--mode", mode]
    argv += ["--warmup", str(args.warmup), "--events", str(args.events)]
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare", help="the other source tree (its src/ directory)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="stalled", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=25_000)
    parser.add_argument("--events", type=int, default=25_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per point; the least CPU")
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    trees = [("this", here)] + ([("other", args.compare)] if args.compare else [])
    points = [(0, "stalled"), (10, "stalled"), (100, "stalled"), (10, "slow"), (100, "slow")]
    for k, mode in points:
        cells = []
        runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
        for _ in range(args.repeat):  # interleaved, so both trees see the same load
            for name, src in trees:
                runs[name].append(_run(src, k, mode, args))
        for name, _ in trees:
            r = min(runs[name], key=lambda run: run["us_per_event"])
            cells.append(
                f"{name}: {r['us_per_event']:8.1f} µs/event "
                f"({r['keeping_deliveries']:,} deliveries to the others, "
                f"{r['laggards_conflated_or_dropped']:,} conflated/dropped for laggards)"
            )
        print(f"K={k:3d} {mode:7s} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
