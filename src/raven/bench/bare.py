"""A bare gRPC server: the same-run baselines of the networked benchmarks.

    python -m raven.bench.bare --port 50070 --events-per-frame 8 --event-bytes 110

No Raven inside, only grpc.aio on loopback, so what it measures is what
this machine, this Python and this gRPC can do at best:

- `Echo` (unary): returns the request bytes. The load client's `--echo`
  times round trips of a frame-sized payload: the latency floor.
- `Flood` (stream): after the client's first request it writes the same
  frame as fast as the transport takes it, each with the next sequence
  numbers and its send time, `--events-per-frame` events of `--event-bytes`
  each, shaped like Raven's frames so the load client counts them the same
  way: the most frames/s (and events/s) N streams carry on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import msgspec

from raven import codec
from raven.bench.procs import HOST, Child, Cluster, free_port, wait_for_port
from raven.grpc_poller import drain_wakeups
from raven.types import StatusKind
from raven.v1 import market_data_pb2 as pb

SERVICE = "raven.bench.v1.Bare"
ECHO_METHOD = f"/{SERVICE}/Echo"
FLOOD_METHOD = f"/{SERVICE}/Flood"


def event_chunk(size: int) -> bytes:
    """One `events` chunk of about `size` bytes: a Status event padded with text."""
    now = time.time_ns()
    base = pb.MarketEvent(exchange="binance_futures", symbol="BTCUSDT", exchange_time_ns=now,
                          receive_time_ns=now)  # fmt: skip
    detail = "x" * max(0, size - len(codec.chunk(base)) - 4)
    base.status.CopyFrom(pb.Status(kind=StatusKind.FEED_CONNECTED, detail=detail))  # type: ignore[arg-type]
    return codec.chunk(base)


class Bare:
    """The handlers; `body` is the frame's pre-built events."""

    def __init__(self, events_per_frame: int, event_bytes: int) -> None:
        self.events_per_frame = events_per_frame
        self.body = event_chunk(event_bytes) * events_per_frame
        self.ack = pb.StreamResponse(ack=pb.SubscriptionAck(symbols=["*"])).SerializeToString()

    async def echo(self, request: bytes, context: Any) -> bytes:
        return request

    async def flood(self, requests: AsyncIterator[bytes], context: Any) -> None:
        async for _ in requests:  # the first request is the subscription
            break
        await context.write(self.ack)
        sequence, count, body = 1, self.events_per_frame, self.body
        header, clock, write = codec.frame, time.time_ns, context.write
        while True:
            await write(header(sequence, (), clock()) + body)
            sequence += count

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Echo": grpc.unary_unary_rpc_method_handler(self.echo),
                "Flood": grpc.stream_stream_rpc_method_handler(self.flood),
            },
        )


async def serve(port: int, events_per_frame: int, event_bytes: int) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((Bare(events_per_frame, event_bytes).handler(),))
    server.add_insecure_port(f"{HOST}:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    drain_wakeups(loop)  # as the Raven server does (raven.grpc_poller)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop(0)


class BareServer(msgspec.Struct):
    child: Child
    port: int

    @property
    def target(self) -> str:
        return f"{HOST}:{self.port}"


def start_bare(cluster: Cluster, events_per_frame: int = 1, event_bytes: int = 100) -> BareServer:
    """The bare server as a child process, listening when this returns."""
    port = free_port()
    shape = ["--events-per-frame", str(events_per_frame), "--event-bytes", str(event_bytes)]
    args = ["-m", "raven.bench.bare", "--port", str(port), *shape]
    child = cluster.spawn("bare", args)
    wait_for_port(child, port)
    return BareServer(child, port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m raven.bench.bare", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="loopback port to listen on")
    parser.add_argument("--events-per-frame", type=int, default=1, help="Flood: events per frame")
    parser.add_argument("--event-bytes", type=int, default=100, help="Flood: bytes per event")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, max(1, args.events_per_frame), max(1, args.event_bytes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
