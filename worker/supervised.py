"""One attempt as the supervisor tracks it, and how it reads as a state and an update.

``end`` is the one place an ``Exit`` becomes the attempt's final state: the
reason it was stopped (an order, failed health, its deadline) wins; else a
clean exit is COMPLETED and anything else FAILED, with the OOM killer or the
exit code as the message when the runtime gave none.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from corral.model import Attempt, Health, NodeId, PortMapping, TaskState, TaskUpdate
from worker.runtimes.base import Assignment, AttemptRef, Exit, Runtime


@dataclass(eq=False)
class SupervisedAttempt:
    assignment: Assignment
    runtime: Runtime | None
    state: TaskState = TaskState.SCHEDULED
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    exit_code: int | None = None
    message: str = ""
    ports: tuple[PortMapping, ...] = ()
    health: Health = Health.UNKNOWN
    # Why it is being stopped: a stop order, failed health, or its deadline.
    stop_state: TaskState | None = None
    stop_message: str = ""
    last: TaskUpdate | None = None
    task: asyncio.Task[None] | None = None

    @property
    def ref(self) -> AttemptRef:
        return self.assignment.ref

    def log_fields(self, node_id: NodeId) -> dict[str, object]:
        """What a log line about this attempt carries (``corral.logformat`` shows them)."""
        ref = self.ref
        return {"task_id": ref.task_id, "generation": ref.generation, "node_id": node_id}

    def span_attributes(self, node_id: NodeId) -> dict[str, str | int]:
        """What a trace span about this attempt carries."""
        return {
            "corral.task_id": self.ref.task_id,
            "corral.generation": self.ref.generation,
            "corral.node_id": node_id,
            "corral.runtime": self.assignment.spec.runtime,
        }

    def end(self, ended: Exit) -> None:
        self.finished_at = time.time()
        self.exit_code = ended.exit_code
        if self.stop_state is not None:
            self.state, self.message = self.stop_state, self.stop_message
        elif ended.ok:
            self.state, self.message = TaskState.COMPLETED, ended.message
        else:
            self.state = TaskState.FAILED
            self.message = "OOM-killed" if ended.oom_killed else ended.message
            if not self.message and ended.exit_code is not None:
                self.message = f"exit code {ended.exit_code}"

    def update(self, *, message: str = "", result: Exit | None = None) -> TaskUpdate:
        """The attempt as the manager hears of it now."""
        return TaskUpdate(
            task_id=self.ref.task_id,
            generation=self.ref.generation,
            state=self.state,
            exit_code=self.exit_code,
            message=self.message or message,
            time=self.finished_at or time.time(),
            ports=self.ports,
            health=self.health,
            result=result.result if result else None,
        )

    def as_attempt(self, node_id: NodeId) -> Attempt:
        return Attempt(
            task_id=self.ref.task_id,
            generation=self.ref.generation,
            node_id=node_id,
            state=self.state,
            exit_code=self.exit_code,
            message=self.message,
            created_at=self.created_at,
            finished_at=self.finished_at,
        )
