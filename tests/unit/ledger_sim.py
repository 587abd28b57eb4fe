"""A manager core without I/O: the ledger, the applier and the planners, driven by hand.

The planner tests and the property tests use it as Nomad's scheduler tests
use their harness: a state in memory, operations that plan and apply, and
fake outboxes that record what each worker would be sent. Nothing here
awaits: every operation is planned, applied into a throwaway batch, and the
clock only moves when a test moves it.
"""

from __future__ import annotations

from collections.abc import Sequence

from corral.model import (
    Event,
    NodeId,
    NodeStats,
    Resources,
    Task,
    TaskId,
    TaskSpec,
    TaskState,
    TaskStatus,
    TaskUpdate,
)
from manager import ending, placing, reconciling
from manager.applying import Applier
from manager.catalog import TaskEntry
from manager.config import ManagerConfig
from manager.events import EventHub
from manager.ledger import Ledger
from manager.nodes import NodeRecord
from manager.plans import Plan
from manager.scheduling import Scheduler
from manager.store import Batch
from manager.workers import HelloInfo, Workers


class Outbox:
    """What one worker stream would carry, and what that worker would then run."""

    def __init__(self) -> None:
        self.assigned: list[tuple[TaskId, int]] = []
        self.stopped: list[tuple[TaskId, int, str]] = []
        self.closed = ""

    def assign(self, task_id: TaskId, generation: int) -> None:
        self.assigned.append((task_id, generation))

    def stop(self, task_id: TaskId, generation: int, reason: str, grace: float) -> None:
        self.stopped.append((task_id, generation, reason))

    def stats(self) -> NodeStats:
        return NodeStats()

    def close(self, reason: str) -> None:
        self.closed = reason

    def running(self) -> list[tuple[TaskId, int]]:
        """Assigned and not stopped since (what the worker would report in a Hello)."""
        stopped = {(t, g) for t, g, _ in self.stopped}
        seen: dict[tuple[TaskId, int], None] = {}
        for ref in self.assigned:
            if ref not in stopped:
                seen[ref] = None
        return list(seen)


class NoEvents:
    async def events(
        self, from_index: int, until: int, kinds: Sequence[str] = (), limit: int = 1000
    ) -> list[Event]:
        return []


async def _no_finish(batch: Batch, *, kick: bool = True) -> None:
    return None


def hello_info(node_id: str, capacity: Resources, attempts: Sequence[TaskUpdate] = ()) -> HelloInfo:
    return HelloInfo(
        node_id=node_id,
        name=node_id,
        address="",
        labels={},
        capacity=capacity,
        runtimes=("process",),
        version="test",
        attempts=list(attempts),
    )


class Sim:
    def __init__(self, strategy: str = "binpack", *, now: float = 1000.0) -> None:
        self.ledger = Ledger()
        self.hub = EventHub(NoEvents(), 0)
        self.wakes: list[float] = []
        self.applier = Applier(self.ledger, self.hub, self.wakes.append)
        self.scheduler = Scheduler(strategy)
        self.config = ManagerConfig()
        self.workers = Workers(self.ledger, self.applier, self.config, _no_finish)
        self.outboxes: dict[str, Outbox] = {}
        self.now = now
        self.batch = Batch()
        self._ids = 0

    # -- operations (each plans, then applies) ---------------------------------

    def submit(self, spec: TaskSpec) -> TaskId:
        self._ids += 1
        task_id = TaskId(f"t{self._ids}")
        status = TaskStatus(created_at=self.now, updated_at=self.now)
        entry = TaskEntry(self.ledger.catalog.next_seq, task=Task(task_id, spec, status))
        self.ledger.add(entry)
        self.ledger.enqueue([task_id])
        return task_id

    def place(self, budget: int = 1_000_000) -> placing.Placements:
        pending = list(self.ledger.pending())
        result = placing.plan_placements(
            self.ledger, self.scheduler, pending, now=self.now, budget=budget
        )
        self.apply(result.plan)
        return result

    def connect(
        self, node_id: str, capacity: Resources, attempts: Sequence[TaskUpdate] = ()
    ) -> reconciling.Reconciliation:
        outbox = self.outboxes[node_id] = Outbox()
        record = self.workers.register(hello_info(node_id, capacity, attempts), outbox)
        found = reconciling.plan_hello(self.ledger, record.id, attempts, now=self.now)
        self.apply(found.plan)
        for update in found.current:
            self.update(node_id, update)
        return found

    def disconnect(self, node_id: str) -> None:
        record = self.record(node_id)
        if record.session is not None:
            self.workers.disconnected(record, record.session)

    def update(self, node_id: str, update: TaskUpdate) -> Plan:
        plan = reconciling.plan_update(self.ledger, NodeId(node_id), update, now=self.now)
        self.apply(plan)
        return plan

    def ack(self, node_id: str, refs: Sequence[tuple[TaskId, int]]) -> None:
        self.apply(reconciling.plan_ack(self.ledger, NodeId(node_id), refs))

    def stop(self, task_id: TaskId, why: str = "stopped by user") -> Plan:
        plan = ending.plan_stop(self.ledger, task_id, why, now=self.now)
        self.apply(plan)
        return plan

    def drain(self, node_id: str) -> Plan:
        plan = ending.plan_drain(self.ledger, NodeId(node_id), now=self.now)
        self.apply(plan)
        return plan

    def node_down(self, node_id: str) -> Plan:
        plan = ending.plan_node_down(
            self.ledger, NodeId(node_id), "gone", now=self.now, default=self.config.disconnect
        )
        self.apply(plan)
        return plan

    def apply(self, plan: Plan) -> None:
        self.applier.apply(plan, self.batch, self.now)

    # -- reading ---------------------------------------------------------------

    def task(self, task_id: TaskId) -> Task:
        return self.ledger.task(task_id)

    def state(self, task_id: TaskId) -> TaskState:
        return self.task(task_id).status.state

    def record(self, node_id: str) -> NodeRecord:
        record = self.ledger.node(node_id)
        assert record is not None
        return record
