"""Node liveness, drain, restart policy, placement reasons and manager restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
from waiting import eventually

from corral.model import Resources
from corral.serving import channel
from corral.v1 import manager_pb2, manager_pb2_grpc, types_pb2
from manager.server import RunningManager
from tests.integration.test_manager_dispatch import (
    _is,
    spec,
    start,
    state_of,
    target,
)
from tests.simworker import FAILED, RUNNING, SimWorker

T = types_pb2


@asynccontextmanager
async def serving(
    tmp_path: Path, **config: float
) -> AsyncIterator[tuple[RunningManager, manager_pb2_grpc.ManagerServiceStub]]:
    """A manager on tmp_path and a stub to it; stopped whatever the test does."""
    manager = await start(tmp_path, **config)
    try:
        async with channel(target(manager)) as ch:
            yield manager, manager_pb2_grpc.ManagerServiceStub(ch)
    finally:
        await manager.stop(0)


async def submit(stub: manager_pb2_grpc.ManagerServiceStub, *specs: T.TaskSpec) -> list[T.Task]:
    request = manager_pb2.SubmitTasksRequest(
        tasks=[manager_pb2.SubmitTaskRequest(spec=s) for s in specs]
    )
    return list((await stub.SubmitTasks(request, timeout=10)).tasks)


async def test_silent_worker_goes_down_and_its_tasks_move(tmp_path: Path) -> None:
    async with serving(tmp_path, ttl=1.0) as (manager, stub):
        w1 = SimWorker(target(manager), "n1")
        await w1.connect()
        tasks = await submit(stub, *(spec(f"t{i}") for i in range(5)))
        for t in tasks:
            await eventually(lambda t=t: _is(stub, t.id, T.TASK_STATE_RUNNING))
        w2 = SimWorker(target(manager), "n2")
        await w2.connect()
        await w1.stop_heartbeats()  # the stream stays open, but silent
        for t in tasks:
            moved = await eventually(lambda t=t: _on(stub, t.id, "n2"), timeout=5)
            assert moved.status.generation == 2
            assert moved.status.restart_count == 1
        node = (await stub.GetNode(manager_pb2.GetNodeRequest(id="n1"), timeout=5)).node
        assert node.status == T.NODE_STATUS_DOWN
        assert set(w2.running) == {t.id for t in tasks}
        # The silent stream was ended; when n1 comes back it must stop its old attempts.
        stale = w1.attempts()
        assert w1._call is not None
        await eventually(w1._call.done)
        assert await w1._call.code() == grpc.StatusCode.UNAVAILABLE
        await w1.close()
        back = SimWorker(target(manager), "n1")
        await back.connect(stale)
        assert back.reconcile is not None and not back.reconcile.keep
        assert {s.task_id for s in back.reconcile.stop} == {t.id for t in tasks}
        node = (await stub.GetNode(manager_pb2.GetNodeRequest(id="n1"), timeout=5)).node
        assert node.status == T.NODE_STATUS_READY
        await back.close()
        await w2.close()


async def _on(stub: manager_pb2_grpc.ManagerServiceStub, ref: str, node: str) -> T.Task | None:
    task = await state_of(stub, ref)
    return (
        task if task.status.node_id == node and task.status.state == T.TASK_STATE_RUNNING else None
    )


async def test_drain_stops_tasks_and_places_them_elsewhere(tmp_path: Path) -> None:
    async with serving(tmp_path) as (manager, stub):
        w1 = SimWorker(target(manager), "n1")
        await w1.connect()
        tasks = await submit(stub, *(spec(f"d{i}") for i in range(3)))
        for t in tasks:
            await eventually(lambda t=t: _on(stub, t.id, "n1"))
        w2 = SimWorker(target(manager), "n2")
        await w2.connect()
        drained = await stub.DrainNode(manager_pb2.DrainNodeRequest(id="n1"), timeout=5)
        assert drained.node.status == T.NODE_STATUS_DRAINING
        stop = await w1.next("stop")
        assert {o.task_id for o in stop.stop.orders} == {t.id for t in tasks}
        assert all("draining" in o.reason for o in stop.stop.orders)
        for t in tasks:
            moved = await eventually(lambda t=t: _on(stub, t.id, "n2"))
            assert moved.status.generation == 2
        # A draining node takes nothing new.
        (extra,) = await submit(stub, spec("after-drain"))
        await eventually(lambda: _on(stub, extra.id, "n2"))
        await w1.close()
        await w2.close()


async def test_failed_health_check_restarts_with_backoff_then_gives_up(tmp_path: Path) -> None:
    async with serving(tmp_path) as (manager, stub):
        w1 = SimWorker(target(manager), "n1")
        await w1.connect()
        policy = T.RestartPolicy(
            mode=T.RESTART_MODE_ON_FAILURE, max_attempts=2, backoff=_seconds(0.3)
        )
        (task,) = await submit(stub, spec("flaky", restart_policy=policy))
        await eventually(lambda: _is(stub, task.id, T.TASK_STATE_RUNNING))
        await w1.update([(task.id, 1, FAILED, None, "unhealthy: http 500 from /health")])
        waiting = await eventually(lambda: _is(stub, task.id, T.TASK_STATE_PENDING))
        assert waiting.status.restart_count == 1
        assert "unhealthy: http 500" in waiting.status.message
        assert waiting.status.HasField("next_attempt_at")
        again = await eventually(lambda: _is(stub, task.id, T.TASK_STATE_RUNNING), timeout=5)
        assert again.status.generation == 2
        await w1.update([(task.id, 2, FAILED, 3, "")])
        final = await eventually(lambda: _is(stub, task.id, T.TASK_STATE_FAILED))
        assert final.status.exit_code == 3
        assert "gave up after 2 attempts" in final.status.message
        assert final.status.restart_count == 1
        await w1.close()


def _seconds(value: float) -> object:
    from corral.convert import duration

    return duration(value)


async def test_unplaceable_task_waits_with_reason_then_is_placed(tmp_path: Path) -> None:
    async with serving(tmp_path) as (manager, stub):
        small = SimWorker(target(manager), "small", capacity=Resources(1, 1 << 30, 1 << 30))
        await small.connect()
        big_spec = spec("big", resources=T.Resources(cpu=1, memory_bytes=4 << 30))
        docker_spec = T.TaskSpec(name="dock", runtime="docker", image="busybox:latest")
        big, dock = await submit(stub, big_spec, docker_spec)
        waiting = await eventually(lambda: _message(stub, big.id, "no node fits: 1 lacks memory"))
        assert waiting.status.state == T.TASK_STATE_PENDING
        await eventually(lambda: _message(stub, dock.id, "no node fits: 1 lacks runtime docker"))
        large = SimWorker(target(manager), "large", capacity=Resources(8, 16 << 30, 1 << 40))
        await large.connect()
        await eventually(lambda: _on(stub, big.id, "large"))
        await small.close()
        await large.close()


async def _message(stub: manager_pb2_grpc.ManagerServiceStub, ref: str, text: str) -> T.Task | None:
    task = await state_of(stub, ref)
    return task if task.status.message == text else None


async def test_restarted_manager_keeps_tasks_and_reconciles_workers(tmp_path: Path) -> None:
    worker: SimWorker
    async with serving(tmp_path) as (manager, stub):
        worker = SimWorker(target(manager), "n1")
        await worker.connect()
        tasks = await submit(stub, *(spec(f"r{i}") for i in range(20)))
        for t in tasks:
            await eventually(lambda t=t: _is(stub, t.id, T.TASK_STATE_RUNNING))
        worker.auto_run = False
        (unacked,) = await submit(stub, spec("late"))
        await eventually(lambda: _is(stub, unacked.id, T.TASK_STATE_SCHEDULED))
        running = worker.attempts()
        await worker.close()

    async with serving(tmp_path) as (manager, stub):
        listed = await stub.ListTasks(manager_pb2.ListTasksRequest(page_size=100), timeout=5)
        assert {t.id for t in listed.tasks} == {t.id for t in [*tasks, unacked]}
        # The worker pretends it never got "late", and still runs a stale attempt.
        stale = manager_pb2.TaskUpdate(task_id="gone", generation=3, state=RUNNING)
        mine = [u for u in running if u.task_id != unacked.id]
        again = SimWorker(target(manager), "n1")
        await again.connect([*mine, stale])
        assert again.reconcile is not None
        assert {k.task_id for k in again.reconcile.keep} == {t.id for t in tasks}
        assert [s.task_id for s in again.reconcile.stop] == ["gone"]
        resent = await again.next("assign")
        assert [a.task_id for a in resent.assign.assignments] == [unacked.id]
        await eventually(lambda: _is(stub, unacked.id, T.TASK_STATE_RUNNING))
        for t in tasks:
            assert (await state_of(stub, t.id)).status.state == T.TASK_STATE_RUNNING
        await again.close()


async def test_user_stop_sends_stop_and_ends_stopped(tmp_path: Path) -> None:
    async with serving(tmp_path) as (manager, stub):
        worker = SimWorker(target(manager), "n1")
        await worker.connect()
        (task,) = await submit(stub, spec("victim"))
        await eventually(lambda: _is(stub, task.id, T.TASK_STATE_RUNNING))
        stopped = await stub.StopTask(
            manager_pb2.StopTaskRequest(id="victim", reason="enough"), timeout=5
        )
        assert stopped.task.status.state == T.TASK_STATE_STOPPED
        order = (await worker.next("stop")).stop.orders[0]
        assert (order.task_id, order.generation, order.reason) == (task.id, 1, "enough")
        # The name is free again once the task is final.
        (again,) = await submit(stub, spec("victim"))
        assert again.id != task.id
        await worker.close()


async def test_an_unacknowledged_assignment_is_sent_again_to_a_session_that_was_idle(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path) as (manager, stub):
        worker = SimWorker(target(manager), "n1", auto_ack=False, auto_run=False)
        await worker.connect()  # nothing sent yet: the session's resend loop is parked
        (task,) = await submit(stub, spec("quiet"))
        first = await worker.next("assign")
        again = await worker.next("assign")
        for message in (first, again):
            assert [a.task_id for a in message.assign.assignments] == [task.id]
        await worker.close()
