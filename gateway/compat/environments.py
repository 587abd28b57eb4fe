"""The environment orchestrator's routes, over Corral's EnvironmentService.

``POST /start {"replId", "language"}`` answers ``{"success": true,
"podCreated": true}`` once the environment runs (starting one that runs is
idempotent and answers the same); ``POST /stop {"replId"}`` answers
``{"success": true}`` once everything it made is gone; ``GET /health`` is
liveness. A missing or malformed field is 400 naming it (in the original's
camelCase), an unknown language 400, an unknown replId on stop 404, and a
backend failure 500 with the reason: ``{"success": false, "error": "..."}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from corral import jsontext
from corral.errors import ValidationError
from corral.v1 import environments_pb2 as pb
from gateway import upstream
from gateway.errors import UpstreamError

_SERVICE = "/corral.v1.EnvironmentService/"
# StartEnvironment waits (bounded, 60 s) until the environment runs or fails.
START_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0
# The original's names for the proto's fields, so errors name what the client sent.
_FIELD_NAMES = {"repl_id": "replId", "language": "language", "tenant": "tenant"}

Handler = Callable[[Request], Awaitable[Response]]


def _failure(status: int, error: str) -> JSONResponse:
    return JSONResponse({"success": False, "error": error}, status_code=status)


def _original(handler: Handler) -> Handler:
    async def handle(request: Request) -> Response:
        try:
            return await handler(request)
        except UpstreamError as err:
            message = err.message
            field = err.field()
            if field in _FIELD_NAMES and message.startswith(f"{field}:"):
                message = _FIELD_NAMES[field] + message[len(field) :]
            return _failure(err.http_status, message)

    handle.__name__ = handler.__name__
    handle.__doc__ = handler.__doc__
    return handle


async def _body(request: Request, required: tuple[str, ...]) -> dict[str, str] | JSONResponse:
    """The JSON object with its required string fields, or the 400 to answer."""
    raw = await request.body()
    try:
        data: Any = jsontext.loads(raw) if raw.strip() else {}
    except ValidationError as err:
        return _failure(400, err.message)
    if not isinstance(data, dict):
        return _failure(400, "body: must be a JSON object")
    for name in required:
        value = data.get(name)
        if value is None or value == "":
            return _failure(400, f"{name}: is required")
        if not isinstance(value, str):
            return _failure(400, f"{name}: must be a string")
    tenant = data.get("tenant", "")
    if not isinstance(tenant, str):
        return _failure(400, "tenant: must be a string")
    return {name: data[name] for name in required} | {"tenant": tenant}


@_original
async def start(request: Request) -> Response:
    """Start the environment of a replId from its language's template."""
    body = await _body(request, ("replId", "language"))
    if isinstance(body, JSONResponse):
        return body
    message = pb.StartEnvironmentRequest(
        repl_id=body["replId"], language=body["language"], tenant=body["tenant"]
    )
    await upstream.unary(
        request,
        _SERVICE + "StartEnvironment",
        message,
        pb.StartEnvironmentResponse,
        timeout=START_TIMEOUT,
    )
    return JSONResponse({"success": True, "podCreated": True})


@_original
async def stop(request: Request) -> Response:
    """Remove everything the environment of a replId made."""
    body = await _body(request, ("replId",))
    if isinstance(body, JSONResponse):
        return body
    message = pb.StopEnvironmentRequest(repl_id=body["replId"])
    await upstream.unary(
        request,
        _SERVICE + "StopEnvironment",
        message,
        pb.StopEnvironmentResponse,
        timeout=STOP_TIMEOUT,
    )
    return JSONResponse({"success": True})


async def health(request: Request) -> Response:
    """Liveness of the gateway."""
    return JSONResponse({"status": "ok"})


def routes() -> list[BaseRoute]:
    return [
        Route("/start", start, methods=["POST"]),
        Route("/stop", stop, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
