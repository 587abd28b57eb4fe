"""Assignments are delivered at least once within a live session: what the worker does
not acknowledge is sent again on a timer (the same generation: it applies it once). Heartbeats
are answered with lease renewals naming their seq."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.serving import channel
from corral.v1 import manager_pb2, manager_pb2_grpc
from manager.server import RunningManager
from tests.integration.test_manager_dispatch import spec, start, target
from tests.simworker import SimWorker


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[RunningManager]:
    # Heartbeats every 0.1 s: re-sending waits max(1 s, two heartbeats).
    running = await start(tmp_path / "m", heartbeat_interval=0.1)
    yield running
    await running.stop(0)


async def test_an_unacknowledged_assignment_is_sent_again(manager: RunningManager) -> None:
    worker = SimWorker(target(manager), "n1", auto_ack=False, auto_run=False)
    await worker.connect()
    try:
        async with channel(target(manager)) as ch:
            stub = manager_pb2_grpc.ManagerServiceStub(ch)
            await stub.SubmitTask(manager_pb2.SubmitTaskRequest(spec=spec("late"), id="t1"))
        first = (await worker.next("assign")).assign.assignments[0]
        again = (await worker.next("assign", timeout=10)).assign.assignments[0]
        assert (again.task_id, again.generation) == (first.task_id, first.generation)
        ref = manager_pb2.AttemptRef(task_id=first.task_id, generation=first.generation)
        await worker.send(manager_pb2.WorkerMessage(ack=manager_pb2.Ack(attempts=[ref])))
        renewal = await worker.next("lease")
        assert renewal.lease.seq >= 1
    finally:
        await worker.close()
