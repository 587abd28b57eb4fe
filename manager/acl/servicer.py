"""AclService over gRPC: bootstrap, create, list and revoke tokens.

The secret of a token appears in exactly two replies, Bootstrap's and
CreateToken's; ListTokens never carries one. With ACLs off every call is
refused with FAILED_PRECONDITION naming the flag that turns them on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeAlias

import grpc

from corral import convert
from corral.errors import FailedPrecondition
from corral.serving import translate_errors
from corral.v1 import acl_pb2, acl_pb2_grpc
from manager.acl.tokens import TokenRecord, Tokens, role_of

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def token_to(record: TokenRecord, secret: str = "") -> acl_pb2.Token:
    token = acl_pb2.Token(
        name=record.name, role=str(record.role), namespace=record.namespace, secret=secret
    )
    if (created := convert.timestamp(record.created_at)) is not None:
        token.created_at.CopyFrom(created)
    return token


class AclServicer(acl_pb2_grpc.AclServiceServicer):
    def __init__(self, tokens: Tokens, *, enabled: bool) -> None:
        self.tokens = tokens
        self.enabled = enabled

    def _on(self) -> Tokens:
        if not self.enabled:
            raise FailedPrecondition("ACLs are off: start the manager with --acl (CORRAL_ACL=1)")
        return self.tokens

    @translate_errors
    async def Bootstrap(
        self, request: acl_pb2.BootstrapRequest, context: Context
    ) -> acl_pb2.BootstrapResponse:
        # Writes reach the database: on a thread, never holding up the event loop.
        record, secret = await asyncio.to_thread(self._on().bootstrap)
        return acl_pb2.BootstrapResponse(token=token_to(record, secret))

    @translate_errors
    async def CreateToken(
        self, request: acl_pb2.CreateTokenRequest, context: Context
    ) -> acl_pb2.CreateTokenResponse:
        role = role_of(request.role)
        tokens = self._on()
        record, secret = await asyncio.to_thread(
            tokens.create, request.name, role, request.namespace
        )
        return acl_pb2.CreateTokenResponse(token=token_to(record, secret))

    @translate_errors
    async def ListTokens(
        self, request: acl_pb2.ListTokensRequest, context: Context
    ) -> acl_pb2.ListTokensResponse:
        return acl_pb2.ListTokensResponse(tokens=[token_to(r) for r in self._on().list()])

    @translate_errors
    async def RevokeToken(
        self, request: acl_pb2.RevokeTokenRequest, context: Context
    ) -> acl_pb2.RevokeTokenResponse:
        tokens = self._on()
        await asyncio.to_thread(tokens.revoke_stored, request.name)
        tokens.forget(request.name)  # on the loop: it wakes the token's streams to end them
        return acl_pb2.RevokeTokenResponse()


def register(tokens: Tokens, *, enabled: bool) -> Callable[[grpc.aio.Server], str]:
    def add(server: grpc.aio.Server) -> str:
        acl_pb2_grpc.add_AclServiceServicer_to_server(AclServicer(tokens, enabled=enabled), server)
        return str(acl_pb2.DESCRIPTOR.services_by_name["AclService"].full_name)

    return add
