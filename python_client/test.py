"""A streaming load test for a Raven server: events/s, latency percentiles, gaps.

    python test.py --target localhost:50051 --duration 30 --symbols BTCUSDT,ETHUSDT

Opens `--streams` StreamMarketData calls, each subscribed to every symbol x
kind, reads as fast as it can for `--duration` seconds, and prints:

- events and events/s (all streams together) and frames received;
- latency percentiles from the server's receive time (`receive_time`, set
  when the exchange frame arrived) to this client receiving the event: the
  whole server + network path. Events older than the test's start (the
  current state sent on subscribe) are not counted;
- gaps: events the server dropped for a stream that fell behind (its Gap
  markers), holes in the sequence numbers, and reconnects.

Exit status 0 when events arrived, 1 when none did, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from array import array

from raven.client import AsyncRavenClient, Gap
from raven.types import Kind

MAX_SAMPLES = 5_000_000  # latency samples kept (20 MB); later ones are not sampled


class Report:
    def __init__(self, streams: int) -> None:
        self.events = 0
        self.latencies = array("d")  # seconds
        self.gaps = 0  # gap markers and holes seen
        self.missed = 0  # events known dropped
        self.reconnects = 0
        self.frames = [0] * streams  # per stream

    def percentiles(self) -> dict[str, float]:
        values = sorted(self.latencies)
        if not values:
            return {}
        out = {}
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)):
            out[name] = values[min(len(values) - 1, int(q * len(values)))]
        out["max"] = values[-1]
        return out

    def print(self, seconds: float, streams: int) -> None:
        rate = self.events / seconds if seconds > 0 else 0.0
        print(f"events         {self.events} ({rate:,.1f}/s over {seconds:.1f} s)")
        print(f"frames         {sum(self.frames)} on {streams} stream(s)")
        pct = self.percentiles()
        if pct:
            text = "  ".join(f"{k} {v * 1e3:.3f}" for k, v in pct.items())
            print(
                f"latency ms     {text}  (server receive -> client, {len(self.latencies)} samples)"
            )
        else:
            print("latency ms     no live events")
        print(
            f"gaps detected  {self.gaps} ({self.missed} events missed), "
            f"reconnects {self.reconnects}"
        )


async def read(
    client: AsyncRavenClient, args: argparse.Namespace, report: Report, start_ns: int, index: int
) -> None:
    kinds = [Kind.parse(k) for k in args.kinds]
    async with client.stream(args.symbols, kinds) as stream:
        async for item in stream.items():
            now = time.time_ns()
            if isinstance(item, Gap):
                report.gaps += not item.reconnect
                report.missed += item.dropped
                report.reconnects += item.reconnect
                continue
            report.events += 1
            if item.receive_time >= start_ns and len(report.latencies) < MAX_SAMPLES:
                report.latencies.append((now - item.receive_time) / 1e9)
            report.frames[index] = stream.frames


async def run(args: argparse.Namespace) -> Report:
    report = Report(args.streams)
    client = AsyncRavenClient(args.target, token=args.token)
    await client.connect(args.connect_timeout)
    try:
        start_ns = time.time_ns()
        tasks = [
            asyncio.create_task(read(client, args, report, start_ns, i))
            for i in range(args.streams)
        ]
        started = time.monotonic()
        await asyncio.wait(tasks, timeout=args.duration)  # the streams run until then
        elapsed = time.monotonic() - started
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                raise result
    finally:
        await client.close()
    report.print(elapsed, args.streams)
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Streaming load test for a Raven server.")
    parser.add_argument("--target", default="localhost:50051", help="server host:port")
    parser.add_argument(
        "--duration", type=float, default=30.0, help="seconds to stream (default 30)"
    )
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT", help="comma-separated symbols")
    parser.add_argument("--kinds", default="trade,quote", help="comma-separated data kinds")
    parser.add_argument("--streams", type=int, default=1, help="parallel streams (default 1)")
    parser.add_argument("--token", default="", help="bearer token, when the server asks for one")
    parser.add_argument(
        "--connect-timeout", type=float, default=10.0, help="seconds to wait for the server"
    )
    args = parser.parse_args(argv)
    args.symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if args.duration <= 0 or args.streams < 1:
        parser.error("--duration must be positive and --streams at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"Raven load test: {','.join(args.symbols)} x {','.join(args.kinds)}, "
        f"{args.streams} stream(s), {args.duration:g} s against {args.target}",
        flush=True,
    )
    try:
        report = asyncio.run(run(args))
    except (TimeoutError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if report.events else 1


if __name__ == "__main__":
    sys.exit(main())
