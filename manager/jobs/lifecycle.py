"""Job operations over the manager core: run, get, list, logs.

A job is an ordinary task: ``sh -c cmd`` on the jobs runtime
(``ManagerConfig.jobs_runtime``; containers use ``jobs_image``), never
restarted, labelled ``corral.kind=job``, whose task id and name are the
job's name (a fresh UUID unless the caller gives one). Nothing about a job
is stored apart from its task, so jobs survive a manager restart with the
tasks, and their output is the task's output, kept by the worker after the
job ends (the original lost it with the pod a minute later).

The status is derived, in the batch/v1 shape: counts of active, succeeded
and failed pods (one pod here), start and completion times, and the
Complete/Failed condition.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from corral.errors import AlreadyExists, NotFound, ValidationError
from corral.jobs import Job, JobCondition, JobStatus
from corral.model import RestartMode, RestartPolicy, Task, TaskId, TaskSpec, TaskState
from corral.validation import MAX_ARG_BYTES, check_name, check_text
from manager import namespaces
from manager.config import ManagerConfig
from manager.control import NewTask, TaskControl, TaskQuery

KIND_LABEL = "corral.kind"
KIND = "job"
DEFAULT_CMD = "echo launched; sleep 10; echo done"
_MAX_PAGES = 100
_ACTIVE = frozenset({TaskState.PENDING, TaskState.SCHEDULED, TaskState.RUNNING, TaskState.LOST})


def job_spec(name: str, cmd: str, config: ManagerConfig, namespace: str = "") -> TaskSpec:
    container = config.jobs_runtime in ("docker", "kubernetes")
    return TaskSpec(
        name=name,
        namespace=namespace,
        runtime=config.jobs_runtime,
        image=config.jobs_image if container else "",
        command=("sh", "-c", cmd),
        restart_policy=RestartPolicy(mode=RestartMode.NEVER, max_attempts=1),
        labels={KIND_LABEL: KIND},
    )


def job_of(task: Task) -> Job | None:
    """The job a task runs, or None when the task is not a job."""
    command = task.spec.command
    if task.spec.labels.get(KIND_LABEL) != KIND or len(command) != 3:
        return None
    return _job(task, command[2])


def _job(task: Task, cmd: str) -> Job:
    return Job(
        name=task.spec.name,
        cmd=cmd,
        task_id=task.id,
        runtime=task.spec.runtime,
        image=task.spec.image,
        state=task.status.state,
        created_at=task.status.created_at,
        status=job_status(task),
    )


def job_status(task: Task) -> JobStatus:
    s = task.status
    start = s.started_at or s.scheduled_at
    if s.state in _ACTIVE:
        return JobStatus(active=1, start_time=start)
    if s.state is TaskState.COMPLETED:
        done = JobCondition("Complete", "", "", s.finished_at)
        return JobStatus(succeeded=1, start_time=start, completion_time=s.finished_at,
                         conditions=(done,))  # fmt: skip
    reason = "Stopped" if s.state is TaskState.STOPPED else "BackoffLimitExceeded"
    message = s.message or (f"exit code {s.exit_code}" if s.exit_code is not None else "")
    failed = JobCondition("Failed", reason, message, s.finished_at)
    return JobStatus(failed=1, start_time=start, conditions=(failed,))


class Jobs:
    """Job operations over the manager core."""

    def __init__(self, tasks: TaskControl, config: ManagerConfig) -> None:
        self.tasks = tasks
        self.config = config

    async def run(self, cmd: str | None, name: str = "") -> Job:
        cmd = DEFAULT_CMD if cmd is None else cmd
        if not cmd.strip():
            raise ValidationError("cmd", "must not be empty")
        check_text(cmd, "cmd", limit=MAX_ARG_BYTES)
        name = check_name(name, "name") if name else str(uuid.uuid4())
        if await self._find(name) is not None:
            raise AlreadyExists(f"name: job {name!r} already exists")
        # A token scoped to a namespace runs its jobs there (manager.namespaces).
        spec = job_spec(name, cmd, self.config, namespaces.scoped(""))
        (task,) = await self.tasks.submit([NewTask(spec, TaskId(name))])
        return _job(task, cmd)

    async def get(self, name: str) -> Job:
        job = await self._find(name)
        if job is None:
            raise NotFound(f"job {name!r} not found")
        return job

    async def list(self) -> list[Job]:
        jobs: list[Job] = []
        token = ""
        for _ in range(_MAX_PAGES):
            query = TaskQuery(labels={KIND_LABEL: KIND}, page_size=1000, page_token=token)
            page, token = await self.tasks.list_tasks(query)
            visible = (t for t in page if namespaces.visible(t))
            jobs.extend(job for job in map(job_of, visible) if job is not None)
            if not token:
                break
        return jobs

    async def logs(self, name: str, *, tail: int = 0, follow: bool = False) -> AsyncIterator[bytes]:
        job = await self.get(name)
        async for chunk in self.tasks.logs(job.task_id, tail=tail, follow=follow):
            yield chunk

    async def _find(self, name: str) -> Job | None:
        try:
            task = await self.tasks.get(name)
        except NotFound:
            return None
        # Another namespace's job is answered as absent.
        return job_of(task) if namespaces.visible(task) else None
