"""The task state machine table."""

from __future__ import annotations

import itertools
import logging

import pytest

from corral.model import TaskState
from manager import states

S = TaskState
LEGAL = {
    (S.PENDING, S.SCHEDULED),
    (S.PENDING, S.STOPPED),
    (S.PENDING, S.SKIPPED),
    (S.SCHEDULED, S.RUNNING),
    (S.SCHEDULED, S.COMPLETED),
    (S.SCHEDULED, S.FAILED),
    (S.SCHEDULED, S.STOPPED),
    (S.SCHEDULED, S.LOST),
    (S.SCHEDULED, S.PENDING),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.STOPPED),
    (S.RUNNING, S.LOST),
    (S.RUNNING, S.PENDING),
    (S.LOST, S.PENDING),
    (S.LOST, S.FAILED),
    (S.LOST, S.STOPPED),
    # disconnect.replace false: the node came back with the attempt running, or ended.
    (S.LOST, S.RUNNING),
    (S.LOST, S.COMPLETED),
}


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL, key=str))
def test_every_legal_transition(current: TaskState, target: TaskState) -> None:
    assert states.legal(current, target)
    states.check("t", current, target)


def test_the_table_is_exactly_the_legal_set() -> None:
    for current, target in itertools.product(TaskState, TaskState):
        if current is target:
            continue
        assert states.legal(current, target) == ((current, target) in LEGAL), (current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.PENDING, S.RUNNING),
        (S.PENDING, S.COMPLETED),
        (S.PENDING, S.LOST),
        (S.COMPLETED, S.PENDING),
        (S.FAILED, S.RUNNING),
        (S.STOPPED, S.PENDING),
        (S.LOST, S.SCHEDULED),
    ],
)
def test_illegal_transitions_raise_and_are_logged_with_the_task(
    current: TaskState, target: TaskState, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="manager.states"),
        pytest.raises(states.IllegalTransition, match="t1") as caught,
    ):
        states.check("t1", current, target)
    assert (caught.value.current, caught.value.target) == (current, target)
    assert "illegal task transition" in caplog.text
    assert caplog.records[-1].task_id == "t1"  # type: ignore[attr-defined]


def test_final_states_have_no_way_out_and_updates_in_place_are_allowed() -> None:
    for final in (S.COMPLETED, S.FAILED, S.STOPPED):
        assert states.TRANSITIONS[final] == frozenset()
    assert states.legal(S.RUNNING, S.RUNNING)
