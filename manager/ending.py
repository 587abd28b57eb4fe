"""Planners for attempts that end: exits, losses, user stops, drains, nodes going down.

(And ``plan_undrain``, the way back from a drain.)

Each function adds to a ``Plan`` the steps that end a task's live attempt
and decide what the task does next: restart by policy (``manager.restarting``
gives the verdict), wait for placement elsewhere, or end in a final state.
They read the task as the ``View`` shows it before the plan is applied; a
task appears in one plan once, so nothing a plan changes is read back.
"""

from __future__ import annotations

from corral.model import (
    Disconnect,
    Health,
    NodeId,
    NodeStatus,
    Task,
    TaskId,
    TaskState,
    TaskUpdate,
)
from manager import restarting
from manager.plans import EndAttempt, NodeEvent, Plan, SetNodeStatus, View


def reschedule(
    plan: Plan, task: Task, why: str, *, now: float, delay: float, count_restart: bool
) -> None:
    """Back to PENDING (after ``delay`` seconds): placed again by a later pass."""
    next_at = now + delay if delay > 0 else None
    plan.change(
        task,
        state=TaskState.PENDING,
        message=why,
        restart_count=task.status.restart_count + (1 if count_restart else 0),
        next_attempt_at=next_at,
        started_at=None,
        health=Health.UNKNOWN,
    )
    if next_at is not None:
        plan.wake(next_at)


def after_exit(plan: Plan, task: Task, update: TaskUpdate, *, now: float) -> None:
    """The attempt exited (COMPLETED or FAILED as ``update`` says): restart or end."""
    ended = TaskState.COMPLETED if update.state is TaskState.COMPLETED else TaskState.FAILED
    why = update.message or (
        f"exit code {update.exit_code}" if update.exit_code is not None else ended.value
    )
    plan.add(EndAttempt(task.id, update.state, why, False, update.exit_code))
    verdict = restarting.after_exit(task.spec, task.status, ended, why)
    if verdict.restart:
        plan.change(task, kind="task.updated", exit_code=update.exit_code, result=update.result)
        reschedule(plan, task, verdict.message, now=now, delay=verdict.delay, count_restart=True)
    else:
        plan.change(
            task,
            state=verdict.final,
            message=verdict.message,
            finished_at=update.time or now,
            exit_code=update.exit_code,
            result=update.result,
        )


def after_loss(plan: Plan, task: Task, why: str, *, now: float) -> None:
    """The attempt is gone with its node: LOST, then placed again or FAILED by policy."""
    if plan.state_of(task) is not TaskState.LOST:
        plan.change(task, state=TaskState.LOST, message=why)
    verdict = restarting.after_loss(task.spec, task.status, why)
    if verdict.restart:
        reschedule(plan, task, verdict.message, now=now, delay=0.0, count_restart=True)
    else:
        plan.change(task, state=TaskState.FAILED, message=verdict.message, finished_at=now)


def lose(plan: Plan, task: Task, why: str, *, now: float) -> None:
    """End the live attempt as LOST (its worker is not told: it is gone or never had it)."""
    plan.add(EndAttempt(task.id, TaskState.LOST, why, False))
    after_loss(plan, task, why, now=now)


def plan_stop(view: View, task_id: TaskId, why: str, *, now: float) -> Plan:
    """A user's stop: the worker is told, the task ends STOPPED and is never restarted."""
    plan = Plan()
    task = view.task(task_id)
    if task.status.state.final:
        return plan
    if view.live(task_id) is not None:
        plan.add(EndAttempt(task_id, TaskState.STOPPED, why, True))
    plan.change(task, state=TaskState.STOPPED, message=why, finished_at=now, next_attempt_at=None)
    return plan


def plan_drain(view: View, node_id: NodeId, *, now: float) -> Plan:
    """No new placements on the node; its tasks stop there and wait to be placed elsewhere."""
    plan = Plan()
    record = view.node(node_id)
    assert record is not None
    plan.add(SetNodeStatus(node_id, NodeStatus.DRAINING))
    why = f"moved off draining node {record.name or record.id}"
    for task_id in sorted(view.tasks_on(node_id)):
        task = view.task(task_id)
        plan.add(EndAttempt(task_id, TaskState.STOPPED, why, True))
        reschedule(plan, task, why, now=now, delay=0.0, count_restart=False)
    plan.add(NodeEvent(node_id, "node.draining"))
    return plan


def plan_undrain(view: View, node_id: NodeId) -> Plan:
    """A draining node is READY again: it takes new placements (its old tasks moved on)."""
    plan = Plan()
    plan.add(SetNodeStatus(node_id, NodeStatus.READY))
    plan.add(NodeEvent(node_id, "node.undrained"))
    return plan


def plan_node_down(
    view: View, node_id: NodeId, why: str, *, now: float, default: Disconnect
) -> Plan:
    """The node missed its heartbeats: DOWN, its session closed, its attempts LOST.

    A task whose disconnect policy (its own, else ``default``) does not replace
    it keeps its attempt and waits LOST for its node (a RUNNING one; a task
    only SCHEDULED there simply stays placed).
    """
    plan = Plan()
    plan.add(SetNodeStatus(node_id, NodeStatus.DOWN, close=why))
    for task_id in sorted(view.tasks_on(node_id)):
        task = view.task(task_id)
        if not task.spec.disconnect.resolved(default).replace:
            if task.status.state is TaskState.RUNNING:
                waiting = f"{why}; waiting for it (disconnect.replace is false)"
                plan.change(task, state=TaskState.LOST, message=waiting)
            continue
        lose(plan, task, why, now=now)
    plan.add(NodeEvent(node_id, "node.down", why))
    return plan
