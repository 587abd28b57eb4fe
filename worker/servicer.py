"""WorkerService: the node's stats, attempts and logs, for the manager and operators.

Thin by design: each method converts, asks the supervisor or a runtime, and
converts back; ``translate_errors`` turns ``NotFound`` into its gRPC status.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc

from corral import convert
from corral.errors import NotFound
from corral.model import NodeStats, Resources, TaskId
from corral.serving import translate_errors
from corral.v1 import worker_pb2, worker_pb2_grpc
from worker.supervisor import Supervisor

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class WorkerServicer(worker_pb2_grpc.WorkerServiceServicer):
    def __init__(
        self,
        supervisor: Supervisor,
        *,
        capacity: Resources,
        stats: Callable[[], Awaitable[NodeStats]],
    ) -> None:
        self.supervisor = supervisor
        self.capacity = capacity
        self.stats = stats

    @translate_errors
    async def GetStats(
        self, request: worker_pb2.GetStatsRequest, context: Context
    ) -> worker_pb2.GetStatsResponse:
        stats = await self.stats()
        return worker_pb2.GetStatsResponse(
            stats=convert.stats_to(stats), capacity=convert.resources_to(self.capacity)
        )

    @translate_errors
    async def ListAttempts(
        self, request: worker_pb2.ListAttemptsRequest, context: Context
    ) -> worker_pb2.ListAttemptsResponse:
        attempts = self.supervisor.attempts()
        return worker_pb2.ListAttemptsResponse(attempts=[convert.attempt_to(a) for a in attempts])

    @translate_errors
    async def StreamLogs(
        self, request: worker_pb2.StreamLogsRequest, context: Context
    ) -> AsyncIterator[worker_pb2.StreamLogsResponse]:
        found = self.supervisor.find(TaskId(request.task_id), request.generation)
        if found is None:
            which = f" generation {request.generation}" if request.generation else ""
            raise NotFound(f"task {request.task_id}{which} has no attempt on this node")
        runtime, ref = found
        async for chunk in runtime.logs(ref, tail=request.tail, follow=request.follow):
            yield worker_pb2.StreamLogsResponse(data=chunk)


def register(servicer: WorkerServicer) -> Callable[[grpc.aio.Server], str]:
    def add(server: grpc.aio.Server) -> str:
        worker_pb2_grpc.add_WorkerServiceServicer_to_server(servicer, server)
        return str(worker_pb2.DESCRIPTOR.services_by_name["WorkerService"].full_name)

    return add
