"""The gRPC server: the market data service, health and reflection on one port."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from raven.api.service import SERVICE, MarketDataService
from raven.config import ServerConfig

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
        self.port = config.port
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        server = grpc.aio.server(
            interceptors=self.interceptors,
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
        address = f"{self.config.host}:{self.config.port}"
        if ":" in self.config.host:
            address = f"[{self.config.host}]:{self.config.port}"
        try:
            self.port = server.add_insecure_port(address)
        except RuntimeError:  # newer grpcio raises where older ones returned 0
            self.port = 0
        if self.port == 0:
            raise OSError(f"cannot listen on {address}: address in use or not allowed")
        await server.start()
        self._server = server
        serving = health_pb2.HealthCheckResponse.SERVING
        await self.health.set("", serving)
        await self.health.set(SERVICE, serving)
        log.info("gRPC listening on %s:%d", self.config.host, self.port)

    @property
    def serving(self) -> bool:
        """True between a successful start() and stop() (the health check reads it)."""
        return self._server is not None

    async def stop(self, grace: float) -> None:
        if self._server is None:
            return
        await self.health.enter_graceful_shutdown()
        await self._server.stop(grace)
        self._server = None
