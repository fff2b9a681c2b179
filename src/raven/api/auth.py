"""Optional bearer-token auth: `authorization: Bearer <token>` on every call.

A server interceptor, so no handler can forget the check. The standard
health service stays open (orchestrators probe it without credentials);
every other method, reflection included, needs the token. A wrong or
missing token ends the call with UNAUTHENTICATED before any handler runs.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

OPEN_PREFIXES = ("/grpc.health.v1.Health/",)  # methods that need no token
HEADER = "authorization"


def token_of(metadata: Any) -> str:
    """The bearer token in call metadata ("" when absent or not a bearer)."""
    for key, value in metadata or ():
        if key == HEADER:
            text = value.decode() if isinstance(value, bytes) else str(value)
            scheme, _, token = text.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


class TokenAuth(grpc.aio.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self.rejected = 0  # calls refused, for the metrics layer

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        if handler is None or details.method.startswith(OPEN_PREFIXES):
            return handler
        token = token_of(details.invocation_metadata)
        if hmac.compare_digest(token.encode(), self._token):
            return handler
        self.rejected += 1
        message = (
            "missing bearer token: send metadata 'authorization: Bearer <token>'"
            if not token
            else "invalid bearer token"
        )
        return _refusal(handler, message)


def _refusal(
    handler: grpc.RpcMethodHandler[Any, Any], message: str
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape as `handler` that only aborts (grpc.aio
    accepts a coroutine for every shape, streaming ones included)."""

    async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse, **kwargs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse, **kwargs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse, **kwargs)
    return grpc.unary_unary_rpc_method_handler(refuse, **kwargs)
