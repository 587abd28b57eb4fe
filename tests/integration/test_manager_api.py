"""ManagerService calls: batches, bad input, events, logs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from pg import pg_cluster, pg_url
from waiting import eventually

from corral.serving import channel, start_server
from corral.v1 import manager_pb2, manager_pb2_grpc, types_pb2, worker_pb2, worker_pb2_grpc
from manager.server import RunningManager
from tests.integration.test_manager_dispatch import _is, spec, start, target
from tests.simworker import COMPLETED, SimWorker

T = types_pb2
# PostgreSQL fixtures (tests/pg.py) for the second backend.
__all__ = ["pg_cluster", "pg_url"]


@pytest.fixture(params=["sqlite", "postgresql"])
async def manager(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningManager]:
    """A manager on each backend: SQLite, then PostgreSQL (one replica, once it leads)."""
    if request.param == "sqlite":
        running = await start(tmp_path / "m")
    else:
        running = await start(tmp_path / "m", store=request.getfixturevalue("pg_url"))
        async with asyncio.timeout(30):
            await running.led.wait()
    yield running
    await running.stop(0)


@pytest.fixture
async def stub(manager: RunningManager) -> AsyncIterator[manager_pb2_grpc.ManagerServiceStub]:
    async with channel(target(manager)) as ch:
        yield manager_pb2_grpc.ManagerServiceStub(ch)


def violation(err: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    return str(detail.field_violations[0].field)


async def count(stub: manager_pb2_grpc.ManagerServiceStub) -> int:
    total, token = 0, ""
    while True:
        page = await stub.ListTasks(
            manager_pb2.ListTasksRequest(page_size=1000, page_token=token), timeout=10
        )
        total += len(page.tasks)
        token = page.next_page_token
        if not token:
            return total


async def test_submit_1000_in_one_call(stub: manager_pb2_grpc.ManagerServiceStub) -> None:
    request = manager_pb2.SubmitTasksRequest(
        tasks=[manager_pb2.SubmitTaskRequest(spec=spec(f"bulk-{i}")) for i in range(1000)]
    )
    response = await stub.SubmitTasks(request, timeout=30)
    assert len(response.tasks) == 1000
    assert len({t.id for t in response.tasks}) == 1000
    assert await count(stub) == 1000
    page = await stub.ListTasks(manager_pb2.ListTasksRequest(page_size=10), timeout=5)
    # Newest first.
    assert page.tasks[0].spec.name == "bulk-999" and page.next_page_token


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (T.TaskSpec(name="ok", runtime="process"), "tasks[3].spec.command"),
        (T.TaskSpec(name="Not_A_Label", command=["true"]), "tasks[3].spec.name"),
        (
            T.TaskSpec(name="neg", command=["true"], resources=T.Resources(cpu=-1)),
            "tasks[3].spec.resources.cpu",
        ),
        (T.TaskSpec(name="img", runtime="docker", image="UPPER CASE!"), "tasks[3].spec.image"),
        (T.TaskSpec(name="nul", command=["a\x00b"]), "tasks[3].spec.command[0]"),
    ],
)
async def test_bad_task_in_a_batch_names_the_field_and_stores_nothing(
    stub: manager_pb2_grpc.ManagerServiceStub, bad: T.TaskSpec, field: str
) -> None:
    specs = [spec("a"), spec("b"), spec("c"), bad, spec("e")]
    request = manager_pb2.SubmitTasksRequest(
        tasks=[manager_pb2.SubmitTaskRequest(spec=s) for s in specs]
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SubmitTasks(request, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation(caught.value) == field
    assert caught.value.details().startswith(field)
    assert await count(stub) == 0


async def test_single_submit_errors_use_request_paths(
    stub: manager_pb2_grpc.ManagerServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SubmitTask(manager_pb2.SubmitTaskRequest(spec=spec("-bad-")), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation(caught.value) == "spec.name"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SubmitTask(manager_pb2.SubmitTaskRequest(spec=spec("x"), id="a/b"), timeout=5)
    assert violation(caught.value) == "id"
    await stub.SubmitTask(manager_pb2.SubmitTaskRequest(spec=spec("dup")), timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SubmitTask(manager_pb2.SubmitTaskRequest(spec=spec("dup")), timeout=5)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetTask(manager_pb2.GetTaskRequest(id="nope"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListTasks(manager_pb2.ListTasksRequest(label_selector="novalue"), timeout=5)
    assert violation(caught.value) == "label_selector"
    assert await count(stub) == 1


async def test_batches_over_the_limit_are_refused(
    stub: manager_pb2_grpc.ManagerServiceStub,
) -> None:
    one = manager_pb2.SubmitTaskRequest(spec=spec("x"))
    request = manager_pb2.SubmitTasksRequest(tasks=[one] * 10_001)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SubmitTasks(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation(caught.value) == "tasks"
    # Duplicate names inside one batch: all or nothing.
    request = manager_pb2.SubmitTasksRequest(tasks=[one, one])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SubmitTasks(request, timeout=5)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert await count(stub) == 0


async def collect(
    stub: manager_pb2_grpc.ManagerServiceStub, from_index: int, n: int, **kw: Any
) -> list[T.Event]:
    call = stub.WatchEvents(manager_pb2.WatchEventsRequest(from_index=from_index, **kw))
    out: list[T.Event] = []
    try:
        async with asyncio.timeout(10):
            async for response in call:
                out.append(response.event)
                if len(out) == n:
                    break
    finally:
        call.cancel()
    return out


async def test_watch_events_replays_then_follows_and_resumes(
    manager: RunningManager, stub: manager_pb2_grpc.ManagerServiceStub
) -> None:
    worker = SimWorker(target(manager), "n1")
    await worker.connect()
    (task,) = (
        await stub.SubmitTasks(
            manager_pb2.SubmitTasksRequest(tasks=[manager_pb2.SubmitTaskRequest(spec=spec("w"))]),
            timeout=5,
        )
    ).tasks
    await eventually(lambda: _is(stub, task.id, T.TASK_STATE_RUNNING))
    history = await collect(stub, 1, 4)
    indexes = [e.index for e in history]
    assert indexes == sorted(indexes) and indexes[0] == 1
    kinds = [e.kind for e in history]
    assert "node.registered" in kinds and "task.submitted" in kinds
    states = [e.task.status.state for e in history if e.HasField("task")]
    assert T.TASK_STATE_SCHEDULED in states or T.TASK_STATE_RUNNING in states
    # Resume in the middle, then follow a live change. The hub subscribes a watcher
    # before it replays, so once the first replayed event is here the change that
    # follows is delivered live.
    call = stub.WatchEvents(
        manager_pb2.WatchEventsRequest(from_index=indexes[2], kinds=["task.state"])
    )
    stream = aiter(call)
    try:
        async with asyncio.timeout(10):
            events = [(await anext(stream)).event]
            await worker.update([(task.id, 1, COMPLETED, 0, "")])
            while events[-1].task.status.state != T.TASK_STATE_COMPLETED:
                events.append((await anext(stream)).event)
    finally:
        call.cancel()
    assert len(events) == 3
    assert events[0].index >= indexes[2]
    assert events[-1].task.status.state == T.TASK_STATE_COMPLETED
    assert all(e.kind == "task.state" for e in events)
    await worker.close()


class FakeLogs(worker_pb2_grpc.WorkerServiceServicer):
    def __init__(self) -> None:
        self.requests: list[worker_pb2.StreamLogsRequest] = []

    async def StreamLogs(
        self, request: worker_pb2.StreamLogsRequest, context: Any
    ) -> AsyncIterator[worker_pb2.StreamLogsResponse]:
        self.requests.append(request)
        yield worker_pb2.StreamLogsResponse(data=b"hello\n")
        yield worker_pb2.StreamLogsResponse(data=b"world\n")


async def test_logs_are_proxied_from_the_worker(
    manager: RunningManager, stub: manager_pb2_grpc.ManagerServiceStub
) -> None:
    fake = FakeLogs()

    def add(server: grpc.aio.Server) -> str:
        worker_pb2_grpc.add_WorkerServiceServicer_to_server(fake, server)
        return "corral.v1.WorkerService"

    logs_server = await start_server("127.0.0.1:0", [add])
    try:
        worker = SimWorker(target(manager), "n1", address=f"127.0.0.1:{logs_server.port}")
        await worker.connect()
        (task,) = (
            await stub.SubmitTasks(
                manager_pb2.SubmitTasksRequest(
                    tasks=[manager_pb2.SubmitTaskRequest(spec=spec("l"))]
                ),
                timeout=5,
            )
        ).tasks
        await eventually(lambda: _is(stub, task.id, T.TASK_STATE_RUNNING))
        chunks = [
            r.data
            async for r in stub.GetTaskLogs(
                manager_pb2.GetTaskLogsRequest(id="l", tail=10), timeout=10
            )
        ]
        assert b"".join(chunks) == b"hello\nworld\n"
        assert (fake.requests[0].task_id, fake.requests[0].generation) == (task.id, 1)
        assert fake.requests[0].tail == 10
        await worker.close()
    finally:
        await logs_server.stop(0)


async def test_logs_of_an_unplaced_task_fail_cleanly(
    stub: manager_pb2_grpc.ManagerServiceStub,
) -> None:
    await stub.SubmitTask(manager_pb2.SubmitTaskRequest(spec=spec("nowhere")), timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.GetTaskLogs(manager_pb2.GetTaskLogsRequest(id="nowhere"), timeout=5):
            pass
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_bad_hello_is_refused_naming_the_field(manager: RunningManager) -> None:
    async with channel(target(manager)) as ch:
        call = manager_pb2_grpc.ManagerServiceStub(ch).Connect()
        hello = manager_pb2.Hello(node_id="n1", capacity=T.Resources(cpu=-2))
        await call.write(manager_pb2.WorkerMessage(hello=hello))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violation(caught.value) == "hello.capacity.cpu"
        call.cancel()
    nodes = await manager.core.nodes()
    assert nodes == []


async def test_watch_kinds_are_prefixes_in_replay_and_live(
    manager: RunningManager, stub: manager_pb2_grpc.ManagerServiceStub
) -> None:
    worker = SimWorker(target(manager), "n1")
    await worker.connect()
    await stub.SubmitTask(manager_pb2.SubmitTaskRequest(spec=spec("p")), timeout=5)
    # Replay: "node." selects node.registered and nothing of the task.
    (node_event,) = await collect(stub, 1, 1, kinds=["node."])
    assert node_event.kind == "node.registered"
    # Replay then live: "task." selects task.submitted, task.state, ... and no node events.
    task_events = await collect(stub, 1, 2, kinds=["task."])
    assert [e.kind.split(".")[0] for e in task_events] == ["task", "task"]
    assert task_events[0].kind == "task.submitted"
    await worker.close()


async def test_replies_name_the_default_runtime(stub: manager_pb2_grpc.ManagerServiceStub) -> None:
    sent = T.TaskSpec(name="plain", command=["true"])  # runtime left empty
    task = (await stub.SubmitTask(manager_pb2.SubmitTaskRequest(spec=sent), timeout=5)).task
    assert task.spec.runtime == "process"
    got = (await stub.GetTask(manager_pb2.GetTaskRequest(id="plain"), timeout=5)).task
    assert got.spec.runtime == "process"
