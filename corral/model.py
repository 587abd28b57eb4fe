"""Corral's domain types: what the scheduler, the store and the runtimes see.

They are frozen dataclasses, kept apart from the wire messages in ``corral.v1``
(Nomad keeps ``api.Job`` apart from ``structs.Job`` for the same reason): the
wire format can grow fields without every layer noticing, and logic stays
testable without protobuf. ``corral.convert`` translates at the edge.

Times are POSIX seconds (float) and durations are seconds (float): cheap to
store in SQLite and to compare in the scheduler.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Any, NewType

from corral.values import Symbol, value

TaskId = NewType("TaskId", str)
NodeId = NewType("NodeId", str)

RUNTIMES = ("process", "docker", "kubernetes", "http", "fake")


class TaskState(Symbol):
    """Lifecycle of a task; legal moves are the table in ``manager.states``."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"
    LOST = "lost"
    # Never ran: a dependency can no longer meet its condition.
    SKIPPED = "skipped"

    @property
    def final(self) -> bool:
        """A final task never runs again (LOST is not final: the task is rescheduled)."""
        return self in FINAL_STATES

    @property
    def cube(self) -> int:
        """The Cube numbering (Pending=0 .. Failed=4) the compatibility routes speak."""
        return _CUBE_NUMBER[self]

    @classmethod
    def from_cube(cls, number: int) -> TaskState:
        for state, cube in _CUBE_NUMBER.items():
            if cube == number and state in _CUBE_CANONICAL:
                return state
        raise ValueError(f"Cube state must be 0-4, got {number}")


FINAL_STATES = frozenset(
    {TaskState.COMPLETED, TaskState.FAILED, TaskState.STOPPED, TaskState.SKIPPED}
)
ACTIVE_STATES = frozenset({TaskState.SCHEDULED, TaskState.RUNNING})
_CUBE_NUMBER = {
    TaskState.PENDING: 0,
    TaskState.SCHEDULED: 1,
    TaskState.RUNNING: 2,
    TaskState.COMPLETED: 3,
    TaskState.FAILED: 4,
    # Cube has no such states: a user stop ends Completed there, a lost node Failed.
    TaskState.STOPPED: 3,
    TaskState.LOST: 4,
    TaskState.SKIPPED: 4,
}
_CUBE_CANONICAL = frozenset(set(TaskState) - {TaskState.STOPPED, TaskState.LOST, TaskState.SKIPPED})


class DependencyCondition(Symbol):
    SUCCEEDED = "succeeded"  # the dependency ended COMPLETED
    FINISHED = "finished"  # the dependency ended, however


@value
class Dependency:
    """A task this one waits for; only the dependency's final state counts."""

    task_id: str
    condition: DependencyCondition = DependencyCondition.SUCCEEDED


class RestartMode(Symbol):
    NEVER = "never"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"


class Health(Symbol):
    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class NodeStatus(Symbol):
    READY = "ready"
    DRAINING = "draining"
    DOWN = "down"


@value
class Resources:
    """CPU in cores, memory and disk in bytes."""

    cpu: float = 0.0
    memory_bytes: int = 0
    disk_bytes: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu + other.cpu,
            self.memory_bytes + other.memory_bytes,
            self.disk_bytes + other.disk_bytes,
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu - other.cpu,
            self.memory_bytes - other.memory_bytes,
            self.disk_bytes - other.disk_bytes,
        )

    def fits_in(self, free: Resources) -> bool:
        # A small epsilon keeps 0.1 + 0.2 cores from failing to fit in 0.3.
        return (
            self.cpu <= free.cpu + 1e-9
            and self.memory_bytes <= free.memory_bytes
            and self.disk_bytes <= free.disk_bytes
        )


@value
class PortMapping:
    container_port: int
    host_port: int = 0
    protocol: str = "tcp"
    host_ip: str = ""  # where a container's port is published; empty: every address


@value
class RestartPolicy:
    mode: RestartMode = RestartMode.NEVER
    max_attempts: int = 0  # attempts in all, the first included; 0 = unlimited
    backoff: float = 1.0
    max_backoff: float = 60.0

    def delay(self, restart_count: int) -> float:
        """Exponential backoff before restart number ``restart_count + 1``."""
        return float(min(self.max_backoff, self.backoff * (2 ** min(restart_count, 30))))


def lease_stop_after(ttl: float) -> float:
    """The default ``stop_after``: two thirds of the TTL, which tolerates a late
    heartbeat or two and leaves a third of the TTL to stop the task in."""
    return ttl * 2 / 3


@value
class Disconnect:
    """Nomad's ``disconnect`` block: a task's fate while its node is out of touch.

    ``None`` fields take the manager-wide defaults (see ``resolved``).
    """

    # Seconds the worker keeps the task running without renewing its lease.
    stop_after: float | None = None
    # Whether the manager replaces the task once its node is DOWN.
    replace: bool | None = None

    def resolved(self, default: Disconnect) -> Disconnect:
        """Both fields set: the task's own, else the default's (a task that is not
        replaced is not stopped for lack of a lease unless it says so)."""
        replace = default.replace if self.replace is None else self.replace
        replace = True if replace is None else replace
        stop_after = self.stop_after
        if stop_after is None:
            stop_after = default.stop_after if replace else None
        return Disconnect(stop_after=stop_after, replace=replace)


@value
class HttpProbe:
    path: str = "/"
    port: int = 0


@value
class TcpProbe:
    port: int = 0


@value
class ExecProbe:
    command: tuple[str, ...] = ()


Probe = HttpProbe | TcpProbe | ExecProbe


@value
class HealthCheck:
    probe: Probe
    interval: float = 10.0
    timeout: float = 2.0
    failure_threshold: int = 3
    initial_delay: float = 0.0


@value
class HttpCall:
    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    timeout: float = 10.0
    expected_status: tuple[int, ...] = ()

    def accepts(self, status_code: int) -> bool:
        if self.expected_status:
            return status_code in self.expected_status
        return 200 <= status_code < 300


@value
class HttpResult:
    status_code: int = 0
    latency_ms: float = 0.0
    body: bytes = b""
    body_truncated: bool = False
    error: str = ""


@value
class FakeSpec:
    duration: float = 0.0
    exit_code: int = 0
    failure_rate: float = 0.0


@value
class KubernetesSpec:
    namespace: str = ""
    manifests: tuple[Mapping[str, Any], ...] = ()


@value
class TaskSpec:
    """What a user asks for; never changes after submission."""

    name: str
    runtime: str = "process"
    image: str = ""
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str = ""
    resources: Resources = Resources()
    ports: tuple[PortMapping, ...] = ()
    restart_policy: RestartPolicy = RestartPolicy()
    health_check: HealthCheck | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    constraints: Mapping[str, str] = field(default_factory=dict)
    network: str = ""
    http: HttpCall | None = None
    kubernetes: KubernetesSpec | None = None
    fake: FakeSpec | None = None
    stop_grace: float = 10.0
    deadline: float = 0.0
    disconnect: Disconnect = Disconnect()
    depends_on: tuple[Dependency, ...] = ()
    # Write-only: delivered to the task, never shown (corral.convert.spec_to leaves it out).
    secret_env: Mapping[str, str] = field(default_factory=dict)
    namespace: str = ""  # "default" when empty


@value
class TaskStatus:
    state: TaskState = TaskState.PENDING
    node_id: str = ""
    generation: int = 0
    attempts: int = 0
    exit_code: int | None = None
    message: str = ""
    restart_count: int = 0
    created_at: float | None = None
    scheduled_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    updated_at: float | None = None
    ports: tuple[PortMapping, ...] = ()
    health: Health = Health.UNKNOWN
    result: HttpResult | None = None
    next_attempt_at: float | None = None


@value
class Task:
    id: TaskId
    spec: TaskSpec
    status: TaskStatus = TaskStatus()


@value
class Attempt:
    """One placement of a task on a node; the generation fences stale workers."""

    task_id: TaskId
    generation: int
    node_id: str
    state: TaskState = TaskState.SCHEDULED
    exit_code: int | None = None
    message: str = ""
    created_at: float | None = None
    finished_at: float | None = None


@value
class TaskUpdate:
    """A change of one attempt as a worker saw it."""

    task_id: TaskId
    generation: int
    state: TaskState
    exit_code: int | None = None
    message: str = ""
    time: float | None = None
    ports: tuple[PortMapping, ...] = ()
    health: Health = Health.UNKNOWN
    result: HttpResult | None = None


@value
class NodeStats:
    cpu_percent: float = 0.0
    memory_used_bytes: int = 0
    memory_total_bytes: int = 0
    disk_used_bytes: int = 0
    disk_total_bytes: int = 0
    load1: float = 0.0
    load5: float = 0.0
    load15: float = 0.0
    task_count: int = 0
    container_memory_bytes: int = 0
    container_cpu: float = 0.0


@value
class Node:
    id: NodeId
    name: str
    address: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    capacity: Resources = Resources()
    allocated: Resources = Resources()
    stats: NodeStats = NodeStats()
    runtimes: tuple[str, ...] = ()
    status: NodeStatus = NodeStatus.READY
    last_heartbeat: float | None = None
    registered_at: float | None = None
    task_count: int = 0

    @property
    def free(self) -> Resources:
        return self.capacity - self.allocated


@value
class Event:
    index: int
    time: float
    kind: str
    task: Task | None = None
    node: Node | None = None
    message: str = ""
    # Who caused it: "token:<name>", "node:<id>", or "" (the manager itself, or ACLs off).
    actor: str = ""


@value
class AclToken:
    """An ACL token; ``secret`` is set only right after it was made (it is stored hashed)."""

    name: str
    role: str
    namespace: str = ""  # empty: every namespace
    created_at: float | None = None
    secret: str = ""
