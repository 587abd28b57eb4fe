"""Every Corral gRPC server is run the same way.

Health service, server reflection, keepalive on both ends, a bounded message
size, graceful stop, and one place (``translate_errors``) where domain errors
become rich ``google.rpc.Status`` errors: a ``ValidationError`` carries a
``BadRequest`` field violation naming the field, so grpcurl users see it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from corral.bearer import bearer_interceptors
from corral.errors import CorralError, ValidationError
from corral.guarding import RequestGuard
from corral.statuses import error_status
from corral.tls import TlsFiles, channel_credentials, server_credentials

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# Keepalive: pings every 20 s find dead peers behind NATs and silent partitions;
# permit_without_calls lets an idle worker stream keep its connection warm.
KEEPALIVE_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]
SERVER_OPTIONS: list[tuple[str, Any]] = [
    *KEEPALIVE_OPTIONS,
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.so_reuseport", 0),
    # grpc cancels calls that arrive faster than the event loop takes them once 1,000
    # wait (its default): thousands of workers redialing after a manager restart, or a
    # burst of submits, were refused. The queue is memory, not work, so allow far more.
    ("grpc.server.max_pending_requests", 20_000),
    ("grpc.server.max_pending_requests_hard_limit", 40_000),
]
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    *KEEPALIVE_OPTIONS,
    ("grpc.enable_retries", 1),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]


class Health(HealthServicer):  # type: ignore[misc]
    """The standard health service, with the ``List`` its async servicer leaves out."""

    def __init__(self) -> None:
        super().__init__()
        self._statuses: dict[str, Any] = {}

    async def set(self, service: str, status: Any) -> None:
        self._statuses[service] = status
        await super().set(service, status)

    async def List(
        self, request: health_pb2.HealthListRequest, context: Any
    ) -> health_pb2.HealthListResponse:
        reply = health_pb2.HealthListResponse()
        stopping = self._gracefully_shutting_down
        for service, status in self._statuses.items():
            reply.statuses[service].status = (
                health_pb2.HealthCheckResponse.NOT_SERVING if stopping else status
            )
        return reply


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: HealthServicer

    async def stop(self, grace: float = 5.0) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def start_server(
    listen: str,
    register: Iterable[Callable[[grpc.aio.Server], str]],
    *,
    tls: TlsFiles | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    authenticate: Sequence[grpc.aio.ServerInterceptor] = (),
) -> RunningServer:
    """Start a server on ``listen`` (port 0 picks a free one).

    Each ``register`` callable adds one servicer and returns its full service
    name, which health and reflection then announce. ``interceptors`` wrap
    every call (``corral.tracing`` continues callers' traces with one, ACLs
    another). With ``tls`` the port speaks only mutual TLS: a client without
    a certificate from the CA is refused.
    """
    credentials = server_credentials(tls) if tls is not None and tls.enabled else None
    # ``authenticate`` first: a caller without a valid token learns nothing, not even
    # which of its fields are wrong. Then the guard: what it refuses never reaches
    # tracing or a servicer.
    guard = RequestGuard(_refuse)
    server = grpc.aio.server(
        options=SERVER_OPTIONS, interceptors=[*authenticate, guard, *interceptors]
    )
    names = [add(server) for add in register]
    health = Health()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    for name in [*names, ""]:
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    reflection.enable_server_reflection([*names, health_name, reflection.SERVICE_NAME], server)
    if credentials is None:
        port = server.add_insecure_port(listen)
    else:
        port = server.add_secure_port(listen, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    log.info("grpc server listening", extra={"listen": listen, "port": port})
    return RunningServer(server, port, health)


def write_port_file(path: Path | None, port: int) -> None:
    """Report the port a server got (``--port-file``), for whoever started it on port 0.

    The file holds the port and a newline. It is written beside its final name and
    renamed into place, so a reader that sees the file sees the whole port: waiting
    for the file to exist is waiting for the server to listen.
    """
    if path is None:
        return
    partial = path.with_name(path.name + ".partial")
    partial.write_text(f"{port}\n")
    os.replace(partial, path)


async def _refuse(context: grpc.aio.ServicerContext[Any, Any], err: ValidationError) -> None:
    await context.abort_with_status(error_status(err))


F = TypeVar("F", bound=Callable[..., Any])


def translate_errors(method: F) -> F:
    """Turn ``CorralError`` raised by a servicer method into its gRPC status.

    Works for unary methods and for server-streaming async generators alike.
    """
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: Any, request: Any, context: Any) -> AsyncIterator[Any]:
            try:
                async for item in method(self, request, context):
                    yield item
            except CorralError as err:
                await context.abort_with_status(error_status(err))

        return cast(F, stream)

    @functools.wraps(method)
    async def unary(self: Any, request: Any, context: Any) -> Any:
        try:
            return await method(self, request, context)
        except CorralError as err:
            await context.abort_with_status(error_status(err))

    return cast(F, unary)


def channel(target: str, *, tls: TlsFiles | None = None, token: str = "") -> grpc.aio.Channel:
    """A client channel with Corral's keepalive and message-size settings.

    With ``tls`` it speaks mutual TLS; with ``token`` every call carries
    ``authorization: Bearer <token>``.
    """
    interceptors = bearer_interceptors(token) if token else None
    if tls is not None and tls.enabled:
        return grpc.aio.secure_channel(
            target, channel_credentials(tls), options=CHANNEL_OPTIONS, interceptors=interceptors
        )
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS, interceptors=interceptors)


async def until_signalled() -> None:
    """Return on SIGTERM or SIGINT: how every Corral server learns to stop gracefully."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
