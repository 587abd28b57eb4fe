"""A retried submit (same id, same spec) returns the task it made; another spec under
the same id is ALREADY_EXISTS. Retries are how a client survives a lost reply."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from corral.serving import channel
from corral.v1 import manager_pb2, manager_pb2_grpc
from manager.server import RunningManager
from tests.integration.test_manager_dispatch import spec, start, target


@pytest.fixture
async def stub(tmp_path: Path) -> AsyncIterator[manager_pb2_grpc.ManagerServiceStub]:
    manager: RunningManager = await start(tmp_path / "m")
    try:
        async with channel(target(manager)) as ch:
            yield manager_pb2_grpc.ManagerServiceStub(ch)
    finally:
        await manager.stop(0)


async def test_a_retried_submit_returns_the_task_it_made(
    stub: manager_pb2_grpc.ManagerServiceStub,
) -> None:
    first = await stub.SubmitTask(manager_pb2.SubmitTaskRequest(spec=spec("pay"), id="p1"))
    again = await stub.SubmitTask(manager_pb2.SubmitTaskRequest(spec=spec("pay"), id="p1"))
    assert again.task.id == "p1" and again.task.status.created_at == first.task.status.created_at
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SubmitTask(manager_pb2.SubmitTaskRequest(spec=spec("other"), id="p1"))
    assert err.value.code() is grpc.StatusCode.ALREADY_EXISTS
    assert "id: task p1 already exists with another spec" in (err.value.details() or "")
    batch = manager_pb2.SubmitTasksRequest(
        tasks=[
            manager_pb2.SubmitTaskRequest(spec=spec("new"), id="n1"),
            manager_pb2.SubmitTaskRequest(spec=spec("pay"), id="p1"),
        ]
    )
    reply = await stub.SubmitTasks(batch)
    assert [t.id for t in reply.tasks] == ["n1", "p1"]
    assert (await stub.SubmitTasks(batch)).tasks[0].status.created_at == (
        reply.tasks[0].status.created_at
    )
    listed = await stub.ListTasks(manager_pb2.ListTasksRequest(page_size=100))
    assert sorted(t.id for t in listed.tasks) == ["n1", "p1"]
