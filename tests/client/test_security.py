"""The client's TLS (trusting a given root certificate) and bearer token, against a
real gRPC server that serves Raven's service over TLS and records what it was sent."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from raven.app import RavenApp
from raven.client import AsyncRavenClient
from raven.sim.server import Simulator
from raven.types import Kind
from tests.conftest import server_config


class MetadataRecorder(grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        metadata = {str(k): str(v) for k, v in handler_call_details.invocation_metadata or ()}
        self.seen.append((handler_call_details.method, metadata))
        return await continuation(handler_call_details)


def self_signed(tmp_path: Path) -> tuple[bytes, bytes]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed: cannot make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return key.read_bytes(), cert.read_bytes()


async def test_tls_with_a_root_certificate_and_a_bearer_token(
    sim: Simulator, tmp_path: Path
) -> None:
    key, cert = self_signed(tmp_path)
    app = RavenApp(server_config(sim))  # only its service is used, served over TLS below
    recorder = MetadataRecorder()
    server = grpc.aio.server(interceptors=[recorder])
    server.add_generic_rpc_handlers((app.service.handler(),))
    credentials = grpc.ssl_server_credentials([(key, cert)])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        (tmp_path / "ca.pem").write_bytes(cert)
        client = AsyncRavenClient(
            f"127.0.0.1:{port}", token="s3cret", root_certificates=tmp_path / "ca.pem"
        )
        assert client.tls
        async with client:
            assert await client.snapshot("BTCUSDT") == []
            async with client.stream(["BTCUSDT"], [Kind.TRADE]) as stream:
                assert stream.stream_id

        plain = AsyncRavenClient(f"127.0.0.1:{port}")  # no TLS: the server never answers
        with pytest.raises(TimeoutError, match="no Raven server answered"):
            await plain.connect(timeout=0.5)
    finally:
        await server.stop(0)
    methods = {method for method, _ in recorder.seen}
    assert methods == {
        "/raven.v1.MarketDataService/GetSnapshot",
        "/raven.v1.MarketDataService/StreamMarketData",
    }
    assert all(md.get("authorization") == "Bearer s3cret" for _, md in recorder.seen)
