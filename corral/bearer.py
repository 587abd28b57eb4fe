"""Client side of ACLs: every call on a channel carries ``authorization: Bearer <token>``.

Interceptors rather than call credentials: gRPC refuses call credentials on a
plaintext channel, and a loopback cluster with ACLs but without TLS is a
legitimate set-up (``corral up --acl``). Where the token comes from is the
caller's business (``corral.cli.options.token_of``: ``--token``, then
``CORRAL_TOKEN``, then ``<data-dir>/token``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

AUTHORIZATION = "authorization"


def bearer(token: str) -> str:
    return f"Bearer {token}"


def _with_token(details: grpc.aio.ClientCallDetails, value: str) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    metadata[AUTHORIZATION] = value
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _Bearer:
    def __init__(self, token: str) -> None:
        self.value = bearer(token)

    async def _call(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return await continuation(_with_token(details, self.value), request)


class _UnaryUnary(_Bearer, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await self._call(continuation, details, request)


class _UnaryStream(_Bearer, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await self._call(continuation, details, request)


class _StreamUnary(_Bearer, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await self._call(continuation, details, requests)


class _StreamStream(_Bearer, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await self._call(continuation, details, requests)


def bearer_interceptors(token: str) -> list[grpc.aio.ClientInterceptor]:
    return [_UnaryUnary(token), _UnaryStream(token), _StreamUnary(token), _StreamStream(token)]
