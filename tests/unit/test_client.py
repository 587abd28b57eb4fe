"""corral.Client against an in-process grpc.aio server that raises domain errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from fake_manager import FakeManager, serve

import corral
from corral.client import Client
from corral.errors import (
    CorralError,
    DeadlineExceeded,
    NotFound,
    Unavailable,
    ValidationError,
)
from corral.model import NodeStatus, Resources, TaskSpec, TaskState
from corral.statuses import code_of, error_from


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeManager, Client]]:
    manager = FakeManager()
    server = await serve(manager)
    client = Client(f"127.0.0.1:{server.port}", timeout=2.0, backoff=0.01)
    yield manager, client
    await client.close()
    await server.stop(0)


def spec(name: str = "hello", **labels: str) -> TaskSpec:
    return TaskSpec(name=name, command=("echo", "hello"), labels=labels)


def test_client_is_exported_from_the_package() -> None:
    assert corral.Client is Client


async def test_submit_round_trips_domain_types(fake: tuple[FakeManager, Client]) -> None:
    _, client = fake
    task = await client.submit(
        TaskSpec(name="web", command=("sleep", "1"), resources=Resources(0.5, 512 << 20)),
        id="my-id",
    )
    assert task.id == "my-id"
    assert task.spec.resources == Resources(0.5, 512 << 20)
    assert task.status.state is TaskState.RUNNING
    assert (await client.get_task("my-id")) == task


async def test_validation_error_keeps_its_field(fake: tuple[FakeManager, Client]) -> None:
    manager, client = fake
    with pytest.raises(ValidationError) as caught:
        await client.submit(TaskSpec(name="Bad_Name", command=("true",)))
    assert caught.value.field == "spec.name"
    assert caught.value.problem
    assert code_of(caught.value) is grpc.StatusCode.INVALID_ARGUMENT
    assert manager.tasks == {}
    with pytest.raises(ValidationError) as caught:
        await client.submit(TaskSpec(name="ok", command=()))
    assert caught.value.field == "spec.command"


async def test_not_found_is_a_domain_error(fake: tuple[FakeManager, Client]) -> None:
    _, client = fake
    with pytest.raises(NotFound, match="nope"):
        await client.get_task("nope")
    with pytest.raises(NotFound):
        await client.find_task("nope")


async def test_find_task_by_name_takes_the_newest(fake: tuple[FakeManager, Client]) -> None:
    _, client = fake
    await client.submit(spec("job"))
    newer = await client.submit(spec("job"))
    assert (await client.find_task("job")).id == newer.id
    assert (await client.find_task(newer.id)).id == newer.id


async def test_list_tasks_follows_pages(fake: tuple[FakeManager, Client]) -> None:
    manager, client = fake
    for i in range(7):
        await client.submit(spec(f"t{i}", fate="pending" if i % 2 else "running"))
    manager.calls.clear()
    assert len(await client.list_tasks(page_size=3)) == 7
    assert manager.calls["ListTasks"] == 3
    pending = await client.list_tasks(states=[TaskState.PENDING])
    assert {t.spec.name for t in pending} == {"t1", "t3", "t5"}


async def test_idempotent_calls_retry_unavailable(fake: tuple[FakeManager, Client]) -> None:
    manager, client = fake
    task = await client.submit(spec())
    manager.unavailable["GetTask"] = 2
    assert (await client.get_task(task.id)).id == task.id
    assert manager.calls["GetTask"] == 3


async def test_submit_without_id_is_not_retried(fake: tuple[FakeManager, Client]) -> None:
    manager, client = fake
    manager.unavailable["SubmitTask"] = 1
    with pytest.raises(Unavailable):
        await client.submit(spec())
    assert manager.calls["SubmitTask"] == 1
    manager.unavailable["SubmitTask"] = 1
    assert (await client.submit(spec(), id="fixed")).id == "fixed"
    assert manager.calls["SubmitTask"] == 3


async def test_retries_give_up(fake: tuple[FakeManager, Client]) -> None:
    manager, client = fake
    manager.unavailable["ListNodes"] = 100
    with pytest.raises(Unavailable):
        await client.list_nodes()
    assert manager.calls["ListNodes"] == client.retries + 1


async def test_every_call_has_a_deadline(fake: tuple[FakeManager, Client]) -> None:
    manager, client = fake
    task = await client.submit(spec())
    manager.delay = 1.0
    client.timeout = 0.2
    with pytest.raises(DeadlineExceeded):
        await client.get_task(task.id)


async def test_logs_stream_and_tail(fake: tuple[FakeManager, Client]) -> None:
    manager, client = fake
    task = await client.submit(spec())
    manager.logs = b"one\ntwo\nthree\n"
    assert b"".join([c async for c in client.logs(task.id)]) == b"one\ntwo\nthree\n"
    assert b"".join([c async for c in client.logs(task.id, tail=1)]) == b"three\n"
    with pytest.raises(NotFound):
        [c async for c in client.logs("missing")]


async def test_events_resume_from_an_index(fake: tuple[FakeManager, Client]) -> None:
    _, client = fake
    for name in ("a", "b", "c"):
        await client.submit(spec(name))
    events = [e async for e in client.watch_events(from_index=2)]
    assert [e.index for e in events] == [2, 3]
    assert events[0].task is not None and events[0].task.spec.name == "b"


async def test_nodes(fake: tuple[FakeManager, Client]) -> None:
    _, client = fake
    [node] = await client.list_nodes()
    assert (await client.find_node("alpha")).id == node.id
    drained = await client.drain_node(node.id)
    assert drained.status is NodeStatus.DRAINING
    with pytest.raises(NotFound):
        await client.get_node("zzz")


async def test_healthy(fake: tuple[FakeManager, Client], closed_port: int) -> None:
    _, client = fake
    assert await client.healthy()
    async with Client(f"127.0.0.1:{closed_port}") as dead:
        assert not await dead.healthy(timeout=0.3)


async def test_unknown_codes_become_corral_errors(fake: tuple[FakeManager, Client]) -> None:
    class Fake(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.DATA_LOSS

        def details(self) -> str:
            return "disk on fire"

    err = error_from(Fake())
    assert isinstance(err, CorralError)
    assert code_of(err) is grpc.StatusCode.DATA_LOSS
    assert err.message == "disk on fire"


async def test_wait_returns_final_or_running_and_times_out(
    fake: tuple[FakeManager, Client],
) -> None:
    _, client = fake
    ran = await client.submit(spec("r"))
    assert (await client.wait(ran.id, running=True)).status.state is TaskState.RUNNING
    failed = await client.submit(spec("f", fate="fails"))
    assert (await client.wait(failed.id)).status.exit_code == 3
    stuck = await client.submit(spec("s", fate="pending"))
    with pytest.raises(DeadlineExceeded, match="still pending"):
        await client.wait(stuck.id, timeout=0.2, poll=0.05)
