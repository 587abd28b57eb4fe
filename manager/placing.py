"""The placement planner: which PENDING task goes to which node, as a plan.

``plan_placements`` reads the pending queue and the nodes through a ``View``
and returns a ``Plan`` of ``Place`` and ``Unplaced`` steps; it changes
neither. The scheduler (``manager.scheduling``) must still see, for the next
pick of the same pass, what the previous picks took: the planner keeps its
own copy of each node it placed something on (copied on its first pick, in
a copy of the node list) and allocates there, so the live records are only
changed when the applier carries out the plan.

A pass is cut into chunks (the core commits each before planning the next,
which also yields the event loop) and bounded by a placement budget.
``Unplaceable`` remembers, for one pass, the task shapes that fit nowhere,
so a queue of 10,000 identical tasks that fit nowhere costs one scan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from corral.model import TaskId
from manager.plans import Plan, Unplaced, View
from manager.scheduling import NodeSlot, Scheduler, explain

NO_FIT = "no node fits"

Shape = tuple[Any, ...]


@dataclass(slots=True)
class Placements:
    plan: Plan
    placed: int = 0
    # The budget ran out with tasks of the chunk left unexamined.
    exhausted: bool = False


@dataclass(slots=True)
class Unplaceable:
    """Shapes that fit nowhere in this pass, with the reason given to each."""

    reasons: dict[Shape, str] = field(default_factory=dict)


def _copy(node: NodeSlot) -> NodeSlot:
    return NodeSlot(
        id=node.id,
        capacity=node.capacity,
        allocated=node.allocated,
        labels=node.labels,
        runtimes=node.runtimes,
        schedulable=node.schedulable,
        task_count=node.task_count,
    )


def plan_placements(
    view: View,
    scheduler: Scheduler,
    task_ids: Iterable[TaskId],
    *,
    now: float,
    budget: int,
    unplaceable: Unplaceable | None = None,
) -> Placements:
    """Place what fits of ``task_ids`` (pending tasks, oldest first), at most ``budget``."""
    result = Placements(Plan())
    plan = result.plan
    nodes = view.nodes()
    copied: list[NodeSlot] | None = None
    names: dict[int, str] = {}
    reasons = (unplaceable or Unplaceable()).reasons
    for task_id in task_ids:
        task = view.find(task_id)
        if task is None or not view.is_pending(task_id):
            continue  # stopped while an earlier chunk was committing
        status = task.status
        if status.next_attempt_at is not None and status.next_attempt_at > now:
            plan.wake(status.next_attempt_at)
            continue
        if result.placed >= budget:
            result.exhausted = True
            break
        spec = task.spec
        shape = (spec.runtime, spec.resources, tuple(sorted(spec.constraints.items())))
        reason = reasons.get(shape)
        scan = nodes if copied is None else copied
        index = None if reason is not None else scheduler.choose(spec, scan)
        if index is None:
            if reason is None:
                reason = reasons[shape] = explain(spec, scan)
            if status.message != reason:
                durable = not status.message.startswith(NO_FIT)
                plan.add(Unplaced(task_id, reason, durable))
            continue
        if copied is None:
            copied = scan = list(nodes)
        if index not in names:
            names[index] = _name(view, scan[index])
            copied[index] = _copy(scan[index])
        node = copied[index]
        node.allocate(spec.resources)
        plan.place(task, node, status.generation + 1, f"placed on {names[index]}")
        result.placed += 1
    return result


def _name(view: View, node: NodeSlot) -> str:
    record = view.node(node.id)
    return (record.name if record is not None else "") or node.id
