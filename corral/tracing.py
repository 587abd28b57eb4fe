"""OpenTelemetry traces across gateway, manager and worker (the ``corral[otel]`` extra).

Tracing is off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and the
OpenTelemetry SDK is installed (``pip install 'corral[otel]'``); off, every
function here is a cheap no-op, so call sites need no guard and Corral never
imports OpenTelemetry when nobody asked for it.

One trace follows a task from the REST request to the process that runs it:

- the gateway opens a span per HTTP request and sends its context to the
  manager as W3C ``traceparent`` gRPC metadata (``carrier``);
- the manager's server interceptor continues that trace for the RPC (and
  only for calls that carry one: a worker's stream is not traced), the
  submit remembers the context of each new task, and placement sends a
  child of it inside the ``Assignment`` (``trace_context``), because the
  Assign goes out later, on the worker's stream, not in the submit's call;
- the worker opens its start span as a child of the assignment's context.

Each component has its own tracer provider whose resource names it
(``service.name`` = ``corral-gateway`` ...), so ``corral up``'s three
processes, or three components sharing one test process, show up as three
services of one trace.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

import grpc

log = logging.getLogger(__name__)

ENDPOINT_VAR = "OTEL_EXPORTER_OTLP_ENDPOINT"
COMPONENTS = ("gateway", "manager", "worker")

try:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind

    AVAILABLE = True
except ImportError:  # the extra is not installed
    AVAILABLE = False

# component -> its tracer, only for components with tracing on.
_tracers: dict[str, Any] = {}
_providers: dict[str, Any] = {}


def setup(component: str) -> bool:
    """Turn tracing on for ``component`` when the environment asks for it; True if on."""
    if not os.environ.get(ENDPOINT_VAR):
        return False
    if not AVAILABLE:
        log.warning(
            "%s is set but OpenTelemetry is not installed: pip install 'corral[otel]'",
            ENDPOINT_VAR,
        )
        return False
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = new_provider(component)
    # The exporter reads the endpoint (and headers, TLS, ...) from the OTEL_* variables.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    install(component, provider)
    log.info("tracing to %s", os.environ[ENDPOINT_VAR])
    return True


def new_provider(component: str) -> Any:
    """A tracer provider whose resource names the component (``corral-<component>``)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    return TracerProvider(resource=Resource.create({"service.name": f"corral-{component}"}))


def install(component: str, provider: Any) -> None:
    """Trace ``component`` through ``provider`` (``setup`` does this; tests pass their own)."""
    if component not in COMPONENTS:
        raise ValueError(f"component must be one of {', '.join(COMPONENTS)}, got {component!r}")
    _providers[component] = provider
    _tracers[component] = provider.get_tracer(f"corral.{component}")


def shutdown() -> None:
    """Flush and forget every provider (at exit, and between tests)."""
    for provider in _providers.values():
        provider.shutdown()
    _providers.clear()
    _tracers.clear()


def enabled(component: str) -> bool:
    return component in _tracers


@contextlib.contextmanager
def span(
    component: str,
    name: str,
    *,
    parent: Mapping[str, str] | None = None,
    attributes: Mapping[str, Any] | None = None,
    start_time: float | None = None,
    server: bool = False,
    child_only: bool = False,
) -> Iterator[Any]:
    """A span of ``component``, current inside the block (None when tracing is off).

    ``parent`` is a carrier (``traceparent`` ...) from another process; without
    it the span is a child of the current one. ``start_time`` (epoch seconds)
    back-dates a span whose work began before the code that reports it.
    ``child_only`` records the span only inside a trace (no new root trace
    for work nobody traced, such as a task submitted by an untraced client).
    """
    tracer = _tracers.get(component)
    if tracer is None or (child_only and not trace.get_current_span().get_span_context().is_valid):
        yield None
        return
    context = propagate.extract(dict(parent)) if parent is not None else None
    with tracer.start_as_current_span(
        name,
        context=context,
        kind=SpanKind.SERVER if server else SpanKind.INTERNAL,
        attributes={k: v for k, v in (attributes or {}).items() if v is not None},
        start_time=int(start_time * 1e9) if start_time is not None else None,
    ) as current:
        yield current


def carrier() -> dict[str, str]:
    """The current span's context as headers/metadata (empty when there is none)."""
    if not _tracers:
        return {}
    out: dict[str, str] = {}
    propagate.inject(out)
    return out


def current_trace_id() -> str:
    """The current trace id as 32 hex digits, or "" outside a traced span."""
    if not _tracers:
        return ""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def server_interceptors(component: str) -> list[grpc.aio.ServerInterceptor]:
    """What a gRPC server of ``component`` needs to continue its callers' traces."""
    return [_ServerSpans(component)] if enabled(component) else []


class _ServerSpans(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """A server span per unary or server-streaming call that carries a ``traceparent``."""

    def __init__(self, component: str) -> None:
        self.component = component

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        parent = {k: v for k, v in details.invocation_metadata or () if isinstance(v, str)}
        if handler is None or "traceparent" not in parent:
            return handler
        component, name = self.component, details.method
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: Any) -> Any:
                with span(component, name, parent=parent, server=True):
                    return await inner(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream is not None:
            streamer = handler.unary_stream

            async def stream(request: Any, context: Any) -> Any:
                with span(component, name, parent=parent, server=True):
                    async for item in streamer(request, context):
                        yield item

            return grpc.unary_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        return handler
