"""Planners for what a worker reports: the attempts of its Hello, and task updates.

``plan_hello`` compares the attempts a (re)connecting worker says it runs
with the attempts the manager placed on that node. An attempt of the
current generation is kept; any other is stopped (the generation fences a
stale worker). An attempt placed there but not reported is sent again while
it is only SCHEDULED (assignments are delivered at least once), and lost
once it had been RUNNING (the worker ran it and no longer does).

``plan_update`` applies one ``TaskUpdate``: the fence first (an update of an
attempt the node does not own is ignored, and a RUNNING one is stopped),
then RUNNING (also of a task waiting LOST for its node), an exit, an attempt
the worker gave up when its lease lapsed (LOST), or an unasked-for stop (a
failure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from corral.model import Health, NodeId, TaskId, TaskState, TaskUpdate
from manager import ending
from manager.plans import Acked, Plan, Resend, StopStale, View

Ref = tuple[TaskId, int]


@dataclass(slots=True)
class Reconciliation:
    plan: Plan
    # What the Reconcile message tells the worker.
    keep: list[Ref] = field(default_factory=list)
    stop: list[Ref] = field(default_factory=list)
    # The reports of kept attempts, applied as updates once the plan is.
    current: list[TaskUpdate] = field(default_factory=list)


def plan_hello(
    view: View, node_id: NodeId, attempts: Sequence[TaskUpdate], *, now: float
) -> Reconciliation:
    out = Reconciliation(Plan())
    record = view.node(node_id)
    name = record.name if record is not None else node_id
    reported: set[TaskId] = set()
    for update in attempts:
        live = view.live(update.task_id)
        if live is not None and live.node_id == node_id and live.generation == update.generation:
            out.keep.append((update.task_id, update.generation))
            reported.add(update.task_id)
            out.current.append(update)
        else:
            out.stop.append((update.task_id, update.generation))
    for task_id in sorted(view.tasks_on(node_id)):
        if task_id in reported:
            continue
        task = view.task(task_id)
        if task.status.state is TaskState.SCHEDULED:
            out.plan.add(Resend(task_id))
        else:
            ending.lose(out.plan, task, f"node {name} no longer runs it", now=now)
    return out


STALE = "attempt no longer assigned to this node"


def plan_ack(view: View, node_id: NodeId, refs: Sequence[Ref]) -> Plan:
    """Assignments the worker received; an ack of an attempt it does not own is ignored."""
    plan = Plan()
    for task_id, generation in refs:
        live = view.live(task_id)
        if live is not None and live.generation == generation and live.node_id == node_id:
            plan.add(Acked(task_id))
    return plan


def plan_update(view: View, node_id: NodeId, update: TaskUpdate, *, now: float) -> Plan:
    plan = Plan()
    live = view.live(update.task_id)
    if live is None or live.generation != update.generation or live.node_id != node_id:
        # A stale generation is fenced off; if it still runs, it must stop.
        if update.state is TaskState.RUNNING:
            plan.add(StopStale(node_id, update.task_id, update.generation, STALE))
        return plan
    plan.add(Acked(update.task_id))
    task = view.task(update.task_id)
    if update.state is TaskState.RUNNING:
        fields: dict[str, Any] = {}
        status = task.status
        if status.state is TaskState.SCHEDULED:
            fields = {"state": TaskState.RUNNING, "started_at": update.time or now}
            fields["message"] = update.message or "running"
        elif status.state is TaskState.LOST:  # its node is back (disconnect.replace false)
            fields = {"state": TaskState.RUNNING, "message": "running again: its node is back"}
        if update.ports and update.ports != status.ports:
            fields["ports"] = update.ports
        if update.health is not status.health and update.health is not Health.UNKNOWN:
            fields["health"] = update.health
        if fields:
            plan.change(task, **fields)
    elif update.state in (TaskState.COMPLETED, TaskState.FAILED):
        ending.after_exit(plan, task, update, now=now)
    elif update.state is TaskState.LOST:
        # The worker gave the attempt up when its lease lapsed (worker.fencing).
        ending.lose(plan, task, update.message or "lease lapsed on the node", now=now)
    elif update.state is TaskState.STOPPED:
        # Not asked for (asked-for stops end the attempt first): a failure.
        why = update.message or "stopped on the node"
        failed = replace(update, state=TaskState.FAILED, message=why)
        ending.after_exit(plan, task, failed, now=now)
    return plan
