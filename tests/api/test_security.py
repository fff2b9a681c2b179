"""Connection limit, bearer-token auth, TLS, heartbeats and the silent-client timeout."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from raven.model import Trade
from raven.types import Kind, Side
from raven.v1 import market_data_pb2 as pb
from tests.api.conftest import EXCHANGE, ServerFactory, Stream, connect, open_stream
from tests.helpers import wait_until


async def test_connection_limit(make_server: ServerFactory) -> None:
    async with (
        make_server(server={"max_connections": 2}) as server,
        connect(server.target) as stub,
        open_stream(stub),
        open_stream(stub),
    ):
        third = Stream(stub)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await third.start()
        assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "connection limit reached (2 streams)" in (info.value.details() or "")
        await third.close()


async def test_bearer_token_auth(make_server: ServerFactory) -> None:
    async with (
        make_server(server={"auth_token": "s3cret"}) as server,
        connect(server.target) as stub,
    ):
        request = pb.GetSnapshotRequest(exchange=EXCHANGE, symbol="BTCUSDT")
        for metadata, message in (
            (None, "missing bearer token: send metadata 'authorization: Bearer <token>'"),
            ((("authorization", "Bearer nope"),), "invalid bearer token"),
            ((("authorization", "Basic s3cret"),), "missing bearer token"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.GetSnapshot(request, metadata=metadata)
            assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert message in (info.value.details() or "")
            stream = Stream(stub, metadata)
            with pytest.raises(grpc.aio.AioRpcError) as stream_info:
                await stream.start()
            assert stream_info.value.code() is grpc.StatusCode.UNAUTHENTICATED
            await stream.close()
        good = (("authorization", "Bearer s3cret"),)
        assert await stub.GetSnapshot(request, metadata=good) == pb.GetSnapshotResponse()
        async with open_stream(stub, good) as stream:
            ack = await stream.subscribe(kinds=[Kind.TRADE])
            assert list(ack.symbols) == ["BTCUSDT"]
        async with grpc.aio.insecure_channel(server.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest())  # type: ignore[attr-defined]
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert server.app.grpc.auth is not None
        assert server.app.grpc.auth.rejected == 6


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1, made now (never committed)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


async def test_tls(make_server: ServerFactory, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    tls = {"tls": {"cert_file": str(cert), "key_file": str(key)}}
    async with make_server(server=tls) as server:
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        async with connect(server.target, credentials) as stub, open_stream(stub) as stream:
            await stream.subscribe(kinds=[Kind.TRADE])
            now = time.time_ns()
            await server.feed([Trade(EXCHANGE, "BTCUSDT", "1.0", "1", Side.BUY, 1, now, now)])
            [trade] = await stream.events_until(lambda out: bool(out))
            assert isinstance(trade, Trade)
        async with connect(server.target) as plain:  # no TLS: the handshake never completes
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await plain.GetSnapshot(pb.GetSnapshotRequest(symbol="BTCUSDT"), timeout=5)
            assert info.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_tls_with_a_missing_key_file_says_so(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    tls = {"tls": {"cert_file": str(tmp_path / "c.pem"), "key_file": str(tmp_path / "k.pem")}}
    with pytest.raises(OSError, match=r"\[server.tls\]: cannot read .*c\.pem"):
        async with make_server(server=tls):
            pass


async def test_idle_stream_gets_heartbeats_and_a_silent_client_is_dropped(
    make_server: ServerFactory,
) -> None:
    timing = {"heartbeat_interval_s": 0.05, "client_timeout_s": 0.5}
    async with (
        make_server(server=timing) as server,
        connect(server.target) as stub,
        open_stream(stub) as stream,
    ):
        beats = 0
        try:
            while True:
                frame = await stream.read()
                beats += frame.HasField("heartbeat")
        except grpc.aio.AioRpcError as exc:
            error = exc
        assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert "no message from the client for 0.5 s" in (error.details() or "")
        assert beats >= 1
        await wait_until(lambda: not server.app.registry.streams, what="the stream cleaned up")


async def test_client_heartbeats_keep_a_stream_open(make_server: ServerFactory) -> None:
    # A timeout 20x the heartbeat spacing: a loaded machine's stalls don't end it.
    timing = {"heartbeat_interval_s": 0.05, "client_timeout_s": 2.0}
    async with (
        make_server(server=timing) as server,
        connect(server.target) as stub,
        open_stream(stub) as stream,
    ):
        for _ in range(30):  # 3 s in all: past the timeout, were we silent
            await stream.send(pb.StreamRequest(heartbeat=pb.Heartbeat(time_ns=time.time_ns())))
            await asyncio.sleep(0.1)
        assert stream.stream_id in server.app.registry.streams
        ack = await stream.subscribe(kinds=[Kind.TRADE])
        assert ack.kinds == [pb.DATA_KIND_TRADE]


async def test_graceful_shutdown_tells_clients_and_drains(make_server: ServerFactory) -> None:
    async with make_server() as server, connect(server.target) as stub:
        stream = Stream(stub)
        await stream.start()
        await stream.subscribe(kinds=[Kind.TRADE])
        now = time.time_ns()
        trades = [Trade(EXCHANGE, "BTCUSDT", "1.0", "1", Side.BUY, i, now, now) for i in (1, 2)]
        await server.feed(trades)
        stopping = asyncio.create_task(server.app.grpc.stop(5.0))
        got = await stream.events_until(lambda out: len(out) == 3)
        assert [type(e).__name__ for e in got] == ["Trade", "Trade", "Status"]
        assert got[-1].status.name == "SERVER_SHUTDOWN"  # type: ignore[union-attr]
        assert await stream.call.read() is grpc.aio.EOF
        assert await stream.call.code() is grpc.StatusCode.OK
        await stopping
        await stream.close()
        assert server.app.service.closing
        assert not server.app.registry.streams


async def test_new_streams_are_refused_while_draining(make_server: ServerFactory) -> None:
    async with make_server() as server, connect(server.target) as stub, open_stream(stub):
        await server.app.service.shutdown(0.0)
        late = Stream(stub)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await late.start()
        await late.close()
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in (info.value.details() or "")
