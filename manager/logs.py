"""GetTaskLogs proxy: the manager reads a task's output from the worker that ran it.

Every call carries a deadline: a tail read must finish within
``TAIL_DEADLINE``; a follow stream is bounded by ``FOLLOW_DEADLINE`` (clients
re-open it to keep following), so no proxied call can hang forever.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import grpc

from corral.errors import Unavailable
from corral.serving import channel
from corral.tls import TlsFiles
from corral.v1 import worker_pb2, worker_pb2_grpc

TAIL_DEADLINE = 30.0
FOLLOW_DEADLINE = 6 * 3600.0


def source(tls: TlsFiles) -> Callable[..., AsyncIterator[bytes]]:
    """``stream_logs`` dialing workers with the manager's certificate (mTLS) when it has one."""

    def logs_of(
        address: str, task_id: str, generation: int, *, tail: int, follow: bool
    ) -> AsyncIterator[bytes]:
        return stream_logs(address, task_id, generation, tail=tail, follow=follow, tls=tls)

    return logs_of


async def stream_logs(
    address: str,
    task_id: str,
    generation: int,
    *,
    tail: int,
    follow: bool,
    tls: TlsFiles | None = None,
) -> AsyncIterator[bytes]:
    async with channel(address, tls=tls) as ch:
        stub = worker_pb2_grpc.WorkerServiceStub(ch)
        call = stub.StreamLogs(
            worker_pb2.StreamLogsRequest(
                task_id=task_id, generation=generation, tail=tail, follow=follow
            ),
            timeout=FOLLOW_DEADLINE if follow else TAIL_DEADLINE,
        )
        try:
            async for response in call:
                yield response.data
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED and follow:
                return
            if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise Unavailable(f"worker at {address} unreachable: {err.details()}") from err
            raise Unavailable(f"worker at {address}: {err.code().name}: {err.details()}") from err
