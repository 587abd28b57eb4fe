"""EnvironmentService: unpack, call ``Environments``, pack. Errors become status in one place."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

from corral import convert
from corral.serving import translate_errors
from corral.v1 import environments_pb2 as pb
from corral.v1 import environments_pb2_grpc as pb_grpc
from manager.environments.lifecycle import Environment, Environments

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def environment_to(env: Environment) -> pb.Environment:
    status = env.task.status
    return pb.Environment(
        repl_id=env.repl_id,
        language=env.language,
        runtime=env.runtime,
        task_id=env.task.id,
        state=convert.state_to(status.state),
        message=status.message,
        host=env.host,
        ports=convert.ports_to(status.ports),
        created_at=convert.timestamp(status.created_at),
        namespace=env.namespace,
    )


class EnvironmentServicer(pb_grpc.EnvironmentServiceServicer):
    def __init__(self, environments: Environments) -> None:
        self.environments = environments

    @translate_errors
    async def StartEnvironment(self, request: pb.StartEnvironmentRequest, context: Context) -> Any:
        env, created = await self.environments.start(
            request.repl_id, request.language, request.tenant
        )
        return pb.StartEnvironmentResponse(environment=environment_to(env), created=created)

    @translate_errors
    async def StopEnvironment(self, request: pb.StopEnvironmentRequest, context: Context) -> Any:
        await self.environments.stop(request.repl_id)
        return pb.StopEnvironmentResponse()

    @translate_errors
    async def GetEnvironment(self, request: pb.GetEnvironmentRequest, context: Context) -> Any:
        env = await self.environments.get(request.repl_id)
        return pb.GetEnvironmentResponse(environment=environment_to(env))

    @translate_errors
    async def ListEnvironments(self, request: pb.ListEnvironmentsRequest, context: Context) -> Any:
        envs = await self.environments.list_all()
        return pb.ListEnvironmentsResponse(environments=[environment_to(e) for e in envs])
