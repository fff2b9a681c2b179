"""The gRPC server: the market data service, health and reflection on one port.

TLS when `[server.tls]` names a certificate and key; bearer-token auth when
`[server] auth_token` is set. `stop()` is the graceful shutdown: health goes
NOT_SERVING and new streams are refused (stop accepting), every open stream
gets a SERVER_SHUTDOWN status and sends what it has queued (tell clients,
drain) for up to the grace period, then the server closes what is left.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from raven.api.auth import TokenAuth
from raven.api.service import SERVICE, MarketDataService
from raven.config import ServerConfig
from raven.grpc_poller import drain_wakeups

log = logging.getLogger("raven.api")


class GrpcServer:
    """Owns a grpc.aio server; `start()` binds, `stop()` drains then closes."""

    def __init__(
        self,
        config: ServerConfig,
        service: MarketDataService,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    ) -> None:
        self.config = config
        self.service = service
        self.interceptors = tuple(interceptors)  # e.g. tracing's span per call
        self.health = health.aio.HealthServicer()
        self.auth = TokenAuth(config.auth_token) if config.auth_token else None
        self.port = config.port
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        server = grpc.aio.server(
            interceptors=[*self.interceptors, *([self.auth] if self.auth else [])],
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.keepalive_permit_without_calls", 1),
            ],
        )
        server.add_generic_rpc_handlers((self.service.handler(),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME),
            server,
        )  # fmt: skip
        host = self.config.host
        address = f"[{host}]:{self.config.port}" if ":" in host else f"{host}:{self.config.port}"
        tls = self.config.tls
        try:
            if tls.enabled:
                credentials = _credentials(tls.cert_file, tls.key_file)
                self.port = server.add_secure_port(address, credentials)
            else:
                self.port = server.add_insecure_port(address)
        except RuntimeError:  # newer grpcio raises where older ones returned 0
            self.port = 0
        if self.port == 0:
            raise OSError(f"cannot listen on {address}: address in use or not allowed")
        await server.start()
        drain_wakeups(asyncio.get_running_loop())  # see raven.grpc_poller
        self._server = server
        serving = health_pb2.HealthCheckResponse.SERVING
        await self.health.set("", serving)
        await self.health.set(SERVICE, serving)
        log.info("gRPC listening on %s:%d%s%s", host, self.port, " (TLS)" if tls.enabled else "",
                 " (token auth)" if self.auth else "")  # fmt: skip

    @property
    def serving(self) -> bool:
        """True between a successful start() and stop() (the health check reads it)."""
        return self._server is not None

    async def stop(self, grace: float) -> None:
        if self._server is None:
            return
        started = time.monotonic()
        await self.health.enter_graceful_shutdown()
        await self.service.shutdown(grace)
        remaining = max(0.0, grace - (time.monotonic() - started))
        await self._server.stop(remaining)
        self._server = None
        log.info("gRPC server stopped")


def _credentials(cert_file: str, key_file: str) -> grpc.ServerCredentials:
    try:
        cert = Path(cert_file).read_bytes()
        key = Path(key_file).read_bytes()
    except OSError as exc:
        raise OSError(f"[server.tls]: cannot read {exc.filename}: {exc.strerror}") from None
    return grpc.ssl_server_credentials([(key, cert)])
