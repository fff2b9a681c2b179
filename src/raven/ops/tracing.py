"""Optional OpenTelemetry tracing: free when off, one small API for every layer.

Off by default (`[tracing] enabled = false`), and then nothing here imports
OpenTelemetry, no interceptor is installed, the connector's sink is not
wrapped, and `span()` / `event_span()` return one shared no-op context
manager after a single `is None` test.

When on (needs the `tracing` extra), `Tracing` owns a TracerProvider with
one exporter and is the process's active tracer. Other layers call:

    with tracing.span("store.write_batch", store="embedded", events=n):
        ...                                  # one span per operation

    with tracing.event_span("citadel.validate"):
        ...                                  # per event: records only inside
                                             # a sampled event's trace

- `span(name, **attrs)`: an operation span (connector reconnect, book
  resync, store batch write); a root span unless one is current.
- `event_span(name, **attrs)`: a hop of a sampled market event; a no-op
  unless the event now being ingested was sampled, so per-event code can
  call it without making a span per event.
- `Tracing.event_sink(sink)`: wraps the pipeline sink; every Nth event
  (N = 1 / event_sample_rate) gets a `raven.event` trace whose children are
  `connector.decode` (frame received -> handed to the pipeline) and
  `pipeline.ingest` (validation, state, bus publish; nested `event_span`s).
- `Tracing.server_interceptor()`: a span per gRPC call, with its status code.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from raven.config import TracingConfig
from raven.connectors.base import EventSink
from raven.model import Event

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

log = logging.getLogger("raven.ops.tracing")

_active: Tracing | None = None
_NOOP = contextlib.nullcontext(None)


def span(
    name: str, **attributes: str | int | float | bool
) -> contextlib.AbstractContextManager[Any]:
    """An operation span, or a no-op when tracing is off."""
    active = _active
    if active is None:
        return _NOOP
    return active.tracer.start_as_current_span(name, attributes=attributes)


def event_span(
    name: str, **attributes: str | int | float | bool
) -> contextlib.AbstractContextManager[Any]:
    """A hop of the sampled event being ingested now; a no-op for every other event."""
    active = _active
    if active is None or not active.in_event:
        return _NOOP
    return active.tracer.start_as_current_span(name, attributes=attributes)


def enabled() -> bool:
    return _active is not None


def active() -> Tracing | None:
    return _active


class TracingUnavailable(RuntimeError):
    """Tracing is enabled but OpenTelemetry (or the chosen exporter) is not installed."""


class Tracing:
    """A TracerProvider with one exporter, made from `[tracing]`; the active tracer."""

    def __init__(self, config: TracingConfig, exporter: SpanExporter | None = None) -> None:
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
            from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
        except ImportError:
            raise TracingUnavailable(
                "[tracing] enabled needs OpenTelemetry: pip install 'raven-md[tracing]'"
            ) from None
        self.config = config
        self.exporter = exporter or _exporter(config)
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": config.service_name}),
            sampler=ParentBased(TraceIdRatioBased(config.sample_rate)),
        )
        # In memory: export at span end, so tests see spans at once. Elsewhere
        # a background batch keeps exporting off the event loop.
        simple = config.exporter == "memory" or exporter is not None
        processor = SimpleSpanProcessor if simple else BatchSpanProcessor
        self.provider.add_span_processor(processor(self.exporter))
        self.tracer: Tracer = self.provider.get_tracer("raven")
        self.in_event = False  # true while a sampled event is being ingested
        self.sampled_events = 0

    def activate(self) -> None:
        global _active
        if _active is not None and _active is not self:
            raise RuntimeError("another Tracing is active; shut it down first")
        _active = self

    def shutdown(self) -> None:
        global _active
        if _active is self:
            _active = None
        self.provider.shutdown()

    # --- per-event sampling --------------------------------------------------

    def event_sink(self, sink: EventSink) -> EventSink:
        """`sink`, with every Nth event traced hop by hop (N = 1 / event_sample_rate)."""
        rate = self.config.event_sample_rate
        if rate <= 0:
            return sink
        every = max(1, round(1 / rate))
        countdown = every

        def traced(event: Event) -> None:
            nonlocal countdown
            countdown -= 1
            if countdown:
                sink(event)
                return
            countdown = every
            self._trace_event(event, sink)

        return traced

    def _trace_event(self, event: Event, sink: EventSink) -> None:
        from opentelemetry import trace

        handed_over = time.time_ns()
        attrs: dict[str, str | float] = {
            "raven.exchange": event.exchange,
            "raven.symbol": event.symbol,
            "raven.kind": event.kind.name.lower(),
            "raven.exchange_to_receive_s": (event.receive_time - event.exchange_time) / 1e9,
        }
        root = self.tracer.start_span(
            "raven.event", start_time=event.receive_time, attributes=attrs
        )
        context = trace.set_span_in_context(root)
        decode = self.tracer.start_span(
            "connector.decode", context=context, start_time=event.receive_time
        )
        decode.end(end_time=handed_over)
        self.sampled_events += 1
        self.in_event = True
        try:
            with self.tracer.start_as_current_span("pipeline.ingest", context=context):
                sink(event)
        finally:
            self.in_event = False
            root.end()

    # --- gRPC ----------------------------------------------------------------

    def server_interceptor(self) -> grpc.aio.ServerInterceptor:
        return _ServerInterceptor(self.tracer)


def _exporter(config: TracingConfig) -> SpanExporter:
    if config.exporter == "memory":
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        return InMemorySpanExporter()
    if config.exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
            OTLPSpanExporter,
        )
    except ImportError:
        raise TracingUnavailable(
            "[tracing] exporter = 'otlp' needs opentelemetry-exporter-otlp-proto-grpc: "
            "pip install 'raven-md[tracing]'"
        ) from None
    exporter: SpanExporter = OTLPSpanExporter(endpoint=config.endpoint)
    return exporter


def from_config(config: TracingConfig) -> Tracing | None:
    """The active Tracing for `config`, or None when tracing is off."""
    if not config.enabled:
        return None
    tracing = Tracing(config)
    tracing.activate()
    log.info("tracing on: %s exporter, sample rate %g", config.exporter, config.sample_rate)
    return tracing


# --- a span per gRPC call ------------------------------------------------------

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
_Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Any]


class _ServerInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[_Req, _Resp] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Req, _Resp] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        service, _, name = method.lstrip("/").rpartition("/")
        attrs = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
        for attr, make in _HANDLER_MAKERS.items():
            behavior = getattr(handler, attr)
            if behavior is not None:
                wrapped = self._wrap(behavior, f"grpc {service}/{name}", attrs)
                return make(  # type: ignore[no-any-return]
                    wrapped,
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
        return handler

    def _wrap(self, behavior: _Behavior, span_name: str, attrs: dict[str, str]) -> _Behavior:
        from opentelemetry.trace import SpanKind

        tracer = self.tracer

        @contextlib.contextmanager
        def call_span(context: grpc.aio.ServicerContext[Any, Any]) -> Iterator[Span]:
            with tracer.start_as_current_span(
                span_name, kind=SpanKind.SERVER, attributes=attrs
            ) as sp:
                try:
                    yield sp
                finally:
                    code = context.code()
                    sp.set_attribute("rpc.grpc.status_code", _code_value(code))

        if inspect.isasyncgenfunction(behavior):

            async def stream(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                with call_span(context):
                    async for response in behavior(request, context):
                        yield response

            return stream

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            with call_span(context):
                return await behavior(request, context)

        return unary


def _code_value(code: Any) -> int:
    if isinstance(code, grpc.StatusCode):
        return int(code.value[0])
    return int(code or 0)


_HANDLER_MAKERS: dict[str, Callable[..., Any]] = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}
