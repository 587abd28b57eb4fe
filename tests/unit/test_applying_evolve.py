"""``applying.evolve``: a changed copy of a status, every field carried over."""

import dataclasses

import pytest

from corral.model import Health, HttpResult, PortMapping, TaskState, TaskStatus
from manager.applying import evolve

FULL = TaskStatus(
    state=TaskState.RUNNING,
    node_id="n-1",
    generation=3,
    attempts=2,
    exit_code=7,
    message="running",
    restart_count=1,
    created_at=1.0,
    scheduled_at=2.0,
    started_at=3.0,
    finished_at=4.0,
    updated_at=5.0,
    ports=(PortMapping(container_port=80, host_port=8080),),
    health=Health.HEALTHY,
    result=HttpResult(status_code=200),
    next_attempt_at=6.0,
)


def test_every_field_is_copied() -> None:
    # No field of FULL is at its default, so a field evolve forgot would show.
    for field in dataclasses.fields(TaskStatus):
        assert getattr(FULL, field.name) != field.default, field.name
    copy = evolve(FULL)
    assert copy == FULL and copy is not FULL


def test_changes_are_applied_and_the_original_is_untouched() -> None:
    changed = evolve(FULL, state=TaskState.COMPLETED, exit_code=0, finished_at=9.0)
    assert changed == dataclasses.replace(
        FULL, state=TaskState.COMPLETED, exit_code=0, finished_at=9.0
    )
    assert FULL.state is TaskState.RUNNING and FULL.exit_code == 7


def test_a_name_that_is_not_a_field_is_refused() -> None:
    with pytest.raises(AttributeError):
        evolve(FULL, colour="blue")
