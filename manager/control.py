"""What the manager's feature modules (jobs, schedules, environments) build on.

``TaskControl`` is the manager core seen from inside the process: the same
operations as ``ManagerService``, over domain types, with no gRPC in between.
Feature modules are ``Extension``s: each adds one gRPC service and may run
background loops; ``manager.extensions`` lists them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import grpc

from corral.model import Event, Node, Task, TaskId, TaskSpec, TaskState


@dataclass(frozen=True)
class NewTask:
    spec: TaskSpec
    # Client-chosen id (Cube sends its own); a UUID when None.
    id: TaskId | None = None


@dataclass(frozen=True)
class TaskQuery:
    states: frozenset[TaskState] = frozenset()
    node_id: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    page_size: int = 100
    page_token: str = ""


class TaskControl(Protocol):
    async def submit(self, tasks: Sequence[NewTask]) -> list[Task]:
        """Validate, store in one transaction, then schedule. All or nothing."""
        ...

    async def get(self, ref: str) -> Task:
        """By id, else by name (the newest task of that name). NotFound otherwise."""
        ...

    async def list_tasks(self, query: TaskQuery) -> tuple[list[Task], str]:
        """A page of tasks, newest first, and the next page token ('' on the last)."""
        ...

    async def stop(self, ref: str, reason: str = "") -> Task:
        """Stop the task; it ends STOPPED and is not restarted."""
        ...

    async def wait(
        self, ref: str, until: Callable[[Task], bool], timeout: float | None = None
    ) -> Task:
        """Return the task once ``until(task)`` holds (DeadlineExceeded after timeout)."""
        ...

    def watch(self, *, from_index: int = 0, kinds: Sequence[str] = ()) -> AsyncIterator[Event]:
        """Events from ``from_index`` (0 = only new ones), then new ones as they happen."""
        ...

    def logs(
        self, ref: str, *, tail: int = 0, follow: bool = False, generation: int = 0
    ) -> AsyncIterator[bytes]:
        """Output of the task's attempt, proxied from the worker that ran it."""
        ...

    async def nodes(self) -> list[Node]:
        """Every registered node."""
        ...


class Extension(Protocol):
    def register(self, server: grpc.aio.Server) -> str:
        """Add the extension's servicer; return its full service name."""
        ...

    async def start(self) -> None:
        """Start background loops once the server runs."""
        ...

    async def close(self) -> None:
        """Stop loops and release resources."""
        ...
