"""The manager's in-memory state of tasks, attempts and nodes, in one class that keeps it whole.

Four indexes describe the same facts and must agree: the ``Catalog`` of
tasks (by id, name, state and submission order), the pending queue, the live
attempt of each active task, and each node's set of tasks and allocated
resources. ``Ledger`` is the only code that changes them, and each change
keeps them in step:

- a task is in the pending queue exactly when it is PENDING (once its
  submission is committed: ``add`` then ``enqueue``);
- a SCHEDULED or RUNNING task has a live attempt, on the node and with the
  generation its status names, and that node lists it; so may a LOST one
  (waiting for its node: ``disconnect.replace`` false); no other task has one;
- a node's allocation is the sum of the resources of the tasks it lists;
- a status never moves to a state ``manager.states`` refuses.

``check`` verifies all of it (the property tests call it after every step).
The ledger is also the ``View`` the planners read.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from corral.model import ACTIVE_STATES, Node, Resources, Task, TaskId, TaskState
from manager import states
from manager.catalog import Catalog, TaskEntry
from manager.nodes import NodeRecord, NodeRegistry
from manager.plans import Live
from manager.scheduling import NodeSlot

_NONE: frozenset[TaskId] = frozenset()
_MAY_BE_LIVE = ACTIVE_STATES | {TaskState.LOST}


class Ledger:
    def __init__(self) -> None:
        self.catalog = Catalog()
        self.registry = NodeRegistry()
        self._pending: dict[TaskId, None] = {}
        self._live: dict[TaskId, Live] = {}

    # -- the View --------------------------------------------------------

    def task(self, task_id: TaskId) -> Task:
        return self.catalog.by_id[task_id].task

    def find(self, task_id: TaskId) -> Task | None:
        entry = self.catalog.by_id.get(task_id)
        return entry.task if entry is not None else None

    def live(self, task_id: TaskId) -> Live | None:
        return self._live.get(task_id)

    def pending(self) -> Iterable[TaskId]:
        return self._pending

    def is_pending(self, task_id: TaskId) -> bool:
        return task_id in self._pending

    def node(self, node_id: str) -> NodeRecord | None:
        return self.registry.get(node_id)

    def nodes(self) -> Sequence[NodeSlot]:
        return self.registry.slots()

    def tasks_on(self, node_id: str) -> Collection[TaskId]:
        record = self.registry.get(node_id)
        return record.tasks if record is not None else _NONE

    # -- reading for the core ----------------------------------------------

    def entry(self, task_id: TaskId) -> TaskEntry:
        return self.catalog.by_id[task_id]

    def pending_count(self) -> int:
        return len(self._pending)

    def live_count(self) -> int:
        return len(self._live)

    # -- changes -------------------------------------------------------------

    def add(self, entry: TaskEntry) -> None:
        """A new (or restored) task; a PENDING one waits for ``enqueue``."""
        self.catalog.add(entry)

    def enqueue(self, task_ids: Iterable[TaskId]) -> None:
        """Queue committed PENDING tasks for placement (a task stopped meanwhile is not)."""
        by_id = self.catalog.by_id
        for task_id in task_ids:
            entry = by_id.get(task_id)
            if entry is not None and entry.state is TaskState.PENDING:
                self._pending[task_id] = None

    def forget(self, entries: Collection[TaskEntry]) -> None:
        """Finished tasks gone for good (retention): they are in no queue, only the catalog."""
        self.catalog.forget(entries)

    def discard(self, entry: TaskEntry) -> None:
        """Undo ``add`` (a submission whose commit failed)."""
        self._pending.pop(entry.id, None)
        self.catalog.discard(entry)

    def set_task(self, entry: TaskEntry, task: Task) -> None:
        """The task's new status; the pending queue follows its state."""
        before, after = entry.state, task.status.state
        if after is not before:
            states.check(entry.id, before, after)
        self.catalog.update(entry, task)
        if after is TaskState.PENDING:
            self._pending[entry.id] = None
        elif before is TaskState.PENDING:
            self._pending.pop(entry.id, None)

    def attach(self, entry: TaskEntry, record: NodeRecord, generation: int) -> Live:
        """The task's new live attempt on ``record``: listed there, its resources allocated."""
        live = self._live[entry.id] = Live(record.id, generation)
        record.tasks.add(entry.id)
        record.allocate(entry.task.spec.resources)
        return live

    def detach(self, entry: TaskEntry) -> Live | None:
        """Forget the task's live attempt and free what it allocated; None if it had none."""
        live = self._live.pop(entry.id, None)
        if live is None:
            return None
        record = self.registry.get(live.node_id)
        if record is not None:
            record.tasks.discard(entry.id)
            record.release(entry.task.spec.resources)
        return live

    def restore_node(self, node: Node, *, grace: float) -> NodeRecord:
        return self.registry.restore(node, grace=grace)

    def restore_attempt(self, entry: TaskEntry, record: NodeRecord, generation: int) -> None:
        """A live attempt read from the store: acknowledged (the worker had it before)."""
        self.attach(entry, record, generation).acked = True

    # -- invariants ------------------------------------------------------------

    def check(self) -> list[str]:
        """Every way the indexes disagree (empty when they agree); for tests and debugging."""
        problems: list[str] = []
        by_id = self.catalog.by_id
        for task_id in self._pending:
            entry = by_id.get(task_id)
            if entry is None or entry.state is not TaskState.PENDING:
                problems.append(f"{task_id} queued but {entry and entry.state}")
        for task_id, entry in by_id.items():
            live = self._live.get(task_id)
            status = entry.task.status
            if entry.state is not status.state or entry.node_id != status.node_id:
                problems.append(f"{task_id}: catalog columns disagree with its status")
            if entry.state is TaskState.PENDING and task_id not in self._pending:
                problems.append(f"{task_id} PENDING but not queued")
            if entry.state in ACTIVE_STATES and live is None:
                problems.append(f"{task_id} is {entry.state.value} with no live attempt")
            if live is not None and entry.state not in _MAY_BE_LIVE:
                problems.append(f"{task_id} is {entry.state.value} with live attempt {live}")
            if live is not None and (live.node_id, live.generation) != (
                status.node_id,
                status.generation,
            ):
                problems.append(f"{task_id}: live {live} but status {status.node_id}")
        for record in self.registry:
            listed = {t for t, live in self._live.items() if live.node_id == record.id}
            if listed != record.tasks:
                problems.append(f"node {record.id} lists {sorted(record.tasks)}, not {listed}")
            total = Resources()
            for task_id in record.tasks:
                total = total + by_id[task_id].task.spec.resources
            if not _close(total, record.allocated) or record.task_count != len(record.tasks):
                problems.append(f"node {record.id} allocated {record.allocated}, tasks {total}")
        for task_id, live in self._live.items():
            if self.registry.get(live.node_id) is None:
                problems.append(f"{task_id} live on unknown node {live.node_id}")
        return problems


def _close(a: Resources, b: Resources) -> bool:
    return (
        abs(a.cpu - b.cpu) < 1e-6
        and a.memory_bytes == b.memory_bytes
        and a.disk_bytes == b.disk_bytes
    )
