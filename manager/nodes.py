"""Registered nodes: what the manager knows of each worker, kept in memory.

Heartbeats must be cheap (5,000 workers at 1 Hz): one ``touch`` stores a
monotonic timestamp and the session keeps the latest stats message, which is
converted only when someone reads the node. Liveness is therefore not
written to SQLite on every heartbeat; a node's record is persisted when it
registers or changes status, and after a manager restart every known node
gets a fresh TTL to reconnect before it is declared DOWN.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from corral.model import Node, NodeId, NodeStats, NodeStatus, Resources, TaskId
from manager.scheduling import NodeSlot


class Outbox(Protocol):
    """A worker's live session, as the core sees it."""

    def assign(self, task_id: TaskId, generation: int) -> None: ...

    def stop(self, task_id: TaskId, generation: int, reason: str, grace: float) -> None: ...

    def stats(self) -> NodeStats: ...

    def close(self, reason: str) -> None: ...


@dataclass(eq=False)
class NodeRecord(NodeSlot):
    """A node's live record; the scheduler sees it as a ``NodeSlot``."""

    name: str = ""
    address: str = ""
    status: NodeStatus = NodeStatus.READY
    version: str = ""
    registered_at: float | None = None
    last_heartbeat: float | None = None
    # time.monotonic() of the last message; what the TTL is measured against.
    last_seen: float = 0.0
    epoch: int = 0
    session: Outbox | None = None
    # Tasks whose current attempt is placed here.
    tasks: set[TaskId] = field(default_factory=set)

    def touch(self) -> None:
        self.last_seen = time.monotonic()

    def refresh(self) -> None:
        """Recompute ``schedulable`` after a status or session change."""
        self.schedulable = self.status is NodeStatus.READY and self.session is not None

    def view(self) -> Node:
        if self.session is not None:
            self.last_heartbeat = time.time() - (time.monotonic() - self.last_seen)
        return Node(
            id=self.id,
            name=self.name,
            address=self.address,
            labels=dict(self.labels),
            capacity=self.capacity,
            allocated=self.allocated,
            stats=self.session.stats() if self.session is not None else NodeStats(),
            runtimes=self.runtimes,
            status=self.status,
            last_heartbeat=self.last_heartbeat,
            registered_at=self.registered_at,
            task_count=len(self.tasks),
        )


class NodeRegistry:
    def __init__(self) -> None:
        self._records: dict[NodeId, NodeRecord] = {}
        # The list the scheduler scans; rebuilt only when nodes join or leave.
        self._slots: list[NodeRecord] = []

    def __iter__(self) -> Iterator[NodeRecord]:
        return iter(self._records.values())

    def __len__(self) -> int:
        return len(self._records)

    def get(self, node_id: str) -> NodeRecord | None:
        return self._records.get(NodeId(node_id))

    def slots(self) -> Sequence[NodeRecord]:
        return self._slots

    def restore(self, node: Node, *, grace: float = 0.0) -> NodeRecord:
        """A node read from the store: known, not connected, with a fresh TTL plus ``grace``.

        Its worker has to notice the manager is back and redial (with backoff),
        so one TTL alone would declare healthy nodes DOWN after a restart.
        """
        record = NodeRecord(
            id=node.id,
            capacity=node.capacity,
            labels=dict(node.labels),
            runtimes=node.runtimes,
            name=node.name,
            address=node.address,
            status=node.status,
            registered_at=node.registered_at,
            last_heartbeat=node.last_heartbeat,
        )
        record.last_seen = time.monotonic() + grace
        record.refresh()
        self._add(record)
        return record

    def register(
        self,
        *,
        node_id: NodeId,
        name: str,
        address: str,
        labels: Mapping[str, str],
        capacity: Resources,
        runtimes: tuple[str, ...],
        version: str,
    ) -> NodeRecord:
        record = self._records.get(node_id)
        if record is None:
            record = NodeRecord(id=node_id, registered_at=time.time())
            self._add(record)
        record.name, record.address, record.version = name, address, version
        record.labels, record.capacity, record.runtimes = dict(labels), capacity, runtimes
        # A node that reconnects after being DOWN is READY again; a drain sticks.
        if record.status is NodeStatus.DOWN:
            record.status = NodeStatus.READY
        record.epoch = max(record.epoch + 1, int(time.time() * 1000))
        record.touch()
        return record

    def _add(self, record: NodeRecord) -> None:
        self._records[record.id] = record
        self._slots = list(self._records.values())

    def expired(self, ttl: float) -> list[NodeRecord]:
        """Nodes not DOWN whose last message is older than ``ttl`` seconds."""
        deadline = time.monotonic() - ttl
        live = (r for r in self._records.values() if r.status is not NodeStatus.DOWN)
        return [r for r in live if r.last_seen < deadline]
