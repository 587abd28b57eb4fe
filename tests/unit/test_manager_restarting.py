"""Restart policy verdicts and backoff."""

from __future__ import annotations

import pytest

from corral.model import RestartMode, RestartPolicy, TaskSpec, TaskState, TaskStatus
from manager.restarting import after_exit, after_loss


def spec(mode: RestartMode, max_attempts: int = 0, backoff: float = 1.0) -> TaskSpec:
    policy = RestartPolicy(mode=mode, max_attempts=max_attempts, backoff=backoff, max_backoff=8)
    return TaskSpec(name="t", command=("x",), restart_policy=policy)


@pytest.mark.parametrize(
    ("mode", "ended", "restart"),
    [
        (RestartMode.NEVER, TaskState.FAILED, False),
        (RestartMode.NEVER, TaskState.COMPLETED, False),
        (RestartMode.ON_FAILURE, TaskState.FAILED, True),
        (RestartMode.ON_FAILURE, TaskState.COMPLETED, False),
        (RestartMode.ALWAYS, TaskState.FAILED, True),
        (RestartMode.ALWAYS, TaskState.COMPLETED, True),
    ],
)
def test_modes(mode: RestartMode, ended: TaskState, restart: bool) -> None:
    verdict = after_exit(spec(mode), TaskStatus(attempts=1), ended, "exit code 1")
    assert verdict.restart is restart
    if not restart:
        assert verdict.final is ended and verdict.message == "exit code 1"


def test_backoff_doubles_up_to_the_cap() -> None:
    s = spec(RestartMode.ON_FAILURE, backoff=1.0)
    delays = [
        after_exit(s, TaskStatus(attempts=n + 1, restart_count=n), TaskState.FAILED, "x").delay
        for n in range(6)
    ]
    assert delays == [1, 2, 4, 8, 8, 8]


def test_max_attempts_counts_the_first_and_health_failures_alike() -> None:
    s = spec(RestartMode.ON_FAILURE, max_attempts=2)
    first = after_exit(s, TaskStatus(attempts=1), TaskState.FAILED, "unhealthy: tcp 8080 refused")
    assert first.restart and "unhealthy: tcp 8080 refused" in first.message
    assert "attempt 2 of 2" in first.message
    second = after_exit(s, TaskStatus(attempts=2, restart_count=1), TaskState.FAILED, "exit code 2")
    assert not second.restart and second.final is TaskState.FAILED
    assert second.message == "exit code 2; gave up after 2 attempts"


def test_a_lost_node_reschedules_even_with_never_but_within_max_attempts() -> None:
    assert after_loss(spec(RestartMode.NEVER), TaskStatus(attempts=1), "node gone").restart
    bounded = spec(RestartMode.NEVER, max_attempts=1)
    verdict = after_loss(bounded, TaskStatus(attempts=1), "node gone")
    assert not verdict.restart and "gave up after 1 attempts" in verdict.message
    assert verdict.delay == 0
