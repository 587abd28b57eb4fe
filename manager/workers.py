"""The core's worker-facing side: nodes registering, reporting, acknowledging, going silent.

``manager.sessions`` holds one stream per worker and calls ``Workers``:
``hello`` when a worker (re)connects, ``apply_updates`` for each message
of task updates, ``ack`` for assignments received, ``disconnected`` when
the stream ends. The liveness loop declares DOWN a node silent for the TTL.

A Hello is three steps, each its own method: register the node (its record,
and its session replacing any older one), reconcile the attempts it reports
with those placed on it (``manager.reconciling.plan_hello``: keep, stop,
lose), and re-send the assignments it has not acknowledged (``Resend``
steps of the same plan). Every change is a plan carried out by the
``Applier``; each call commits its batch before it returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from corral.model import NodeId, Resources, TaskId, TaskUpdate
from manager import ending, reconciling
from manager.applying import Applier
from manager.config import ManagerConfig
from manager.ledger import Ledger
from manager.nodes import NodeRecord, Outbox
from manager.store import Batch

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HelloInfo:
    node_id: str
    name: str
    address: str
    labels: Mapping[str, str]
    capacity: Resources
    runtimes: tuple[str, ...]
    version: str
    attempts: Sequence[TaskUpdate]


@dataclass(frozen=True, slots=True)
class Session:
    """What ``hello`` grants: the node's record and what to keep and stop."""

    record: NodeRecord
    keep: list[tuple[TaskId, int]]
    stop: list[tuple[TaskId, int]]


class Workers:
    def __init__(
        self,
        ledger: Ledger,
        applier: Applier,
        config: ManagerConfig,
        finish: Callable[..., Awaitable[None]],
    ) -> None:
        self.ledger = ledger
        self.applier = applier
        self.config = config
        # Commits a batch, publishes its events and (``kick=``) asks for a placement pass.
        self._finish = finish

    async def hello(self, info: HelloInfo, outbox: Outbox) -> Session:
        """Register (or re-register) a node and reconcile what it runs."""
        record = self.register(info, outbox)
        now = time.time()
        found = reconciling.plan_hello(self.ledger, record.id, info.attempts, now=now)
        batch = Batch()
        try:
            self.applier.apply(found.plan, batch, now)
            self.applier.node_event(record, batch, now, "node.registered")
            self._updates(record, found.current, batch, now)
        finally:
            # What was applied is committed even if a later plan was refused.
            await self._finish(batch)
        return Session(record, found.keep, found.stop)

    def register(self, info: HelloInfo, outbox: Outbox) -> NodeRecord:
        """The node's record, with ``outbox`` as its one session."""
        node_id = NodeId(info.node_id or str(uuid.uuid4()))
        record = self.ledger.registry.register(
            node_id=node_id,
            name=info.name or node_id,
            address=info.address,
            labels=info.labels,
            capacity=info.capacity,
            runtimes=info.runtimes,
            version=info.version,
        )
        if record.session is not None and record.session is not outbox:
            record.session.close("replaced by a newer session")
        record.session = outbox
        record.refresh()
        return record

    def disconnected(self, record: NodeRecord, outbox: Outbox) -> None:
        """The stream ended; the node stays until its TTL says otherwise."""
        if record.session is outbox:
            record.session = None
            record.refresh()

    def ack(self, record: NodeRecord, refs: Sequence[tuple[TaskId, int]]) -> None:
        record.touch()
        plan = reconciling.plan_ack(self.ledger, record.id, refs)
        self.applier.apply(plan, Batch(), time.time())

    async def apply_updates(self, record: NodeRecord, updates: Sequence[TaskUpdate]) -> None:
        """Task updates from one worker message, applied in one transaction."""
        record.touch()
        batch = Batch()
        ledger = self.ledger
        live, pending = ledger.live_count(), ledger.pending_count()
        try:
            self._updates(record, updates, batch, time.time())
        finally:
            # A pass over the queue only pays when an attempt ended (capacity freed) or a
            # task is pending again; a RUNNING update changes neither.
            freed = ledger.live_count() < live or ledger.pending_count() > pending
            await self._finish(batch, kick=freed)

    def _updates(
        self, record: NodeRecord, updates: Sequence[TaskUpdate], batch: Batch, now: float
    ) -> None:
        # One plan per update: a later update of the same task sees what the earlier did.
        for update in updates:
            plan = reconciling.plan_update(self.ledger, record.id, update, now=now)
            self.applier.apply(plan, batch, now)

    async def liveness_loop(self) -> None:
        period = min(self.config.heartbeat_interval, self.config.ttl) / 4
        while True:
            await asyncio.sleep(period)
            expired = self.ledger.registry.expired(self.config.ttl)
            if expired:
                try:
                    await self.nodes_down(expired)
                except Exception:
                    # The nodes stay expired: the next round (a period later) tries again.
                    log.exception("marking nodes down failed; retrying")

    async def nodes_down(self, records: Sequence[NodeRecord]) -> None:
        batch = Batch()
        now = time.time()
        try:
            for record in records:
                why = f"node {record.name or record.id} missed heartbeats for {self.config.ttl:g}s"
                tasks = len(record.tasks)
                plan = ending.plan_node_down(
                    self.ledger, record.id, why, now=now, default=self.config.disconnect
                )
                self.applier.apply(plan, batch, now)
                log.warning("node down", extra={"node_id": record.id, "tasks": tasks})
        finally:
            await self._finish(batch)
