"""Restart policy: what happens to a task after its attempt ended or was lost.

Plain functions over the spec and the status; the core applies the verdict.
One counter, ``restart_count``, counts restarts whatever the cause (an exit
code, a failed health check reported as ``unhealthy: ...``, a lost node), and
``max_attempts`` bounds attempts in all, the first included (0 = unlimited).
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.model import RestartMode, TaskSpec, TaskState, TaskStatus


@dataclass(frozen=True, slots=True)
class Verdict:
    """Restart (after ``delay`` seconds) or end in ``final``; ``message`` says why."""

    restart: bool
    delay: float
    message: str
    final: TaskState = TaskState.FAILED


def _budget_left(spec: TaskSpec, status: TaskStatus) -> bool:
    limit = spec.restart_policy.max_attempts
    return limit == 0 or status.attempts < limit


def _budget(spec: TaskSpec, status: TaskStatus) -> str:
    limit = spec.restart_policy.max_attempts
    attempt = f"attempt {status.attempts + 1}"
    return f"{attempt} of {limit}" if limit else attempt


def after_exit(spec: TaskSpec, status: TaskStatus, ended: TaskState, why: str) -> Verdict:
    """The attempt ended COMPLETED or FAILED (``why``: exit code, unhealthy, ...)."""
    policy = spec.restart_policy
    failed = ended is TaskState.FAILED
    wants = policy.mode is RestartMode.ALWAYS or (failed and policy.mode is RestartMode.ON_FAILURE)
    if not wants:
        return Verdict(False, 0.0, why, ended)
    if not _budget_left(spec, status):
        limit = policy.max_attempts
        return Verdict(False, 0.0, f"{why}; gave up after {limit} attempts", ended)
    delay = policy.delay(status.restart_count)
    cause = "failure" if failed else "completion"
    return Verdict(
        True, delay, f"restarting after {cause} ({why}) in {delay:g}s: {_budget(spec, status)}"
    )


def after_loss(spec: TaskSpec, status: TaskStatus, why: str) -> Verdict:
    """The attempt's node vanished: not the task's fault, so any mode reschedules at once.

    Only ``max_attempts`` bounds it, so a task that kills every node it lands on
    does not roam the cluster forever.
    """
    if not _budget_left(spec, status):
        limit = spec.restart_policy.max_attempts
        return Verdict(False, 0.0, f"{why}; gave up after {limit} attempts")
    return Verdict(True, 0.0, f"{why}; rescheduling: {_budget(spec, status)}")
