"""``corral.v1`` jobs <-> ``corral.jobs``."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from corral.convert.scalars import state_from, state_to, time_from, timestamp
from corral.jobs import Job, JobCondition, JobStatus
from corral.model import TaskId
from corral.v1 import jobs_pb2


def condition_to(c: JobCondition) -> jobs_pb2.JobCondition:
    return jobs_pb2.JobCondition(
        type=c.type,
        status=c.status,
        reason=c.reason,
        message=c.message,
        last_probe_time=timestamp(c.time),
        last_transition_time=timestamp(c.time),
    )


def condition_from(m: jobs_pb2.JobCondition) -> JobCondition:
    return JobCondition(
        type=m.type,
        reason=m.reason,
        message=m.message,
        time=time_from(m.last_transition_time),
        status=m.status,
    )


def job_to(job: Job) -> jobs_pb2.Job:
    s = job.status
    return jobs_pb2.Job(
        name=job.name,
        cmd=job.cmd,
        task_id=job.task_id,
        runtime=job.runtime,
        image=job.image,
        created_at=timestamp(job.created_at),
        state=state_to(job.state),
        status=jobs_pb2.JobStatus(
            active=s.active,
            succeeded=s.succeeded,
            failed=s.failed,
            start_time=timestamp(s.start_time),
            completion_time=timestamp(s.completion_time),
            conditions=[condition_to(c) for c in s.conditions],
        ),
    )


def job_from(m: jobs_pb2.Job) -> Job:
    s = m.status
    return Job(
        name=m.name,
        cmd=m.cmd,
        task_id=TaskId(m.task_id),
        runtime=m.runtime,
        image=m.image,
        state=state_from(m.state),
        created_at=time_from(m.created_at),
        status=JobStatus(
            active=s.active,
            succeeded=s.succeeded,
            failed=s.failed,
            start_time=time_from(s.start_time),
            completion_time=time_from(s.completion_time),
            conditions=tuple(condition_from(c) for c in s.conditions),
        ),
    )


def job_json(job: Job) -> dict[str, Any]:
    """A job as proto3 JSON, as ``/v1/jobs`` and grpcurl show it."""
    return dict(json_format.MessageToDict(job_to(job)))
