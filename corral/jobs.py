"""Jobs as users see them: an ad-hoc shell command run to completion, in the batch/v1 shape.

A job is an ordinary task (``sh -c cmd``) whose id and name are the job's
name; ``JobStatus`` derives counts of active, succeeded and failed pods (one
pod here), start and completion times and the Complete/Failed condition from
that task's status (``manager.jobs`` derives it, the client reads it back).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from corral.model import TaskId, TaskState


@dataclass(frozen=True, slots=True)
class JobCondition:
    type: str  # Complete | Failed
    reason: str
    message: str
    time: float | None
    status: str = "True"


@dataclass(frozen=True, slots=True)
class JobStatus:
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    start_time: float | None = None
    completion_time: float | None = None
    conditions: tuple[JobCondition, ...] = ()


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    cmd: str
    task_id: TaskId
    runtime: str
    image: str = ""
    state: TaskState = TaskState.PENDING
    created_at: float | None = None
    status: JobStatus = field(default_factory=JobStatus)
