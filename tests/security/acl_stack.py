"""A manager with ACLs (every extension installed), one token per role, and a gateway.

Shared by the ACL tests; a module rather than a conftest (tests import the
shared ``conftest`` by name).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from corral.client import Client
from gateway import server as gateway_server
from manager.acl import Role, Tokens
from manager.config import ManagerConfig
from manager.server import RunningManager, serve

ROLES = tuple(Role)


@dataclass
class AclStack:
    manager: RunningManager
    gateway: gateway_server.RunningGateway
    secrets: dict[str, str] = field(default_factory=dict)  # token name -> secret

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.manager.port}"

    @property
    def tokens(self) -> Tokens:
        assert self.manager.tokens is not None
        return self.manager.tokens

    def make(self, name: str, role: Role, namespace: str = "") -> str:
        _, secret = self.tokens.create(name, role, namespace)
        self.secrets[name] = secret
        return secret

    def client(self, name: str | None, **options: float) -> Client:
        token = self.secrets[name] if name else ""
        return Client(self.target, token=token, retries=0, **options)  # type: ignore[arg-type]

    def http(self, name: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.secrets[name]}"} if name else {}
        return httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.gateway.port}", headers=headers, timeout=10.0
        )


@asynccontextmanager
async def acl_stack(data_dir: Path, **overrides: object) -> AsyncIterator[AclStack]:
    config = ManagerConfig(
        listen="127.0.0.1:0",
        data_dir=data_dir,
        heartbeat_interval=0.1,
        ttl=10.0,
        acl=True,
        **overrides,  # type: ignore[arg-type]
    )
    manager = await serve(config)
    try:
        gateway = await gateway_server.serve(f"127.0.0.1:{manager.port}", "127.0.0.1:0")
        try:
            stack = AclStack(manager, gateway)
            for role in ROLES:
                stack.make(str(role), role)
            yield stack
        finally:
            await gateway.stop()
    finally:
        await manager.stop(0)
