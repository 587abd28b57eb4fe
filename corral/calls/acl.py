"""``corral.Client``'s AclService calls: tokens made, listed and revoked."""

from __future__ import annotations

from corral.calls.base import Calls
from corral.model import AclToken
from corral.v1 import acl_pb2, acl_pb2_grpc


def token_from(m: acl_pb2.Token) -> AclToken:
    created = m.created_at.ToNanoseconds() / 1e9 if m.HasField("created_at") else None
    return AclToken(m.name, m.role, m.namespace, created, m.secret)


class AclCalls(Calls):
    _acl: acl_pb2_grpc.AclServiceStub

    async def acl_bootstrap(self) -> AclToken:
        """The management token, once (the manager refuses a second bootstrap)."""
        # Not retried: a retry after a lost reply would be refused, the secret lost.
        reply = await self.call(self._acl.Bootstrap, acl_pb2.BootstrapRequest(), idempotent=False)
        return token_from(reply.token)

    async def create_token(self, name: str, role: str, namespace: str = "") -> AclToken:
        request = acl_pb2.CreateTokenRequest(name=name, role=role, namespace=namespace)
        reply = await self.call(self._acl.CreateToken, request, idempotent=False)
        return token_from(reply.token)

    async def list_tokens(self) -> list[AclToken]:
        reply = await self.call(self._acl.ListTokens, acl_pb2.ListTokensRequest())
        return [token_from(t) for t in reply.tokens]

    async def revoke_token(self, name: str) -> None:
        request = acl_pb2.RevokeTokenRequest(name=name)
        await self.call(self._acl.RevokeToken, request, idempotent=True)
