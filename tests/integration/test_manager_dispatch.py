"""The manager over real gRPC with simulated workers (raw Connect streams)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from waiting import eventually

from corral.serving import channel
from corral.v1 import manager_pb2, manager_pb2_grpc, types_pb2
from manager.config import ManagerConfig
from manager.server import RunningManager, serve
from tests.simworker import COMPLETED, FAILED, RUNNING, SimWorker

# A long TTL by default: on a loaded machine a short one declares live nodes DOWN.
# The test about DOWN nodes sets its own.
FAST = {"heartbeat_interval": 0.1, "ttl": 10.0}


async def start(data_dir: Path, **overrides: Any) -> RunningManager:
    config = ManagerConfig(listen="127.0.0.1:0", data_dir=data_dir, **{**FAST, **overrides})
    return await serve(config, extension_modules=())


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[RunningManager]:
    running = await start(tmp_path / "m")
    yield running
    await running.stop(0)


@pytest.fixture
async def stub(manager: RunningManager) -> AsyncIterator[manager_pb2_grpc.ManagerServiceStub]:
    async with channel(f"127.0.0.1:{manager.port}") as ch:
        yield manager_pb2_grpc.ManagerServiceStub(ch)


def target(manager: RunningManager) -> str:
    return f"127.0.0.1:{manager.port}"


def spec(name: str, **fields: Any) -> types_pb2.TaskSpec:
    return types_pb2.TaskSpec(name=name, runtime="process", command=["true"], **fields)


async def state_of(stub: manager_pb2_grpc.ManagerServiceStub, ref: str) -> types_pb2.Task:
    return (await stub.GetTask(manager_pb2.GetTaskRequest(id=ref), timeout=5)).task


async def test_assignments_arrive_batched_and_updates_move_states(
    manager: RunningManager, stub: manager_pb2_grpc.ManagerServiceStub
) -> None:
    worker = SimWorker(target(manager), "n1", auto_run=False)
    await worker.connect()
    assert worker.welcome is not None and worker.welcome.node_id == "n1"
    request = manager_pb2.SubmitTasksRequest(
        tasks=[manager_pb2.SubmitTaskRequest(spec=spec(f"t{i}")) for i in range(50)]
    )
    tasks = (await stub.SubmitTasks(request, timeout=10)).tasks
    assert len(tasks) == 50
    got: dict[str, int] = {}
    messages = 0
    while len(got) < 50:
        message = await worker.next("assign")
        messages += 1
        got.update({a.task_id: a.generation for a in message.assign.assignments})
    # One submit call, placed in one pass: far fewer messages than tasks.
    assert messages <= 3
    assert set(got) == {t.id for t in tasks} and set(got.values()) == {1}
    first = tasks[0]
    assert (await state_of(stub, first.id)).status.state == types_pb2.TASK_STATE_SCHEDULED
    await worker.update([(t.id, 1, RUNNING, None, "") for t in tasks])
    await eventually(lambda: _all_in(stub, [t.id for t in tasks], types_pb2.TASK_STATE_RUNNING))
    await worker.update([(first.id, 1, COMPLETED, 0, "")])
    done = await eventually(lambda: _is(stub, first.id, types_pb2.TASK_STATE_COMPLETED))
    assert done.status.exit_code == 0 and done.status.finished_at.seconds > 0
    # A stale generation is fenced off, and told to stop if it claims to run.
    await worker.update([(tasks[1].id, 7, FAILED, 1, "stale")])
    await worker.update([(tasks[2].id, 5, RUNNING, None, "")])
    order = (await worker.next("stop")).stop.orders[0]
    assert (order.task_id, order.generation) == (tasks[2].id, 5)
    assert (await state_of(stub, tasks[1].id)).status.state == types_pb2.TASK_STATE_RUNNING
    assert (await state_of(stub, tasks[2].id)).status.generation == 1
    await worker.close()


async def _is(stub: Any, ref: str, state: int) -> types_pb2.Task | None:
    task = await state_of(stub, ref)
    return task if task.status.state == state else None


async def _all_in(stub: Any, refs: list[str], state: int) -> bool:
    return all([await _is(stub, r, state) for r in refs])
