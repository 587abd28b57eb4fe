"""Plans: what a planner decided, as data, for ``manager.applying`` to carry out.

As in Nomad's scheduler, deciding and doing are apart. A planner
(``manager.placing``, ``manager.reconciling``, ``manager.ending``) reads a
``View`` of the tasks, their live attempts and the nodes, and returns a
``Plan``: an ordered list of steps (place this task there, end that attempt,
move this task to that state because ..., stop a stale attempt, send an
assignment again). A planner changes nothing. The applier alone changes the
indexes (``manager.ledger``), the store batch and the workers' outboxes, one
step after the other in plan order.

Every state a step moves a task to is checked against ``manager.states``
while the plan is built (``Plan.move``), so a refused move raises before any
step was applied: memory never holds half a plan the store did not get.
Planners are deterministic (a node's tasks are taken in sorted order), so a
plan can be compared step by step in a test.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from corral.model import NodeId, NodeStatus, Task, TaskId, TaskState
from corral.values import value
from manager import states
from manager.nodes import NodeRecord
from manager.scheduling import NodeSlot


@dataclass(slots=True)
class Live:
    """The current attempt of an active task (``acked``: its worker confirmed the assignment)."""

    node_id: NodeId
    generation: int
    acked: bool = False


class View(Protocol):
    """What planners read: tasks, live attempts and nodes, never to be changed through it."""

    def task(self, task_id: TaskId) -> Task:
        """The task (KeyError when unknown)."""
        ...

    def find(self, task_id: TaskId) -> Task | None: ...

    def live(self, task_id: TaskId) -> Live | None: ...

    def pending(self) -> Iterable[TaskId]:
        """Tasks waiting for placement, oldest first."""
        ...

    def is_pending(self, task_id: TaskId) -> bool: ...

    def node(self, node_id: str) -> NodeRecord | None: ...

    def nodes(self) -> Sequence[NodeSlot]:
        """Every node, as the scheduler scans them."""
        ...

    def tasks_on(self, node_id: str) -> Collection[TaskId]:
        """Tasks whose live attempt is on the node."""
        ...


# -- steps -----------------------------------------------------------------


@value
class Place:
    """A new attempt (``generation``) of a PENDING task on a node: SCHEDULED, assigned."""

    task_id: TaskId
    node_id: NodeId
    generation: int
    message: str


@value
class Unplaced:
    """Why the task still waits; ``durable`` when it becomes unplaceable (an event), else
    a refinement of the counts kept in memory only."""

    task_id: TaskId
    reason: str
    durable: bool


@value
class EndAttempt:
    """The task's live attempt ended (``state``, ``reason``); ``tell_worker`` sends a Stop."""

    task_id: TaskId
    state: TaskState
    reason: str
    tell_worker: bool
    exit_code: int | None = None


@value
class Change:
    """New values for the task's status (a new ``state`` among them, or not)."""

    task_id: TaskId
    fields: Mapping[str, Any]
    kind: str = "task.state"


@value
class Acked:
    """The worker holds the attempt: an assignment it acknowledged or reported on."""

    task_id: TaskId


@value
class StopStale:
    """An attempt the node runs but no longer owns (an older generation): stop it."""

    node_id: NodeId
    task_id: TaskId
    generation: int
    reason: str


@value
class Resend:
    """Deliver the live attempt's assignment again (at least once; the worker dedups)."""

    task_id: TaskId


@value
class SetNodeStatus:
    """The node's new status; ``close`` ends its session with that reason."""

    node_id: NodeId
    status: NodeStatus
    close: str = ""


@value
class NodeEvent:
    node_id: NodeId
    kind: str
    message: str = ""


Step = (
    Place | Unplaced | EndAttempt | Change | Acked | StopStale | Resend | SetNodeStatus | NodeEvent
)


@dataclass(slots=True)
class Plan:
    steps: list[Step] = field(default_factory=list)
    # The earliest instant a delayed task becomes placeable (a restart backoff).
    wake_at: float | None = None
    # The state each task will be in once the steps so far are applied.
    _states: dict[TaskId, TaskState] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.steps)

    def state_of(self, task: Task) -> TaskState:
        return self._states.get(task.id, task.status.state)

    def move(self, task: Task, target: TaskState) -> None:
        """Check ``task``'s planned move to ``target`` (raises ``IllegalTransition``)."""
        states.check(task.id, self._states.get(task.id, task.status.state), target)
        self._states[task.id] = target

    def change(self, task: Task, *, kind: str = "task.state", **fields: Any) -> None:
        if "state" in fields:
            self.move(task, fields["state"])
        self.steps.append(Change(task.id, fields, kind))

    def place(self, task: Task, node: NodeSlot, generation: int, message: str) -> None:
        self.move(task, TaskState.SCHEDULED)
        self.steps.append(Place(task.id, node.id, generation, message))

    def wake(self, when: float) -> None:
        if self.wake_at is None or when < self.wake_at:
            self.wake_at = when

    def add(self, step: Step) -> None:
        self.steps.append(step)
