"""The manager's durable state, behind one protocol: the seam between the core and a database.

The core (``manager.core`` and the applier) depends on ``Store`` and on the
plain data below, never on a database module. A backend implements the
protocol; ``open_store`` picks one. Two implement it: ``manager.store.sqlite``
(SQLite in WAL mode with group commit, the embedded default) and
``manager.stores.postgres`` (PostgreSQL, shared by several managers, every
write fenced by the leader's term). Both take the manager's ``Codec`` and
share the row shapes of ``manager.store.rows``.

What every backend must guarantee (the core relies on each point):

- ``commit(batch)`` returns only once the whole batch is durable, and
  raises if it is not; a failed batch leaves nothing of itself behind (one
  transaction). Batches commit in the order ``commit`` was called: the core
  queues the next batch before the previous one returns, and watchers are
  told in that order.
- ``barrier()`` returns once every batch queued before the call has
  committed or failed (it never raises): a worker is sent an assignment only
  after the batch that made it.
- ``load()`` is called once, before any commit: every task as a ``TaskRow``
  (cheap to read; decoded only when first used, so a restart with 100,000
  tasks does not decode 100,000 specs), every node, the last event index.
- ``events(from, until, kinds, limit)`` replays stored events oldest first,
  ``kinds`` being prefixes (``"task."`` matches ``"task.state"``); an event of
  a task carries the task's spec and its status at that moment.
- ``attempt(task, generation)`` reads an ended attempt.

Stored forms of specs, statuses and nodes are bytes made by a ``Codec``
(``manager.encoding``): backends store bytes and never see wire types.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from corral.model import Attempt, Event, Node, Task, TaskId, TaskSpec, TaskState, TaskStatus


class Codec(Protocol):
    """Bytes for what the store keeps; a stable, versioned format (protobuf), never pickles."""

    def encode_spec(self, spec: TaskSpec) -> bytes: ...

    def decode_spec(self, blob: bytes) -> TaskSpec: ...

    def spec_has_dependencies(self, blob: bytes) -> bool: ...

    def encode_status(self, status: TaskStatus) -> bytes: ...

    def decode_status(self, blob: bytes) -> TaskStatus: ...

    def encode_node(self, node: Node) -> bytes: ...

    def decode_node(self, blob: bytes) -> Node: ...


@dataclass
class Batch:
    """Changes that commit together (or not at all)."""

    new_tasks: list[tuple[int, Task]] = field(default_factory=list)
    # Latest status per task (by seq); a later change in the same batch replaces an earlier one.
    statuses: dict[int, Task] = field(default_factory=dict)
    # Attempts that ended.
    attempts: dict[tuple[str, int], Attempt] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    # Retention (manager.retention): finished tasks to delete with their attempts (seq, id),
    # and the index below which events go.
    forgotten: list[tuple[int, str]] = field(default_factory=list)
    events_below: int = 0

    def __bool__(self) -> bool:
        return bool(
            self.new_tasks
            or self.statuses
            or self.attempts
            or self.nodes
            or self.events
            or self.forgotten
            or self.events_below
        )

    def size(self) -> int:
        """Rows to write (roughly: a status update and its event count two)."""
        return (
            2 * len(self.new_tasks)
            + len(self.statuses)
            + len(self.attempts)
            + len(self.nodes)
            + len(self.events)
        )

    def merge(self, other: Batch) -> None:
        self.new_tasks.extend(other.new_tasks)
        self.statuses.update(other.statuses)
        self.attempts.update(other.attempts)
        self.nodes.update(other.nodes)
        self.events.extend(other.events)
        self.forgotten.extend(other.forgotten)
        self.events_below = max(self.events_below, other.events_below)


@dataclass(slots=True)
class TaskRow:
    """A stored task as read at start-up: the columns the indexes need, the rest still bytes."""

    id: TaskId
    seq: int
    name: str
    state: TaskState
    node_id: str
    generation: int
    spec: bytes
    status: bytes
    codec: Codec

    def has_dependencies(self) -> bool:
        """Without decoding the spec: a restart asks this of every pending task."""
        return self.codec.spec_has_dependencies(self.spec)

    def decode(self) -> Task:
        return Task(
            self.id, self.codec.decode_spec(self.spec), self.codec.decode_status(self.status)
        )


@dataclass
class Snapshot:
    tasks: list[TaskRow]
    nodes: list[Node]
    last_event: int


class Store(Protocol):
    """What the core needs of durable state; see the module docstring for the guarantees."""

    # Told of each committed transaction: seconds it took and rows (``Batch.size``); metrics.
    on_commit: Callable[[float, int], None] | None

    async def load(self) -> Snapshot: ...

    async def commit(self, batch: Batch) -> None: ...

    async def barrier(self) -> None: ...

    async def attempt(self, task_id: str, generation: int) -> Attempt | None: ...

    async def events(
        self, from_index: int, until: int, kinds: Sequence[str] = (), limit: int = 1000
    ) -> list[Event]: ...

    async def close(self) -> None: ...


async def open_store(data_dir: Path, codec: Codec) -> Store:
    """The configured backend, opened (today: SQLite under ``data_dir``)."""
    from manager.store.sqlite import SqliteStore

    return await SqliteStore.open(data_dir, codec)
