"""Optional OpenTelemetry tracing: free when off, one small API for every layer.

Off by default (`[tracing] enabled = false`), and then nothing here imports
OpenTelemetry, no interceptor is installed, the connector's sink is not
wrapped, and `span()` / `event_span()` / `start_span()` return a shared
no-op (or None) after a single `is None` test.

When on (needs the `tracing` extra), `Tracing` owns a TracerProvider with
one exporter and is the process's active tracer. Other layers call:

    with tracing.span("store.write_batch", store="embedded", events=n):
        ...                                  # one span per operation

    span = tracing.start_span("book.resync", symbol="BTCUSDT")   # outlives a block
    ...
    tracing.end_span(span, update_id=u)

- `span(name, **attrs)`: an operation span (connector connect, REST call,
  store batch write); a root span unless one is current.
- `start_span` / `end_span`: an operation that spans events (a book sync or
  resync, from the first snapshot request to live); always its own trace.
- `event_span(name, **attrs)`: a hop of a sampled market event; a no-op
  unless the event now being ingested was sampled.
- `Tracing.event_sink(sink)`: wraps the pipeline sink; every Nth event
  (N = 1 / event_sample_rate) gets a `raven.event` trace whose children are
  `connector.decode` (frame received -> handed to the pipeline) and
  `pipeline.ingest` (validation, state, bus publish).
- `Tracing.instrument(citadel, bus)`: inside `pipeline.ingest`, a
  `citadel.validate` hop and a `bus.publish` hop per publish; each
  subscriber that queued the event's chunk remembers it (`Subscriber.traced`)
  and its sender ends a `stream.send` hop (published -> handed to the
  stream's writer) via `sent()`. Unsampled events pay nothing: the hooks
  exist only while a sampled event is ingested, and the sender tests one
  attribute per frame (not per event).
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
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

    from raven.core.bus import Bus, Subscriber, Topic
    from raven.core.citadel import Citadel

log = logging.getLogger("raven.ops.tracing")

_active: Tracing | None = None
_NOOP = contextlib.nullcontext(None)
PENDING_SENDS = 64  # sampled chunks remembered per subscriber until sent
SEND_WAIT_NS = 30 * 1_000_000_000  # a sampled chunk not sent in this long never will be


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


def start_span(name: str, **attributes: str | int | float | bool) -> Span | None:
    """A span that outlives a `with` block (a book resync: from stale to live),
    ended by `end_span`; None when tracing is off. Always a new trace: it must
    not hang off whatever event happens to be current when it starts."""
    active = _active
    if active is None:
        return None
    from opentelemetry.context import Context

    return active.tracer.start_span(name, context=Context(), attributes=attributes)


def end_span(span: Span | None, **attributes: str | int | float | bool) -> None:
    if span is None:
        return
    if attributes:
        span.set_attributes(attributes)
    span.end()


def sent(sub: Subscriber, chunks: list[bytes], now_ns: int) -> None:
    """A client stream's sender took `chunks`: end the `stream.send` hop of each
    sampled event among them. Called only while `sub.traced` is set, once per frame."""
    pending = sub.traced
    active = _active
    if pending is None:
        return
    if active is None:
        sub.traced = None
        return
    for chunk in chunks:
        entry = pending.pop(id(chunk), None)
        if entry is not None:
            _, parent, published_ns = entry
            span = active.tracer.start_span(
                "stream.send",
                context=parent,
                start_time=published_ns,
                attributes={"raven.stream": sub.name},
            )
            span.end(end_time=now_ns)
    # Entries of events the queue conflated or dropped are never sent: forget them.
    horizon = now_ns - SEND_WAIT_NS
    while pending and next(iter(pending.values()))[2] < horizon:
        del pending[next(iter(pending))]
    if not pending:
        sub.traced = None


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
        self._citadel: Citadel | None = None
        self._bus: Bus | None = None

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

    def instrument(self, citadel: Citadel | None, bus: Bus | None) -> None:
        """Follow sampled events through `citadel` (a `citadel.validate` hop) and
        `bus` (a `bus.publish` hop per publish, then a `stream.send` hop when each
        subscriber's sender takes the chunk).

        Only while a sampled event is being ingested, `citadel.check` and
        `bus.publish` are shadowed on those instances by timed versions (an
        instance attribute in front of the method, removed right after), so
        every other event runs the plain methods: no per-event test or call.
        """
        self._citadel = citadel
        self._bus = bus

    @contextlib.contextmanager
    def _follow(self) -> Iterator[None]:
        """The shadowing described in `instrument`, for one sampled event."""
        shadowed: list[tuple[object, str]] = []
        try:
            citadel, bus = self._citadel, self._bus
            if citadel is not None:
                _shadow(citadel, "check", self._traced_check(citadel.check), shadowed)
            if bus is not None:
                _shadow(bus, "publish", self._traced_publish(bus, bus.publish), shadowed)
            yield
        finally:
            for obj, name in shadowed:
                delattr(obj, name)

    def _traced_check(self, check: Callable[[Event], Event | None]) -> Callable[..., Any]:
        tracer = self.tracer

        def traced(event: Event) -> Event | None:
            with tracer.start_as_current_span("citadel.validate") as span:
                out = check(event)
                if out is None:
                    span.set_attribute("raven.rejected", True)
                return out

        return traced

    def _traced_publish(self, bus: Bus, publish: Callable[..., None]) -> Callable[..., None]:
        from opentelemetry import trace

        tracer = self.tracer

        def traced(topic: Topic, chunk: bytes, now_ns: int, *args: Any) -> None:
            subs = bus.subscribers(topic)
            attrs: dict[str, str | int] = {
                "raven.topic": _topic_name(topic),
                "raven.subscribers": len(subs),
            }
            with tracer.start_as_current_span("bus.publish", attributes=attrs) as span:
                publish(topic, chunk, now_ns, *args)
            if subs:
                parent = trace.set_span_in_context(span)
                for sub in subs:
                    _await_send(sub, chunk, parent, now_ns)

        return traced

    def _trace_event(self, event: Event, sink: EventSink) -> None:
        if self.in_event:  # an event ingested inside a sampled one (a resync's status)
            sink(event)
            return
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
            with (
                self.tracer.start_as_current_span("pipeline.ingest", context=context),
                self._follow(),
            ):
                sink(event)
        finally:
            self.in_event = False
            root.end()

    # --- gRPC ----------------------------------------------------------------

    def server_interceptor(self) -> grpc.aio.ServerInterceptor:
        return _ServerInterceptor(self.tracer)


def _shadow(obj: object, name: str, replacement: object, done: list[tuple[object, str]]) -> None:
    setattr(obj, name, replacement)
    done.append((obj, name))


def _topic_name(topic: Topic) -> str:
    kind, exchange, symbol, channel = topic
    return "/".join(p for p in (kind.name.lower(), exchange, symbol, channel) if p)


def _await_send(sub: Subscriber, chunk: bytes, parent: Context, published_ns: int) -> None:
    """Remember that `sub` queued a sampled event's `chunk` (see `sent`)."""
    pending = sub.traced
    if pending is None:
        pending = sub.traced = {}
    elif len(pending) >= PENDING_SENDS:
        del pending[next(iter(pending))]  # the oldest: conflated or dropped, most likely
    # Keyed by identity: the queue holds this very object until it is sent, and
    # the entry holds it too, so the id can't be reused meanwhile.
    pending[id(chunk)] = (chunk, parent, published_ns)


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
