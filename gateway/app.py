"""The gateway's ASGI app: canonical routes, compatible routes, OpenAPI, docs.

``create_app`` assembles it at start-up: the canonical routes from the
``google.api.http`` annotations of the given proto files (all of
``corral.v1`` by default), the compatible routes of every module listed in
``gateway.compat.MODULES``, ``/openapi.json``, ``/docs`` and the web UI at
``/ui/`` (static files shipped in ``gateway/ui``). Every request is measured
and traced by ``gateway.observing``; ``/metrics`` is served on a port of its
own (``metrics_listen``), started in the lifespan. The gRPC channel
to the manager is opened in the lifespan and kept on ``app.state.channel``;
the app keeps no other state between requests.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator, Iterable, Sequence
from importlib import resources
from typing import Any

import grpc
from google.protobuf.descriptor import FileDescriptor
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

import gateway.compat
from corral import metrics as metrics_http
from corral.leaders import LeaderChannel
from corral.serving import channel as open_channel
from corral.tls import TlsFiles
from gateway import openapi, translation
from gateway.bindings import bindings_of, corral_files
from gateway.errors import CODE_OF_HTTP, UpstreamError
from gateway.observing import GatewayMetrics, Observing

MAX_BODY_BYTES = 1 << 20
CONNECT_TIMEOUT = 3.0


def create_app(
    manager: str,
    *,
    files: Iterable[FileDescriptor] | None = None,
    compat_modules: Sequence[str] | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    max_body_bytes: int = MAX_BODY_BYTES,
    metrics_listen: str = "",
    tls: TlsFiles | None = None,
) -> Starlette:
    """The app for the manager at ``manager`` (host:port); ``/metrics`` on ``metrics_listen``;
    ``tls`` is the client certificate the gateway presents to the manager."""
    if metrics_listen:
        metrics_http.split_listen(metrics_listen)  # a bad address fails now, not in the lifespan
    metrics = GatewayMetrics()
    bindings = bindings_of(corral_files() if files is None else files)
    compat: list[BaseRoute] = []
    for name in gateway.compat.MODULES if compat_modules is None else compat_modules:
        compat.extend(importlib.import_module(name).routes())
    spec = openapi.document(bindings, compat)

    async def openapi_json(request: Request) -> Response:
        """The OpenAPI 3 document of every route."""
        return JSONResponse(spec)

    async def docs(request: Request) -> Response:
        """A page that renders /openapi.json (no external assets)."""
        return HTMLResponse(resources.files("gateway").joinpath("docs.html").read_text())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.manager = manager
        app.state.connect_timeout = connect_timeout
        app.state.callables = {}
        # Several managers may be listed (a:50051,b:50051): calls follow the leader.
        app.state.channel = LeaderChannel(manager, opener=lambda t: open_channel(t, tls=tls))
        app.state.metrics = metrics
        app.state.metrics_server = await metrics_http.maybe_serve(metrics_listen, metrics.registry)
        try:
            yield
        finally:
            if app.state.metrics_server is not None:
                await app.state.metrics_server.stop()
            await app.state.channel.close()

    async def ui_root(request: Request) -> Response:
        return RedirectResponse("/ui/", status_code=307)

    routes: list[BaseRoute] = [
        *translation.routes(bindings),
        *compat,
        Route("/openapi.json", openapi_json, methods=["GET"], include_in_schema=False),
        Route("/docs", docs, methods=["GET"], include_in_schema=False),
        Route("/ui", ui_root, methods=["GET"], include_in_schema=False),
        Mount("/ui", StaticFiles(packages=[("gateway", "ui")], html=True), name="ui"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        max_body_size=max_body_bytes,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
    app.add_middleware(Observing, metrics=metrics)
    return app


async def _http_error(request: Request, exc: Any) -> Response:
    """Routing failures (404, 405, 413) as google.rpc.Status, like every other error."""
    assert isinstance(exc, HTTPException)
    code = CODE_OF_HTTP.get(exc.status_code, grpc.StatusCode.UNKNOWN)
    messages = {
        404: f"no route for {request.method} {request.url.path}",
        405: f"{request.method} is not allowed on {request.url.path}",
        413: f"the request body is larger than {MAX_BODY_BYTES} bytes",
    }
    body = UpstreamError(code, messages.get(exc.status_code, str(exc.detail))).status_json()
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names the methods of the first matching route only; a path
        # often has several (GET and POST /v1/tasks are two RPCs).
        headers["Allow"] = ", ".join(sorted(_methods_of(request)))
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    """A bug in the gateway: a google.rpc.Status 500 (Starlette logs the traceback)."""
    err = UpstreamError(grpc.StatusCode.INTERNAL, f"internal error in the gateway: {exc!r}")
    return JSONResponse(err.status_json(), status_code=500)


def _methods_of(request: Request) -> set[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.path_regex.match(request.url.path):
            methods |= route.methods or set()
    return methods
