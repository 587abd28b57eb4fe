"""The manager core without a network: a fake outbox stands in for a worker stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from waiting import eventually

from corral.errors import AlreadyExists, DeadlineExceeded, NotFound, ValidationError
from corral.model import Dependency, NodeStats, Resources, TaskId, TaskSpec, TaskState, TaskUpdate
from manager import placing
from manager.config import ManagerConfig
from manager.control import NewTask, TaskQuery
from manager.core import TaskManager
from manager.encoding import ProtoCodec, spec_cache
from manager.workers import HelloInfo


class Outbox:
    def __init__(self) -> None:
        self.assigned: list[tuple[str, int]] = []
        self.stopped: list[tuple[str, int, str]] = []
        self.closed = ""

    def assign(self, task_id: TaskId, generation: int) -> None:
        self.assigned.append((task_id, generation))

    def stop(self, task_id: TaskId, generation: int, reason: str, grace: float) -> None:
        self.stopped.append((task_id, generation, reason))

    def stats(self) -> NodeStats:
        return NodeStats()

    def close(self, reason: str) -> None:
        self.closed = reason


async def no_logs(
    address: str, task_id: str, generation: int, *, tail: int, follow: bool
) -> AsyncIterator[bytes]:
    yield b""


def spec(name: str, **kw: object) -> TaskSpec:
    return TaskSpec(name=name, command=("true",), **kw)  # type: ignore[arg-type]


async def open_core(path: Path, **kw: object) -> TaskManager:
    config = ManagerConfig(data_dir=path, heartbeat_interval=0.05, ttl=10, **kw)  # type: ignore[arg-type]
    return await TaskManager.open(config, log_source=no_logs, codec=ProtoCodec(spec_cache()))


def hello(node_id: str = "n1", *attempts: TaskUpdate, **kw: object) -> HelloInfo:
    return HelloInfo(
        node_id=node_id,
        name=node_id,
        address="",
        labels=kw.get("labels", {}),  # type: ignore[arg-type]
        capacity=Resources(2, 1 << 30),
        runtimes=("process",),
        version="test",
        attempts=list(attempts),
    )


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[TaskManager]:
    manager = await open_core(tmp_path)
    yield manager
    await manager.close()


async def test_validation_names_the_field_and_stores_nothing(core: TaskManager) -> None:
    batch = [NewTask(spec("a")), NewTask(spec("b", resources=Resources(memory_bytes=-1)))]
    with pytest.raises(ValidationError) as caught:
        await core.submit(batch)
    assert caught.value.field == "tasks[1].spec.resources.memory_bytes"
    with pytest.raises(ValidationError) as caught:
        await core.submit([NewTask(spec("a"), id=TaskId("has space"))], prefix="")
    assert caught.value.field == "id"
    assert len(core.ledger.catalog) == 0
    assert (await core.store.load()).tasks == []


async def test_names_are_unique_among_unfinished_tasks(core: TaskManager) -> None:
    (first,) = await core.submit([NewTask(spec("web"))])
    with pytest.raises(AlreadyExists, match="web"):
        await core.submit([NewTask(spec("web"))])
    with pytest.raises(AlreadyExists, match="id"):
        await core.submit([NewTask(spec("other"), id=first.id)])
    await core.stop("web")
    (second,) = await core.submit([NewTask(spec("web"))])
    assert (await core.get("web")).id == second.id
    assert (await core.get(first.id)).status.state is TaskState.STOPPED
    with pytest.raises(NotFound):
        await core.get("missing")


async def test_placement_dispatch_and_completion(core: TaskManager) -> None:
    await core.start()
    outbox = Outbox()
    session = await core.workers.hello(hello(), outbox)
    tasks = await core.submit([NewTask(spec(f"t{i}", resources=Resources(1))) for i in range(3)])
    # Two fit (2 cpus); the third waits with a reason.
    third = await core.wait(tasks[2].id, lambda t: t.status.message.startswith("no node"), 5)
    assert third.status.message == "no node fits: 1 lacks cpu"
    assert len(outbox.assigned) == 2
    first_id, generation = outbox.assigned[0]
    update = TaskUpdate(TaskId(first_id), generation, TaskState.COMPLETED, exit_code=0)
    await core.workers.apply_updates(session.record, [update])
    assert (await core.get(first_id)).status.state is TaskState.COMPLETED
    placed = await core.wait(tasks[2].id, lambda t: t.status.state is TaskState.SCHEDULED, 5)
    assert placed.status.node_id == "n1" and (tasks[2].id, 1) in outbox.assigned


async def test_a_submit_examines_only_its_tasks_until_capacity_changes(
    core: TaskManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    examined: list[TaskId] = []
    plan = placing.plan_placements

    def spy(view: Any, scheduler: Any, task_ids: Any, **kw: Any) -> placing.Placements:
        task_ids = list(task_ids)
        examined.extend(task_ids)
        return plan(view, scheduler, task_ids, **kw)

    monkeypatch.setattr(placing, "plan_placements", spy)
    big = Resources(4)  # more than any node has: the backlog waits
    backlog = await core.submit([NewTask(spec(f"b{i}", resources=big)) for i in range(50)])
    assert await core.place_pending() is False
    examined.clear()
    (late,) = await core.submit([NewTask(spec("late", resources=big))])
    await core.place_pending()
    assert examined == [late.id]
    # A node came (capacity changed): the whole queue is examined again, oldest first.
    await core.workers.hello(hello(), Outbox())
    examined.clear()
    await core.place_pending()
    assert examined == [task.id for task in backlog] + [late.id]


async def test_only_an_update_that_frees_capacity_asks_for_a_pass(
    core: TaskManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await core.workers.hello(hello(), Outbox())
    (task,) = await core.submit([NewTask(spec("t", resources=Resources(1)))])
    await core.place_pending()
    kicks: list[bool] = []
    monkeypatch.setattr(core, "kick", lambda: kicks.append(True))
    running = TaskUpdate(task.id, 1, TaskState.RUNNING)
    await core.workers.apply_updates(session.record, [running])
    assert (await core.get(task.id)).status.state is TaskState.RUNNING and kicks == []
    ended = TaskUpdate(task.id, 1, TaskState.COMPLETED, exit_code=0)
    await core.workers.apply_updates(session.record, [ended])
    assert kicks == [True]


async def test_a_freed_slot_starts_a_pass_only_when_something_waits(core: TaskManager) -> None:
    session = await core.workers.hello(hello(), Outbox())
    (task,) = await core.submit([NewTask(spec("t", resources=Resources(1)))])
    await core.place_pending()
    running = TaskUpdate(task.id, 1, TaskState.RUNNING)
    await core.workers.apply_updates(session.record, [running])
    core.passes._kick.clear()  # the submit's request (this core runs no placement loop)
    ended = TaskUpdate(task.id, 1, TaskState.COMPLETED, exit_code=0)
    await core.workers.apply_updates(session.record, [ended])
    assert not core.passes._kick.is_set()  # nothing pending: no pass to run
    (big,) = await core.submit([NewTask(spec("big", resources=Resources(99)))])
    await core.place_pending()
    assert (await core.get(big.id)).status.state is TaskState.PENDING
    core.passes._kick.clear()
    core.kick()
    assert core.passes._kick.is_set()


async def test_a_wake_up_is_kept_after_an_earlier_one_fired(core: TaskManager) -> None:
    """A restart backoff's timer: once one fired, the next asked must still come (a
    timer kept after firing swallowed every later one: a task stayed PENDING)."""
    (big,) = await core.submit([NewTask(spec("big", resources=Resources(99)))])
    await core.place_pending()  # no node: it waits
    for _ in range(2):
        core.passes._kick.clear()
        core.passes.wake_at(time.time() + 0.01)
        await eventually(core.passes._kick.is_set, timeout=5)
    assert (await core.get(big.id)).status.state is TaskState.PENDING


async def test_wait_times_out(core: TaskManager) -> None:
    (task,) = await core.submit([NewTask(spec("slow"))])
    with pytest.raises(DeadlineExceeded):
        await core.wait(task.id, lambda t: t.status.state is TaskState.RUNNING, 0.05)


async def test_list_filters_and_pages(core: TaskManager) -> None:
    await core.submit([NewTask(spec(f"t{i}", labels={"even": str(i % 2 == 0)})) for i in range(7)])
    await core.stop("t0")
    page, token = await core.list_tasks(TaskQuery(page_size=3))
    assert [t.spec.name for t in page] == ["t6", "t5", "t4"] and token
    page, token = await core.list_tasks(TaskQuery(page_size=3, page_token=token))
    assert [t.spec.name for t in page] == ["t3", "t2", "t1"]
    page, token = await core.list_tasks(TaskQuery(page_size=3, page_token=token))
    assert [t.spec.name for t in page] == ["t0"] and token == ""
    stopped, _ = await core.list_tasks(TaskQuery(states=frozenset({TaskState.STOPPED})))
    assert [t.spec.name for t in stopped] == ["t0"]
    even, _ = await core.list_tasks(TaskQuery(labels={"even": "True"}))
    assert [t.spec.name for t in even] == ["t6", "t4", "t2", "t0"]
    with pytest.raises(ValidationError, match="page_token"):
        await core.list_tasks(TaskQuery(page_token="zzz"))


async def test_restart_restores_tasks_nodes_and_events(tmp_path: Path) -> None:
    core = await open_core(tmp_path)
    outbox = Outbox()
    await core.start()
    await core.workers.hello(hello(), outbox)
    tasks = await core.submit([NewTask(spec(f"t{i}")) for i in range(3)])
    for t in tasks:
        await core.wait(t.id, lambda t: t.status.state is TaskState.SCHEDULED, 5)
    last = core.hub.published
    await core.close()

    core = await open_core(tmp_path)
    try:
        assert len(core.ledger.catalog) == 3
        assert {t.id for t in tasks if core.ledger.live(t.id)} == {t.id for t in tasks}
        record = core.ledger.node("n1")
        assert record is not None and record.task_count == 3 and record.session is None
        # Nothing placed on a node that is not connected.
        await core.start()
        (extra,) = await core.submit([NewTask(spec("extra"))])
        waiting = await core.wait(extra.id, lambda t: t.status.message.startswith("no node"), 5)
        assert waiting.status.message == "no node fits: 1 not ready"
        events = [e async for e in _take(core, 1, last)]
        assert [e.index for e in events] == list(range(1, last + 1))
    finally:
        await core.close()


class CountingCodec(ProtoCodec):
    def __init__(self) -> None:
        super().__init__(spec_cache())
        self.decoded: list[str] = []

    def decode_spec(self, blob: bytes) -> TaskSpec:
        spec = super().decode_spec(blob)
        self.decoded.append(spec.name)
        return spec


async def test_a_restart_decodes_only_the_pending_tasks_with_dependencies(tmp_path: Path) -> None:
    core = await open_core(tmp_path)
    first, *_ = await core.submit([NewTask(spec(f"t{i}")) for i in range(50)])
    after = spec("after", depends_on=(Dependency(first.id),))
    await core.submit([NewTask(after)])
    await core.close()

    codec = CountingCodec()
    config = ManagerConfig(data_dir=tmp_path, heartbeat_interval=0.05, ttl=10)
    core = await TaskManager.open(config, log_source=no_logs, codec=codec)
    try:
        # "after" and the task it waits for; the other 49 stay bytes until read.
        assert sorted(codec.decoded) == ["after", "t0"]
        assert len(core.ledger.catalog) == 51
        assert len(core.dependencies.gate) == 1  # and "after" still waits for t0
        assert (await core.get(first.id)).spec.name == "t0"
    finally:
        await core.close()


async def _take(core: TaskManager, start: int, n: int) -> AsyncIterator[object]:
    seen = 0
    async with asyncio.timeout(5):
        async for event in core.watch(from_index=start):
            yield event
            seen += 1
            if seen == n:
                return


async def test_a_failed_placement_pass_is_retried_without_a_new_trigger(
    core: TaskManager, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from manager import placing

    await core.start()
    await core.workers.hello(hello(), Outbox())
    await core.settled()
    real, failures = placing.plan_placements, []

    def failing_once(*args: object, **kw: object) -> placing.Placements:
        if not failures:
            failures.append(1)
            raise RuntimeError("a bug in the planner")
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(placing, "plan_placements", failing_once)
    (task,) = await core.submit([NewTask(spec("retried"))])
    placed = await core.wait(task.id, lambda t: t.status.state is TaskState.SCHEDULED, 5)
    assert placed.status.node_id == "n1" and failures == [1]
    assert "placement pass failed; retrying" in caplog.text
