"""Calls from the gateway to the manager: metadata, deadlines, a quick failure.

Every HTTP request becomes at most one gRPC call on the app's shared channel
(``app.state.channel``, opened in the lifespan). The ``Authorization`` header
travels as ``authorization`` metadata, the request's trace context as
``traceparent`` (``corral.tracing``), and the request's deadline as the call
timeout. When the manager is not connected the call is refused after a short
connect deadline with UNAVAILABLE (HTTP 503), instead of hanging for the
whole request deadline as gRPC's wait-for-ready would.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from starlette.requests import Request

from corral import tracing
from gateway.errors import UpstreamError, bad_request

M = TypeVar("M", bound=Message)

DEFAULT_UNARY_TIMEOUT = 30.0
MAX_TIMEOUT = 3600.0
_GRPC_TIMEOUT = re.compile(r"(\d{1,8})([HMSmun])", re.ASCII)
_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def timeout_of(request: Request, default: float | None) -> float | None:
    """The request's deadline: ``grpc-timeout`` (gRPC syntax) or ``X-Request-Timeout`` (seconds)."""
    raw = request.headers.get("grpc-timeout")
    if raw is not None:
        match = _GRPC_TIMEOUT.fullmatch(raw.strip())
        if match is None:
            raise bad_request("grpc-timeout", f"{raw!r} is not a gRPC timeout such as 10S or 500m")
        return min(int(match.group(1)) * _UNITS[match.group(2)], MAX_TIMEOUT)
    raw = request.headers.get("x-request-timeout")
    if raw is not None:
        try:
            seconds = float(raw)
        except ValueError:
            seconds = -1.0
        if not 0 < seconds <= MAX_TIMEOUT:
            raise bad_request("X-Request-Timeout", f"{raw!r} is not a number of seconds")
        return seconds
    return default


def metadata_of(request: Request) -> tuple[tuple[str, str], ...]:
    """The caller's ``Authorization`` and, with tracing on, the request span's context."""
    auth = request.headers.get("authorization")
    return (*((("authorization", auth),) if auth else ()), *tracing.carrier().items())


async def ensure_connected(request: Request) -> None:
    """Fail fast with UNAVAILABLE when the manager cannot be reached."""
    state = request.app.state
    channel: grpc.aio.Channel = state.channel
    current = channel.get_state(try_to_connect=True)
    if current is grpc.ChannelConnectivity.READY:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + state.connect_timeout
    # With several managers listed, an unreachable one sends us to the next.
    others = len(getattr(channel, "targets", ())) - 1
    while current is not grpc.ChannelConnectivity.READY:
        left = deadline - loop.time()
        if current is grpc.ChannelConnectivity.TRANSIENT_FAILURE and others > 0 and left > 0:
            others -= 1
            channel.next()
            current = channel.get_state(try_to_connect=True)
            continue
        if current is grpc.ChannelConnectivity.TRANSIENT_FAILURE or left <= 0:
            raise UpstreamError(
                grpc.StatusCode.UNAVAILABLE,
                f"the manager at {state.manager} is unavailable (no connection within "
                f"{state.connect_timeout:g}s); is `corral manager` running?",
            )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(left):
                await channel.wait_for_state_change(current)
        current = channel.get_state(try_to_connect=True)


def _multicallable(request: Request, path: str, response_type: type[Message], stream: bool) -> Any:
    cache: dict[tuple[str, bool], Any] = request.app.state.callables
    method = cache.get((path, stream))
    if method is None:
        channel = request.app.state.channel
        make = channel.unary_stream if stream else channel.unary_unary
        method = make(
            path,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_type.FromString,
        )
        cache[(path, stream)] = method
    return method


async def unary(
    request: Request,
    path: str,
    message: Message,
    response_type: type[M],
    *,
    timeout: float | None = DEFAULT_UNARY_TIMEOUT,
) -> M:
    """Call ``path`` (``/pkg.Service/Method``) once; failures raise ``UpstreamError``."""
    call_timeout = timeout_of(request, timeout)
    await ensure_connected(request)
    method = _multicallable(request, path, response_type, stream=False)
    try:
        response: M = await method(
            message, timeout=call_timeout, metadata=metadata_of(request), wait_for_ready=False
        )
    except grpc.aio.AioRpcError as err:
        raise UpstreamError.from_rpc(err) from None
    return response


async def server_stream(
    request: Request, path: str, message: Message, response_type: type[Message]
) -> grpc.aio.UnaryStreamCall:
    """Open a server stream (no default deadline: a follow may last); the caller cancels it."""
    call_timeout = timeout_of(request, None)
    await ensure_connected(request)
    method = _multicallable(request, path, response_type, stream=True)
    call: grpc.aio.UnaryStreamCall = method(
        message, timeout=call_timeout, metadata=metadata_of(request), wait_for_ready=False
    )
    return call
