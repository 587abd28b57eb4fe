"""Tasks: status, task, attempt and the worker's task updates."""

from __future__ import annotations

from typing import Any

from corral.convert.scalars import (
    enum_from,
    enum_to,
    state_from,
    state_to,
    time_from,
    timestamp,
)
from corral.convert.specs import (
    http_result_from,
    http_result_to,
    ports_from,
    ports_to,
    spec_from,
    spec_to,
)
from corral.model import (
    Attempt,
    Health,
    Task,
    TaskId,
    TaskStatus,
    TaskUpdate,
)
from corral.v1 import manager_pb2, types_pb2


def health_from(number: int) -> Health:
    return enum_from(types_pb2.Health, number, Health, "HEALTH_", Health.UNKNOWN)


def health_to(h: Health) -> Any:
    return 0 if h is Health.UNKNOWN else enum_to(types_pb2.Health, h, "HEALTH_")


def status_from(m: types_pb2.TaskStatus) -> TaskStatus:
    return TaskStatus(
        state=state_from(m.state),
        node_id=m.node_id,
        generation=m.generation,
        attempts=m.attempts,
        exit_code=m.exit_code if m.HasField("exit_code") else None,
        message=m.message,
        restart_count=m.restart_count,
        created_at=time_from(m.created_at),
        scheduled_at=time_from(m.scheduled_at),
        started_at=time_from(m.started_at),
        finished_at=time_from(m.finished_at),
        updated_at=time_from(m.updated_at),
        ports=ports_from(m.ports),
        health=health_from(m.health),
        result=http_result_from(m.result) if m.HasField("result") else None,
        next_attempt_at=time_from(m.next_attempt_at),
    )


def status_to(s: TaskStatus) -> types_pb2.TaskStatus:
    out = types_pb2.TaskStatus(
        state=state_to(s.state),
        node_id=s.node_id,
        generation=s.generation,
        attempts=s.attempts,
        exit_code=s.exit_code,
        message=s.message,
        restart_count=s.restart_count,
        health=health_to(s.health),
    )
    # Times are set in place: a Timestamp built apart is copied into the message,
    # which made up half of this conversion (the manager's hottest).
    for name in _STATUS_TIMES:
        value = getattr(s, name)
        if value is not None:
            nanos = round(value * 1e9)
            field = getattr(out, name)
            field.seconds, field.nanos = nanos // 1_000_000_000, nanos % 1_000_000_000
    if s.ports:
        out.ports.extend(ports_to(s.ports))
    if s.result is not None:
        out.result.CopyFrom(http_result_to(s.result))
    return out


_STATUS_TIMES = (
    "created_at",
    "scheduled_at",
    "started_at",
    "finished_at",
    "updated_at",
    "next_attempt_at",
)


def task_from(m: types_pb2.Task) -> Task:
    return Task(id=TaskId(m.id), spec=spec_from(m.spec), status=status_from(m.status))


def task_to(t: Task) -> types_pb2.Task:
    return types_pb2.Task(id=t.id, spec=spec_to(t.spec), status=status_to(t.status))


def attempt_from(m: types_pb2.Attempt) -> Attempt:
    return Attempt(
        task_id=TaskId(m.task_id),
        generation=m.generation,
        node_id=m.node_id,
        state=state_from(m.state),
        exit_code=m.exit_code if m.HasField("exit_code") else None,
        message=m.message,
        created_at=time_from(m.created_at),
        finished_at=time_from(m.finished_at),
    )


def attempt_to(a: Attempt) -> types_pb2.Attempt:
    return types_pb2.Attempt(
        task_id=a.task_id,
        generation=a.generation,
        node_id=a.node_id,
        state=state_to(a.state),
        exit_code=a.exit_code,
        message=a.message,
        created_at=timestamp(a.created_at),
        finished_at=timestamp(a.finished_at),
    )


def update_from(m: manager_pb2.TaskUpdate) -> TaskUpdate:
    # Positional, and absent fields skipped: every task's RUNNING and exit pass here.
    return TaskUpdate(
        TaskId(m.task_id),
        m.generation,
        state_from(m.state),
        m.exit_code if m.HasField("exit_code") else None,
        m.message,
        time_from(m.time) if m.HasField("time") else None,
        ports_from(m.ports) if m.ports else (),
        health_from(m.health) if m.health else Health.UNKNOWN,
        http_result_from(m.result) if m.HasField("result") else None,
    )


def update_to(u: TaskUpdate) -> manager_pb2.TaskUpdate:
    out = manager_pb2.TaskUpdate(
        task_id=u.task_id,
        generation=u.generation,
        state=state_to(u.state),
        exit_code=u.exit_code,
        message=u.message,
        time=timestamp(u.time),
        ports=ports_to(u.ports),
        health=health_to(u.health),
    )
    if u.result is not None:
        out.result.CopyFrom(http_result_to(u.result))
    return out
