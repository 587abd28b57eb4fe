"""Environments over a fake TaskControl: idempotent start, bounded waits, failures stopped."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence

import pytest

from corral.errors import AlreadyExists, DeadlineExceeded, NotFound, ValidationError
from corral.model import Task, TaskId, TaskState, TaskStatus
from manager.config import ManagerConfig
from manager.control import NewTask, TaskQuery
from manager.environments.lifecycle import Environments, StartFailed
from manager.environments.templates import load_templates


class FakeTasks:
    """Just enough of TaskControl; ``on_submit`` plays the worker."""

    def __init__(self, on_submit: Callable[[Task], TaskStatus | None]) -> None:
        self.tasks: dict[str, Task] = {}
        self.on_submit = on_submit
        self.changed = asyncio.Event()
        self.stopped: list[str] = []

    def _set(self, task: Task) -> Task:
        self.tasks[task.id] = task
        self.changed.set()
        self.changed = asyncio.Event()
        return task

    async def submit(self, tasks: Sequence[NewTask]) -> list[Task]:
        out = []
        for new in tasks:
            task_id = TaskId(f"t{len(self.tasks) + 1}")
            status = TaskStatus(state=TaskState.PENDING, created_at=time.time())
            task = self._set(Task(task_id, new.spec, status))
            later = self.on_submit(task)
            if later is not None:
                asyncio.get_running_loop().call_later(
                    0.01, lambda t=task, s=later: self._set(dataclasses.replace(t, status=s))
                )
            out.append(task)
        return out

    async def get(self, ref: str) -> Task:
        if ref not in self.tasks:
            raise NotFound(ref)
        return self.tasks[ref]

    async def list_tasks(self, query: TaskQuery) -> tuple[list[Task], str]:
        found = [
            t
            for t in self.tasks.values()
            if all(t.spec.labels.get(k) == v for k, v in query.labels.items())
        ]
        return found, ""

    async def stop(self, ref: str, reason: str = "") -> Task:
        self.stopped.append(ref)
        task = self.tasks[ref]
        return self._set(dataclasses.replace(task, status=TaskStatus(TaskState.STOPPED)))

    async def wait(
        self, ref: str, until: Callable[[Task], bool], timeout: float | None = None
    ) -> Task:
        deadline = time.monotonic() + (timeout or 60)
        while not until(self.tasks[ref]):
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlineExceeded("late")
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                continue
        return self.tasks[ref]


def running(task: Task) -> TaskStatus:
    return TaskStatus(state=TaskState.RUNNING, created_at=task.status.created_at)


def environments(fake: FakeTasks, timeout: float = 5.0) -> Environments:
    config = ManagerConfig(environments_runtime="kubernetes", environments_domain="x.test")
    return Environments(fake, config, load_templates(), start_timeout=timeout)  # type: ignore[arg-type]


async def test_start_is_idempotent() -> None:
    fake = FakeTasks(running)
    envs = environments(fake)
    env, created = await envs.start("p1", "python")
    assert created and env.state is TaskState.RUNNING
    assert env.host == "p1.x.test" and env.namespace == "default"
    again, created = await envs.start("p1", "python")
    assert not created and again.task_id == env.task_id
    assert len(fake.tasks) == 1
    with pytest.raises(AlreadyExists, match="already runs python"):
        await envs.start("p1", "nodejs")
    assert [e.repl_id for e in await envs.list_all()] == ["p1"]
    assert (await envs.get("p1")).language == "python"


async def test_concurrent_starts_make_one_task() -> None:
    fake = FakeTasks(running)
    envs = environments(fake)
    results = await asyncio.gather(*(envs.start("p2", "python") for _ in range(5)))
    assert len(fake.tasks) == 1
    assert sum(created for _, created in results) == 1


async def test_a_failed_start_is_stopped_with_its_reason() -> None:
    def fails(task: Task) -> TaskStatus:
        return TaskStatus(
            state=TaskState.PENDING,
            restart_count=1,
            message="restarting after failure (creating Ingress p3: 403 Forbidden)",
        )

    fake = FakeTasks(fails)
    with pytest.raises(StartFailed, match="403 Forbidden"):
        await environments(fake).start("p3", "python")
    assert fake.stopped == ["t1"]


async def test_a_start_that_never_runs_is_bounded() -> None:
    fake = FakeTasks(lambda task: None)
    with pytest.raises(StartFailed, match=r"did not start in 0\.2s"):
        await environments(fake, timeout=0.2).start("p4", "python")
    assert fake.stopped == ["t1"]


async def test_stop_get_and_list() -> None:
    fake = FakeTasks(running)
    envs = environments(fake)
    await envs.start("p5", "nodejs")
    stopped = await envs.stop("p5")
    assert stopped.state is TaskState.STOPPED
    assert await envs.list_all() == []
    with pytest.raises(NotFound):
        await envs.stop("p5")
    with pytest.raises(NotFound):
        await envs.get("nope")


@pytest.mark.parametrize(
    ("repl_id", "language", "tenant", "field"),
    [
        ("", "python", "", "repl_id"),
        ("../x", "python", "", "repl_id"),
        ("x" * 64, "python", "", "repl_id"),
        ("ok", "", "", "language"),
        ("ok", "cobol", "", "language"),
        ("ok", "python", "Bad Tenant", "tenant"),
    ],
)
async def test_bad_input_names_the_field(
    repl_id: str, language: str, tenant: str, field: str
) -> None:
    fake = FakeTasks(running)
    with pytest.raises(ValidationError) as err:
        await environments(fake).start(repl_id, language, tenant)
    assert err.value.field == field
    assert fake.tasks == {}
