"""WorkerService: the node's stats, attempts and logs, for the manager and operators.

Thin by design: each method converts, asks the supervisor or a runtime, and
converts back; ``translate_errors`` turns ``NotFound`` into its gRPC status.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc

from corral import convert
from corral.errors import NotFound, ValidationError
from corral.model import NodeStats, Resources, TaskId
from corral.serving import translate_errors
from corral.v1 import worker_pb2, worker_pb2_grpc
from corral.validation import check_task_id
from worker.logfiles import LogStore, read_log
from worker.supervisor import Supervisor

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class WorkerServicer(worker_pb2_grpc.WorkerServiceServicer):
    def __init__(
        self,
        supervisor: Supervisor,
        *,
        capacity: Resources,
        stats: Callable[[], Awaitable[NodeStats]],
        logs: LogStore | None = None,
    ) -> None:
        self.supervisor = supervisor
        self.logs = logs
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
        task_id = TaskId(request.task_id)
        found = self.supervisor.find(task_id, request.generation)
        if found is not None:
            runtime, ref = found
            chunks = runtime.logs(ref, tail=request.tail, follow=request.follow)
        else:
            chunks = self._kept_logs(task_id, request.generation, request.tail)
        async for chunk in chunks:
            yield worker_pb2.StreamLogsResponse(data=chunk)

    def _kept_logs(self, task_id: TaskId, generation: int, tail: int) -> AsyncIterator[bytes]:
        """Output of an attempt that ended before this worker (re)started: only files remain."""
        if self.logs is not None and check_is_id(task_id):
            generation = generation or self.logs.latest_generation(task_id)
            path = self.logs.path(task_id, generation)
            if generation and path.exists():
                return read_log(path, tail=tail)
        which = f" generation {generation}" if generation else ""
        raise NotFound(f"task {task_id}{which} has no attempt on this node")


def check_is_id(task_id: str) -> bool:
    """Whether the id is safe to use in a file path (it came from the network)."""
    try:
        check_task_id(task_id, "task_id")
    except ValidationError:
        return False
    return True


def register(servicer: WorkerServicer) -> Callable[[grpc.aio.Server], str]:
    def add(server: grpc.aio.Server) -> str:
        worker_pb2_grpc.add_WorkerServiceServicer_to_server(servicer, server)
        return str(worker_pb2.DESCRIPTOR.services_by_name["WorkerService"].full_name)

    return add
