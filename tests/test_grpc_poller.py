"""grpc.aio's completion wake-ups read in one go per loop turn (raven.grpc_poller),
against a real grpc.aio server and channel on asyncio's loop and on uvloop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import grpc
import pytest
import uvloop
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from raven import grpc_poller
from raven.app import RavenApp
from raven.client import AsyncRavenClient

BACKLOG = 60  # wake-up bytes with no event behind them, as a busy loop leaves them
RUNNERS: dict[str, Callable[[Coroutine[Any, Any, None]], None]] = {
    "asyncio": asyncio.run,
    "uvloop": uvloop.run,
}


async def turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def serve_and_call(check: Callable[[asyncio.AbstractEventLoop], Any]) -> None:
    """A grpc.aio server with a health service and a channel to it on this loop;
    `check(loop)` runs between two health calls (which must both answer)."""
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub: Any = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest()
            assert (
                await stub.Check(request, timeout=5)
            ).status == health_pb2.HealthCheckResponse.SERVING
            result = check(asyncio.get_running_loop())
            if asyncio.iscoroutine(result):
                await result
            assert (
                await stub.Check(request, timeout=5)
            ).status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await server.stop(0)


def sockets(loop: asyncio.AbstractEventLoop) -> tuple[socket.socket, socket.socket]:
    found = grpc_poller.poller_sockets(loop)
    assert found is not None, "grpc.aio's wake-up sockets not found"
    return found


@pytest.mark.parametrize("runner", RUNNERS)
def test_nothing_is_installed_before_grpc_aio_exists_on_the_loop(runner: str) -> None:
    async def main() -> None:
        assert grpc_poller.drain_wakeups(asyncio.get_running_loop()) is False

    RUNNERS[runner](main())


@pytest.mark.parametrize("runner", RUNNERS)
def test_grpc_reads_one_wakeup_a_turn_and_the_drain_reads_them_all(runner: str) -> None:
    async def check(loop: asyncio.AbstractEventLoop) -> None:
        read, write = sockets(loop)
        # grpc's own reader: one byte per turn, so a backlog outlives many turns.
        write.send(b"1" * BACKLOG)
        await turns(3)
        assert grpc_poller.waiting_bytes(read) >= BACKLOG - 3
        await turns(BACKLOG)  # let it go back to 0 the slow way
        assert grpc_poller.waiting_bytes(read) == 0

        assert grpc_poller.drain_wakeups(loop) is True
        assert grpc_poller.drain_wakeups(loop) is True  # once per loop
        write.send(b"1" * BACKLOG)
        await turns(3)
        assert grpc_poller.waiting_bytes(read) == 0

    RUNNERS[runner](serve_and_call(check))


def test_a_drained_loop_still_completes_every_call() -> None:
    """Many calls in flight at once: every completion still reaches its caller
    (an event whose byte the drain read is handled in the same turn)."""

    async def main() -> None:
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        loop = asyncio.get_running_loop()
        assert grpc_poller.drain_wakeups(loop) is True
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub: Any = health_pb2_grpc.HealthStub(channel)
                request = health_pb2.HealthCheckRequest()
                for _ in range(5):
                    replies = await asyncio.wait_for(
                        asyncio.gather(*(stub.Check(request) for _ in range(200))), 20
                    )
                    assert {r.status for r in replies} == {health_pb2.HealthCheckResponse.SERVING}
                read, _ = sockets(loop)
                await turns(3)
                assert grpc_poller.waiting_bytes(read) == 0
        finally:
            await server.stop(0)

    uvloop.run(main())


async def test_the_server_drains_its_loop_and_the_client_calls_stay_whole(
    app: RavenApp, client: AsyncRavenClient
) -> None:
    loop = asyncio.get_running_loop()
    assert grpc_poller.is_drained(loop)  # RavenApp's gRPC server installed it on start
    read, write = sockets(loop)
    write.send(b"1" * BACKLOG)
    # A call made with the backlog waiting completes (within 5 s), and the
    # backlog is gone a few turns later.
    await asyncio.wait_for(client.snapshot("BTCUSDT"), 5)
    await turns(3)
    assert grpc_poller.waiting_bytes(read) == 0
