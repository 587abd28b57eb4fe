"""``corral.Client``'s EnvironmentService calls."""

from __future__ import annotations

from corral.calls.base import Calls
from corral.convert.environments import environment_from
from corral.environments import Environment
from corral.v1 import environments_pb2, environments_pb2_grpc

# StartEnvironment itself waits (bounded) for the environment to run.
ENVIRONMENT_START_TIMEOUT = 90.0


class EnvironmentCalls(Calls):
    _environments: environments_pb2_grpc.EnvironmentServiceStub

    async def start_environment(
        self,
        repl_id: str,
        language: str,
        *,
        tenant: str = "",
        timeout: float = ENVIRONMENT_START_TIMEOUT,
    ) -> tuple[Environment, bool]:
        """Start a project's environment (idempotent) and wait until it runs; True when
        this call created it."""
        request = environments_pb2.StartEnvironmentRequest(
            repl_id=repl_id, language=language, tenant=tenant
        )
        reply = await self.call(self._environments.StartEnvironment, request, timeout=timeout)
        return environment_from(reply.environment), reply.created

    async def stop_environment(self, repl_id: str) -> None:
        """Stop an environment and remove what it made."""
        request = environments_pb2.StopEnvironmentRequest(repl_id=repl_id)
        await self.call(self._environments.StopEnvironment, request)

    async def get_environment(self, repl_id: str) -> Environment:
        request = environments_pb2.GetEnvironmentRequest(repl_id=repl_id)
        reply = await self.call(self._environments.GetEnvironment, request)
        return environment_from(reply.environment)

    async def list_environments(self) -> list[Environment]:
        """Environments, stopped ones left out."""
        request = environments_pb2.ListEnvironmentsRequest()
        reply = await self.call(self._environments.ListEnvironments, request)
        return [environment_from(e) for e in reply.environments]
