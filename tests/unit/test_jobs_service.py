"""manager.jobs over a fake TaskControl: specs, names, status in the batch/v1
shape, listing, logs; and the JobService servicer over a real in-process server."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence

import grpc
import pytest

from corral.errors import AlreadyExists, NotFound, ValidationError
from corral.jobs import JobCondition, JobStatus
from corral.model import (
    Event,
    Node,
    RestartMode,
    Task,
    TaskId,
    TaskSpec,
    TaskState,
    TaskStatus,
)
from corral.serving import start_server
from corral.v1 import jobs_pb2, jobs_pb2_grpc
from manager import jobs
from manager.config import ManagerConfig
from manager.control import NewTask, TaskQuery
from manager.jobs.lifecycle import job_spec, job_status


class FakeTasks:
    """Stores tasks; lists them in pages of two so paging is exercised."""

    def __init__(self) -> None:
        self.tasks: dict[str, Task] = {}
        self.output = b"line 1\nline 2\n"

    async def submit(self, tasks: Sequence[NewTask]) -> list[Task]:
        out = []
        for new in tasks:
            task = Task(new.id or TaskId("generated"), new.spec, TaskStatus(created_at=100.0))
            self.tasks[task.id] = task
            out.append(task)
        return out

    async def get(self, ref: str) -> Task:
        if ref not in self.tasks:
            raise NotFound(f"task {ref!r} not found")
        return self.tasks[ref]

    async def list_tasks(self, query: TaskQuery) -> tuple[list[Task], str]:
        matching = [
            t
            for t in reversed(self.tasks.values())
            if all(t.spec.labels.get(k) == v for k, v in query.labels.items())
        ]
        start = int(query.page_token or 0)
        end = start + 2
        return matching[start:end], str(end) if end < len(matching) else ""

    async def stop(self, ref: str, reason: str = "") -> Task:
        raise NotImplementedError

    async def wait(
        self, ref: str, until: Callable[[Task], bool], timeout: float | None = None
    ) -> Task:
        raise NotImplementedError

    def watch(self, *, from_index: int = 0, kinds: Sequence[str] = ()) -> AsyncIterator[Event]:
        raise NotImplementedError

    async def logs(
        self, ref: str, *, tail: int = 0, follow: bool = False, generation: int = 0
    ) -> AsyncIterator[bytes]:
        yield self.output

    async def nodes(self) -> list[Node]:
        return []

    def set_state(self, ref: str, **status: object) -> None:
        task = self.tasks[ref]
        status_now = dataclasses.replace(task.status, **status)  # type: ignore[arg-type]
        self.tasks[ref] = dataclasses.replace(task, status=status_now)


@pytest.fixture
def fake() -> FakeTasks:
    return FakeTasks()


async def test_run_builds_a_run_to_completion_shell_task(fake: FakeTasks) -> None:
    job = await jobs.Jobs(fake, ManagerConfig()).run(None)
    spec = fake.tasks[job.name].spec
    assert len(job.name) == 36 and job.task_id == job.name
    assert spec.command == ("sh", "-c", "echo launched; sleep 10; echo done")
    assert spec.runtime == "process" and spec.image == ""
    assert spec.restart_policy.mode is RestartMode.NEVER
    assert spec.labels == {"corral.kind": "job"}


@pytest.mark.parametrize("runtime", ["docker", "kubernetes"])
async def test_container_runtimes_use_the_jobs_image(fake: FakeTasks, runtime: str) -> None:
    config = ManagerConfig(jobs_runtime=runtime, jobs_image="corral-test/busybox:latest")
    job = await jobs.Jobs(fake, config).run("echo hi", "named-job")
    spec = fake.tasks["named-job"].spec
    assert job.name == "named-job" and job.cmd == "echo hi"
    assert spec.runtime == runtime and spec.image == "corral-test/busybox:latest"
    assert spec.command == ("sh", "-c", "echo hi")


@pytest.mark.parametrize(
    ("cmd", "name", "field"),
    [("", "", "cmd"), ("   ", "", "cmd"), ("a\x00b", "", "cmd"), ("ls", "Not A Label", "name")],
)
async def test_bad_input_names_the_field(fake: FakeTasks, cmd: str, name: str, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        await jobs.Jobs(fake, ManagerConfig()).run(cmd, name)
    assert err.value.field == field
    assert fake.tasks == {}


async def test_names_are_unique_and_other_tasks_are_not_jobs(fake: FakeTasks) -> None:
    service = jobs.Jobs(fake, ManagerConfig())
    await service.run("true", "once")
    with pytest.raises(AlreadyExists):
        await service.run("true", "once")
    fake.tasks["plain"] = Task(TaskId("plain"), TaskSpec(name="plain", command=("true",)))
    with pytest.raises(NotFound):
        await service.get("plain")
    with pytest.raises(NotFound):
        await service.get("missing")


async def test_list_pages_through_every_job(fake: FakeTasks) -> None:
    service = jobs.Jobs(fake, ManagerConfig())
    for i in range(5):
        await service.run("true", f"job-{i}")
    fake.tasks["plain"] = Task(TaskId("plain"), TaskSpec(name="plain", command=("true",)))
    assert [j.name for j in await service.list()] == [f"job-{i}" for i in reversed(range(5))]


def _status(state: TaskState, **extra: object) -> JobStatus:
    task = Task(
        TaskId("j"),
        job_spec("j", "true", ManagerConfig()),
        TaskStatus(state=state, **extra),  # type: ignore[arg-type]
    )
    return job_status(task)


def test_status_follows_the_batch_v1_shape() -> None:
    assert _status(TaskState.PENDING) == JobStatus(active=1)
    running = _status(TaskState.RUNNING, scheduled_at=1.0, started_at=2.0)
    assert running == JobStatus(active=1, start_time=2.0)
    done = _status(TaskState.COMPLETED, started_at=2.0, finished_at=5.0, exit_code=0)
    assert (done.succeeded, done.active, done.failed) == (1, 0, 0)
    assert done.completion_time == 5.0
    assert done.conditions == (JobCondition("Complete", "", "", 5.0),)
    failed = _status(TaskState.FAILED, started_at=2.0, finished_at=5.0, exit_code=3)
    assert (failed.failed, failed.completion_time) == (1, None)
    assert failed.conditions[0].type == "Failed"
    assert failed.conditions[0].reason == "BackoffLimitExceeded"
    assert failed.conditions[0].message == "exit code 3"
    stopped = _status(TaskState.STOPPED, finished_at=5.0, message="stopped by a user")
    assert stopped.conditions[0].reason == "Stopped" and stopped.failed == 1


async def test_job_service_over_grpc(fake: FakeTasks) -> None:
    extension = jobs.install(fake, ManagerConfig())
    running = await start_server("127.0.0.1:0", [extension.register])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = jobs_pb2_grpc.JobServiceStub(channel)
            made = (await stub.RunJob(jobs_pb2.RunJobRequest(cmd="echo hi"))).job
            assert made.cmd == "echo hi" and made.status.active == 1
            fake.set_state(made.name, state=TaskState.COMPLETED, started_at=2.0, finished_at=3.0)
            got = (await stub.GetJob(jobs_pb2.GetJobRequest(name=made.name))).job
            assert got.status.succeeded == 1 and got.status.conditions[0].type == "Complete"
            assert got.status.completion_time.seconds == 3
            listed = (await stub.ListJobs(jobs_pb2.ListJobsRequest())).jobs
            assert [j.name for j in listed] == [made.name]
            chunks = [
                c.data async for c in stub.GetJobLogs(jobs_pb2.GetJobLogsRequest(name=made.name))
            ]
            assert b"".join(chunks) == b"line 1\nline 2\n"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetJob(jobs_pb2.GetJobRequest(name="nope"))
            assert err.value.code() is grpc.StatusCode.NOT_FOUND
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.RunJob(jobs_pb2.RunJobRequest(cmd=""))
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "cmd" in (err.value.details() or "")
            with pytest.raises(grpc.aio.AioRpcError) as err:
                async for _ in stub.GetJobLogs(jobs_pb2.GetJobLogsRequest(name="nope")):
                    pass
            assert err.value.code() is grpc.StatusCode.NOT_FOUND
    finally:
        await running.stop(0)
