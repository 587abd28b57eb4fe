"""The one protocol every runtime implements.

A runtime turns an assignment (task spec + generation) into something running
and reports how it ended. It labels what it starts with the task id and the
generation, so that a restarted worker can ``adopt`` what is still running
instead of starting duplicates. Runtimes know nothing of gRPC or of the
manager: the worker's session drives them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from corral.model import HttpResult, NodeId, PortMapping, TaskId, TaskSpec


@dataclass(frozen=True, slots=True)
class AttemptRef:
    task_id: TaskId
    generation: int

    @property
    def key(self) -> str:
        return f"{self.task_id}.{self.generation}"


@dataclass(frozen=True, slots=True)
class Assignment:
    ref: AttemptRef
    spec: TaskSpec
    node_id: NodeId


@dataclass(frozen=True, slots=True)
class Started:
    """What a runtime reports once the attempt runs."""

    ports: tuple[PortMapping, ...] = ()
    # Where health probes connect: the node address for published ports,
    # the container's own address otherwise.
    host: str = "127.0.0.1"
    message: str = ""


@dataclass(frozen=True, slots=True)
class Exit:
    """How an attempt ended. ``ok`` decides COMPLETED vs FAILED."""

    exit_code: int | None
    message: str = ""
    oom_killed: bool = False
    result: HttpResult | None = None
    # Runtimes whose success is not an exit code (http) set it explicitly.
    succeeded: bool | None = None

    @property
    def ok(self) -> bool:
        if self.succeeded is not None:
            return self.succeeded
        return self.exit_code == 0 and not self.oom_killed


@dataclass(frozen=True, slots=True)
class Adopted:
    """Something found running (or finished) after a worker restart."""

    ref: AttemptRef
    spec: TaskSpec | None
    # None while it still runs; how it ended otherwise.
    exit: Exit | None = None
    started: Started = Started()


class StartError(Exception):
    """The attempt could not start; the message becomes the task's message."""


@runtime_checkable
class Runtime(Protocol):
    name: str

    async def available(self) -> bool:
        """True when the backend answers (engine up, cluster reachable)."""
        ...

    async def start(self, assignment: Assignment) -> Started:
        """Start the attempt; raise StartError when it cannot run."""
        ...

    async def wait(self, ref: AttemptRef) -> Exit:
        """Return when the attempt ends (also for adopted attempts)."""
        ...

    async def stop(self, ref: AttemptRef, grace: float) -> None:
        """Polite stop, then kill after ``grace`` seconds. Idempotent."""
        ...

    def logs(self, ref: AttemptRef, *, tail: int = 0, follow: bool = False) -> AsyncIterator[bytes]:
        """Output of the attempt; kept (bounded) after it ended."""
        ...

    async def adopt(self) -> list[Adopted]:
        """Attempts this runtime started before a worker restart."""
        ...

    async def exec(self, ref: AttemptRef, argv: tuple[str, ...], timeout: float) -> int:
        """Run a command beside (or inside) the attempt, for exec health checks."""
        ...

    async def usage(self) -> tuple[float, int]:
        """(cpu cores, memory bytes) used by what this runtime runs, for node stats."""
        ...

    async def close(self) -> None:
        """Release clients; running attempts keep running."""
        ...


@dataclass(frozen=True)
class Fence:
    """What a runtime needs so that its attempts die with a worker that does not return."""

    # The worker's beacon directory (see worker.fencing).
    beacon: Path
    # Seconds to wait for a worker to come back, then between SIGTERM and SIGKILL.
    grace: Callable[[], float]
    kill_wait: Callable[[], float]


@runtime_checkable
class Fenced(Protocol):
    """A runtime whose attempts outlive the worker by design, and so must be fenced."""

    def fence_with(self, fence: Fence) -> None: ...
