"""The task state machine: one table of legal transitions.

Every change of a task's state in the manager goes through ``check``; a move
the table does not list is a bug somewhere (a stale worker update that slipped
past the generation fence, a race between a stop and a completion), so it is
logged with the task and raised as ``IllegalTransition``, never applied and
never dropped in silence. Planners check each move while they build a plan
(``manager.plans``), so a refused move stops the plan before any of it is
applied.

Design notes (why the table looks like this):

- ``SCHEDULED``/``RUNNING`` → ``PENDING`` is how a task is *re*-placed without
  passing through a final state: a restart by policy (after a failure, or
  after a completion with ``always``) and a move off a draining node. Passing
  through ``FAILED`` first would tell every watcher the task was finished.
- ``LOST`` is not final: its node vanished, so the manager either places the
  task again (``LOST → PENDING``) or gives up once ``max_attempts`` is spent
  (``LOST → FAILED``). A task whose ``disconnect.replace`` is false waits
  LOST for its node instead, and goes on from where the node says it is
  (``LOST → RUNNING | COMPLETED``) when the node comes back.
- ``SKIPPED`` is reached only from ``PENDING``: a task whose dependency can
  no longer meet its condition never ran.
- Final states (``COMPLETED``, ``FAILED``, ``STOPPED``, ``SKIPPED``) have no way out.
- Staying in the same state (a RUNNING task reporting its ports or health) is
  an update, not a transition, and always allowed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from corral.model import TaskState

log = logging.getLogger(__name__)

P, S, R = TaskState.PENDING, TaskState.SCHEDULED, TaskState.RUNNING
C, F, X, L = TaskState.COMPLETED, TaskState.FAILED, TaskState.STOPPED, TaskState.LOST
K = TaskState.SKIPPED

TRANSITIONS: Mapping[TaskState, frozenset[TaskState]] = {
    P: frozenset({S, X, K}),
    S: frozenset({R, C, F, X, L, P}),
    R: frozenset({C, F, X, L, P}),
    L: frozenset({P, F, X, R, C}),
    C: frozenset(),
    F: frozenset(),
    X: frozenset(),
    K: frozenset(),
}


def legal(current: TaskState, target: TaskState) -> bool:
    return current is target or target in TRANSITIONS[current]


class IllegalTransition(RuntimeError):
    """A move the table refuses: a bug in whatever planned it."""

    def __init__(self, task_id: str, current: TaskState, target: TaskState) -> None:
        super().__init__(f"task {task_id}: illegal transition {current.value} -> {target.value}")
        self.task_id, self.current, self.target = task_id, current, target


def check(task_id: str, current: TaskState, target: TaskState) -> None:
    """Return when ``current → target`` is legal; otherwise log the refusal and raise."""
    if current is target or target in TRANSITIONS[current]:
        return
    log.error(
        "illegal task transition refused",
        extra={"task_id": task_id, "from": current.value, "to": target.value},
    )
    raise IllegalTransition(task_id, current, target)
