"""EnvironmentService: unpack, call ``Environments``, pack. Errors become status in one place."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

from corral.convert.environments import environment_to
from corral.serving import translate_errors
from corral.v1 import environments_pb2 as pb
from corral.v1 import environments_pb2_grpc as pb_grpc
from manager.environments.lifecycle import Environments

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class EnvironmentServicer(pb_grpc.EnvironmentServiceServicer):
    def __init__(self, environments: Environments) -> None:
        self.environments = environments

    @translate_errors
    async def StartEnvironment(
        self, request: pb.StartEnvironmentRequest, context: Context
    ) -> pb.StartEnvironmentResponse:
        env, created = await self.environments.start(
            request.repl_id, request.language, request.tenant
        )
        return pb.StartEnvironmentResponse(environment=environment_to(env), created=created)

    @translate_errors
    async def StopEnvironment(
        self, request: pb.StopEnvironmentRequest, context: Context
    ) -> pb.StopEnvironmentResponse:
        await self.environments.stop(request.repl_id)
        return pb.StopEnvironmentResponse()

    @translate_errors
    async def GetEnvironment(
        self, request: pb.GetEnvironmentRequest, context: Context
    ) -> pb.GetEnvironmentResponse:
        env = await self.environments.get(request.repl_id)
        return pb.GetEnvironmentResponse(environment=environment_to(env))

    @translate_errors
    async def ListEnvironments(
        self, request: pb.ListEnvironmentsRequest, context: Context
    ) -> pb.ListEnvironmentsResponse:
        envs = await self.environments.list_all()
        return pb.ListEnvironmentsResponse(environments=[environment_to(e) for e in envs])


def register(environments: Environments, server: grpc.aio.Server) -> str:
    pb_grpc.add_EnvironmentServiceServicer_to_server(EnvironmentServicer(environments), server)
    return str(pb.DESCRIPTOR.services_by_name["EnvironmentService"].full_name)
