"""The dependency planner: which waiting tasks run, wait on, or end SKIPPED.

The core keeps one ``Dependencies``. A task submitted with ``depends_on``
is *held* (``Gate``) from before its submission is committed, so no
placement pass can take it; the placement pass skips held tasks. Whenever a
committed batch ends tasks (any final state), ``plan_ended`` plans what their
held dependents do: a PENDING message naming what they still wait for, a
release to placement, or SKIPPED with the reason. A skipped task is itself an
end, so a chain of dependents is decided in turn, one commit each.

Decisions are ``manager.dependencies.verdict``; this module only turns them
into plan steps over a read-only ``View`` (``find``), as the other planners do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from corral.model import Task, TaskId, TaskState
from manager.catalog import Catalog
from manager.control import NewTask
from manager.dependencies import Gate, Ready, Skip, Wait, check_graph, verdict
from manager.plans import Plan

READY = "waiting for placement (its dependencies are met)"


class Finder(Protocol):
    def find(self, task_id: TaskId) -> Task | None: ...


class Dependencies:
    def __init__(self) -> None:
        self.gate = Gate()

    def held(self, task_id: TaskId) -> bool:
        return task_id in self.gate

    def check(self, catalog: Catalog, tasks: Sequence[NewTask], prefix: str) -> None:
        """Unknown ids and cycles are refused before anything is stored."""
        if any(new.spec.depends_on for new in tasks):
            batch = [(new.id, new.spec) for new in tasks]
            check_graph(batch, lambda task_id: task_id in catalog.by_id, prefix)

    def hold(self, tasks: Iterable[Task]) -> list[TaskId]:
        """Hold every task that has dependencies (before its submission commits)."""
        held = []
        for task in tasks:
            if task.spec.depends_on:
                self.gate.hold(task.id, task.spec.depends_on)
                held.append(task.id)
        return held

    def release(self, task_ids: Iterable[TaskId]) -> None:
        for task_id in task_ids:
            self.gate.release(task_id)

    def plan_held(self, view: Finder, task_ids: Iterable[TaskId], *, now: float) -> Plan:
        """Decide held tasks now (just submitted, or restored after a restart)."""
        plan = Plan()
        for task_id in task_ids:
            self._decide(plan, view, task_id, now)
        return plan

    def plan_ended(self, view: Finder, ended: Iterable[TaskId], *, now: float) -> Plan:
        """The held dependents of tasks that just ended; the ended themselves are let go."""
        plan = Plan()
        waiting: set[TaskId] = set()
        for task_id in ended:
            self.gate.release(task_id)  # a held task stopped by a user
            waiting |= self.gate.waiting_on(task_id)
        for task_id in sorted(waiting):
            self._decide(plan, view, task_id, now)
        return plan

    def _decide(self, plan: Plan, view: Finder, task_id: TaskId, now: float) -> None:
        task = view.find(task_id)
        if task is None or task.status.state is not TaskState.PENDING:
            self.gate.release(task_id)
            return
        decided = verdict(self.gate.dependencies(task_id), lambda i: view.find(TaskId(i)))
        if isinstance(decided, Wait):
            if task.status.message != decided.reason:
                plan.change(task, kind="task.updated", message=decided.reason)
            return
        self.gate.release(task_id)
        if isinstance(decided, Skip):
            plan.change(task, state=TaskState.SKIPPED, message=decided.reason, finished_at=now)
        else:
            assert isinstance(decided, Ready)
            plan.change(task, kind="task.updated", message=READY)


def ended_in(tasks: Iterable[Task | None]) -> list[TaskId]:
    """The ids of the tasks (from a batch's events) that are in a final state."""
    return [t.id for t in tasks if t is not None and t.status.state.final]
