"""The gateway's request metrics and spans: one ASGI middleware around every route.

``corral_http_request_duration_seconds`` is labelled by the route's template
(``/v1/tasks/{id}``, never the id itself, so the series stay few), the method
and the status. It measures until the response's headers leave: for a stream
(logs that follow, ``/v1/events``) that is the time to its first byte, not
the hours it may stay open; those are counted by ``corral_http_open_streams``.

With tracing on, each request is a server span continuing the caller's
``traceparent`` (if any); its context reaches the manager as gRPC metadata
(``gateway.upstream``).
"""

from __future__ import annotations

import re
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral import tracing

# Seconds: from a cached GET (sub-millisecond) to a slow upstream (the 30 s default deadline).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
STREAM_TYPES = (b"text/event-stream", b"application/x-ndjson")


class GatewayMetrics:
    """The gateway's metrics, in a registry of its own (served on ``--metrics-listen``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.duration = Histogram(
            "corral_http_request_duration_seconds",
            "Seconds from a request's arrival to its response's headers, by route template.",
            ["method", "route", "status"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "corral_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "corral_http_requests_in_flight",
            "Requests being handled (streams included).",
            registry=self.registry,
        )
        self.open_streams = Gauge(
            "corral_http_open_streams",
            "Streaming responses (events, followed logs) currently open.",
            registry=self.registry,
        )
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def series(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        """The duration and request-count children of one (method, route, status)."""
        found = self._series.get((method, route, status))
        if found is None:
            labels = (method, route, str(status))
            found = (self.duration.labels(*labels), self.requests.labels(*labels))
            self._series[(method, route, status)] = found
        return found


def route_of(scope: Scope) -> str:
    """The template of the route that answered, or ``unmatched`` (404s stay one series).

    Convertors are dropped: ``/v1/tasks/{id:segment}`` is ``/v1/tasks/{id}``.
    """
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str) or not path:
        return "unmatched"
    template = _templates.get(path)
    if template is None:
        template = _templates[path] = _CONVERTOR.sub(r"{\1}", path)
    return template


_CONVERTOR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):[^}]*\}")
# Route paths are the app's own (a few dozen), so this stays small.
_templates: dict[str, str] = {}


class Observing:
    """ASGI middleware: a histogram sample and (with tracing on) a span per request."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        # The caller's trace context, read only when there is a tracer to continue it.
        headers = _headers(scope) if tracing.enabled("gateway") else None
        started = time.perf_counter()
        status = 500
        streaming = False
        m = self.metrics

        async def observed(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = int(message["status"])
                duration, requests = m.series(method, route_of(scope), status)
                duration.observe(time.perf_counter() - started)
                requests.inc()
                kind = dict(message.get("headers", ())).get(b"content-type", b"")
                if kind.startswith(STREAM_TYPES):
                    streaming = True
                    m.open_streams.inc()
            await send(message)

        m.in_flight.inc()
        with tracing.span("gateway", method, parent=headers, server=True) as span:
            try:
                await self.app(scope, receive, observed)
            finally:
                m.in_flight.dec()
                if streaming:
                    m.open_streams.dec()
                if span is not None:
                    _finish_span(span, method, scope, status)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def _finish_span(span: Any, method: str, scope: Scope, status: int) -> None:
    span.update_name(f"{method} {route_of(scope)}")
    span.set_attribute("http.request.method", method)
    span.set_attribute("http.route", route_of(scope))
    span.set_attribute("url.path", scope.get("path", ""))
    span.set_attribute("http.response.status_code", status)
