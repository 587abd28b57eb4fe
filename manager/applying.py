"""The one place a plan is carried out: memory, the store batch, events and the outboxes.

``Applier.apply`` takes the steps of a ``Plan`` in order and, for each,
changes the ``Ledger`` (which keeps its indexes in step), records the rows
and one event per change in the ``Batch`` the caller then commits, and
queues what the workers must hear on their outboxes. The outboxes send only
after the store has committed the batch (see ``manager.sessions``), so a
worker never runs an assignment the store could forget, and watchers only
see durable events (the core publishes them after the commit).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from corral.model import Attempt, Event, Task, TaskId, TaskState, TaskStatus
from corral.values import replacer
from manager import actors
from manager.catalog import TaskEntry
from manager.events import EventHub
from manager.ledger import Ledger
from manager.nodes import NodeRecord
from manager.plans import (
    Acked,
    Change,
    EndAttempt,
    NodeEvent,
    Place,
    Plan,
    Resend,
    SetNodeStatus,
    StopStale,
    Unplaced,
)
from manager.store import Batch

# The grace of a stop for a task the manager does not know (the model's default).
DEFAULT_GRACE = 10.0


# ``evolve(status, **changes)``: a status changes three times per task placed.
evolve = replacer(TaskStatus)


class Applier:
    def __init__(self, ledger: Ledger, hub: EventHub, wake: Callable[[float], None]) -> None:
        self.ledger = ledger
        self.hub = hub
        # Asks for a placement pass at an instant (a delayed restart becomes placeable).
        self._wake = wake
        # Tasks someone waits on (``TaskManager.wait``): set on the task's next change.
        self.waiters: dict[TaskId, asyncio.Event] = {}
        handlers: dict[type[Any], Callable[[Any, Batch, float], None]] = {
            Place: self._place,
            Unplaced: self._unplaced,
            EndAttempt: self._end,
            Change: self._change,
            Acked: self._acked,
            StopStale: self._stop_stale,
            Resend: self._resend,
            SetNodeStatus: self._set_node_status,
            NodeEvent: self._node_event,
        }
        self._handlers = handlers

    def apply(self, plan: Plan, batch: Batch, now: float) -> None:
        """Carry out ``plan`` into memory, ``batch`` and the outboxes."""
        handlers = self._handlers
        for step in plan.steps:
            handlers[type(step)](step, batch, now)
        if plan.wake_at is not None:
            self._wake(plan.wake_at)

    # -- tasks -----------------------------------------------------------------

    def set_status(
        self, entry: TaskEntry, batch: Batch, now: float, kind: str, fields: dict[str, Any]
    ) -> Task:
        old = entry.task
        status = evolve(old.status, updated_at=now, **fields)
        task = Task(old.id, old.spec, status)
        self.ledger.set_task(entry, task)
        batch.statuses[entry.seq] = task
        if status.state is old.status.state and kind == "task.state":
            kind = "task.updated"
        batch.events.append(
            Event(
                self.hub.allocate(),
                now,
                kind,
                task=task,
                message=status.message,
                actor=actors.current(),
            )
        )
        if (waiter := self.waiters.pop(entry.id, None)) is not None:
            waiter.set()
        return task

    def _change(self, step: Change, batch: Batch, now: float) -> None:
        entry = self.ledger.entry(step.task_id)
        self.set_status(entry, batch, now, step.kind, dict(step.fields))

    def _place(self, step: Place, batch: Batch, now: float) -> None:
        ledger = self.ledger
        entry = ledger.entry(step.task_id)
        record = ledger.registry.get(step.node_id)
        assert record is not None, f"placed on unknown node {step.node_id}"
        status = entry.task.status
        fields = {
            "state": TaskState.SCHEDULED,
            "node_id": record.id,
            "generation": step.generation,
            "attempts": status.attempts + 1,
            "scheduled_at": now,
            "started_at": None,
            "message": step.message,
            "next_attempt_at": None,
        }
        self.set_status(entry, batch, now, "task.state", fields)
        ledger.attach(entry, record, step.generation)
        # The session sends only after the store confirms this batch (see sessions).
        if record.session is not None:
            record.session.assign(entry.id, step.generation)

    def _unplaced(self, step: Unplaced, batch: Batch, now: float) -> None:
        """Becoming unplaceable is a durable change with an event; later refinements
        of the counts ("2 lack memory" -> "3 lack memory") only update the status in
        memory, so a long queue is not rewritten every time a node joins."""
        entry = self.ledger.entry(step.task_id)
        if step.durable:
            self.set_status(entry, batch, now, "task.updated", {"message": step.reason})
        else:
            task = entry.task
            status = evolve(task.status, message=step.reason)
            self.ledger.set_task(entry, Task(task.id, task.spec, status))

    def _end(self, step: EndAttempt, batch: Batch, now: float) -> None:
        entry = self.ledger.entry(step.task_id)
        live = self.ledger.detach(entry)
        if live is None:
            return
        task = entry.task
        record = self.ledger.registry.get(live.node_id)
        if step.tell_worker and record is not None and record.session is not None:
            record.session.stop(entry.id, live.generation, step.reason, task.spec.stop_grace)
        batch.attempts[(entry.id, live.generation)] = Attempt(
            entry.id,
            live.generation,
            live.node_id,
            step.state,
            step.exit_code,
            step.reason,
            task.status.scheduled_at,
            now,
        )

    def _acked(self, step: Acked, batch: Batch, now: float) -> None:
        live = self.ledger.live(step.task_id)
        if live is not None:
            live.acked = True

    def _stop_stale(self, step: StopStale, batch: Batch, now: float) -> None:
        record = self.ledger.registry.get(step.node_id)
        if record is None or record.session is None:
            return
        task = self.ledger.find(step.task_id)
        grace = task.spec.stop_grace if task is not None else DEFAULT_GRACE
        record.session.stop(step.task_id, step.generation, step.reason, grace)

    def _resend(self, step: Resend, batch: Batch, now: float) -> None:
        live = self.ledger.live(step.task_id)
        if live is None:
            return
        record = self.ledger.registry.get(live.node_id)
        if record is not None and record.session is not None:
            live.acked = False
            record.session.assign(step.task_id, live.generation)

    # -- nodes -------------------------------------------------------------------

    def _set_node_status(self, step: SetNodeStatus, batch: Batch, now: float) -> None:
        record = self.ledger.registry.get(step.node_id)
        assert record is not None, f"unknown node {step.node_id}"
        record.status = step.status
        if step.close and record.session is not None:
            record.session.close(step.close)
            record.session = None
        record.refresh()

    def _node_event(self, step: NodeEvent, batch: Batch, now: float) -> None:
        record = self.ledger.registry.get(step.node_id)
        assert record is not None, f"unknown node {step.node_id}"
        self.node_event(record, batch, now, step.kind, step.message)

    def node_event(
        self, record: NodeRecord, batch: Batch, now: float, kind: str, message: str = ""
    ) -> None:
        node = record.view()
        batch.nodes[record.id] = node
        batch.events.append(
            Event(
                self.hub.allocate(), now, kind, node=node, message=message, actor=actors.current()
            )
        )
