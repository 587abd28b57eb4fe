"""The manager core: the one place where tasks are submitted, placed, changed and stopped.

``TaskManager`` implements ``manager.control.TaskControl`` for the servicer
and the feature modules, and the worker-facing side (``manager.sessions``
calls ``hello``, ``apply_updates``, ``ack``, ``disconnected``).

Every decision is planned, then applied. Planners (``manager.placing`` for
placement passes, ``manager.reconciling`` for what workers report,
``manager.ending`` for stops, drains and lost nodes) read the ``Ledger`` and
return a ``Plan``; the ``Applier`` carries it out into the ledger, a store
``Batch`` (one event per change) and the workers' outboxes. The batch is
committed (group commit, ``manager.store``) before anyone is answered or any
worker is told: a worker never runs an assignment the store could forget,
and watchers only see durable events. Placement runs in passes
(``manager.passes``) woken whenever capacity or pending work may have
changed; a failed pass is logged and retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Protocol

from corral.errors import DeadlineExceeded, FailedPrecondition, NotFound, ValidationError
from corral.model import ACTIVE_STATES, Event, Node, NodeStatus, Task, TaskId, TaskSpec, TaskState
from manager import actors, depending, ending, queries
from manager.applying import Applier
from manager.catalog import MIN_PREFIX, TaskEntry
from manager.config import ManagerConfig
from manager.control import NewTask, TaskQuery
from manager.depending import Dependencies
from manager.events import EventHub
from manager.ids import new_task_ids
from manager.ledger import Ledger
from manager.nodes import NodeRecord
from manager.passes import PlacementPasses
from manager.plans import Plan
from manager.retention import Collector
from manager.scheduling import Scheduler
from manager.store import Batch, Codec, Snapshot, Store, open_store
from manager.workers import Workers

log = logging.getLogger(__name__)


class LogSource(Protocol):
    def __call__(
        self, address: str, task_id: str, generation: int, *, tail: int, follow: bool
    ) -> AsyncIterator[bytes]: ...


class TaskManager:
    def __init__(
        self, store: Store, config: ManagerConfig, *, log_source: LogSource, last_event: int = 0
    ) -> None:
        self.store = store
        self.config = config
        self.ledger = Ledger()
        self.hub = EventHub(store, last_event)
        self.applier = Applier(self.ledger, self.hub, self._wake_at)
        self.scheduler = Scheduler(config.strategy)
        self._log_source = log_source
        self._loops: list[asyncio.Task[None]] = []
        # The worker-facing side: sessions call ``core.workers.hello`` and the rest.
        self.workers = Workers(self.ledger, self.applier, config, self._finish)
        # Tasks that wait for others: held out of placement until decided.
        self.dependencies = Dependencies()
        self.passes = PlacementPasses(
            self.ledger,
            self.scheduler,
            self.applier,
            held=self.dependencies.held,
            commit=self._commit,
        )

    @classmethod
    async def open(
        cls,
        config: ManagerConfig,
        *,
        log_source: LogSource,
        codec: Codec,
        store: Store | None = None,
    ) -> TaskManager:
        """Load the state from ``store`` (default: the backend ``open_store`` picks)."""
        store = store or await open_store(config.data_dir, codec)
        try:
            snapshot = await store.load()
            core = cls(store, config, log_source=log_source, last_event=snapshot.last_event)
            await core._restore(snapshot)
        except BaseException:
            await store.close()
            raise
        return core

    async def _restore(self, snapshot: Snapshot) -> None:
        ledger = self.ledger
        for row in snapshot.tasks:
            ledger.add(TaskEntry(row.seq, row=row))
        pending = [row.id for row in snapshot.tasks if row.state is TaskState.PENDING]
        # Rows stay bytes until something reads them; only a task with dependencies is
        # decoded here (decoding all 100,000 pending tasks was most of a restart).
        held = self.dependencies.hold(
            ledger.task(row.id)
            for row in snapshot.tasks
            if row.state is TaskState.PENDING and row.has_dependencies()
        )
        ledger.enqueue(pending)
        for node in snapshot.nodes:
            ledger.restore_node(node, grace=self.config.ttl)
        now = time.time()
        plan = Plan()
        for row in snapshot.tasks:
            if row.state in ACTIVE_STATES and (record := ledger.node(row.node_id)) is not None:
                ledger.restore_attempt(ledger.entry(row.id), record, row.generation)
            elif row.state in ACTIVE_STATES or row.state is TaskState.LOST:
                # LOST when the manager went down, or placed on a node never stored.
                why = "node lost before the manager restarted"
                ending.after_loss(plan, ledger.task(row.id), why, now=now)
        await self._run(plan, now)
        await self._run(self.dependencies.plan_held(ledger, held, now=now), now)

    async def start(self) -> None:
        self.collector = Collector(
            self,
            retain_finished=self.config.retain_finished,
            retain_events=self.config.retain_events,
            every=self.config.gc_every,
        )
        self._loops = [
            asyncio.create_task(self.passes.loop(), name="corral-placement"),
            asyncio.create_task(self.workers.liveness_loop(), name="corral-liveness"),
            asyncio.create_task(self.collector.run(), name="corral-retention"),
        ]
        self.kick()

    async def close(self) -> None:
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self.passes.close()
        for record in self.ledger.registry:
            if record.session is not None:
                record.session.close("manager stopping")
        await self.store.close()

    # -- applying plans ----------------------------------------------------

    async def _run(self, plan: Plan, now: float) -> None:
        """Apply ``plan``, commit, and ask for a placement pass."""
        batch = Batch()
        self.applier.apply(plan, batch, now)
        await self._finish(batch)

    async def _commit(self, batch: Batch) -> None:
        await self.store.commit(batch)
        self.hub.publish(batch.events)

    async def _finish(self, batch: Batch, *, kick: bool = True) -> None:
        await self._commit(batch)
        ended = depending.ended_in(event.task for event in batch.events)
        if ended and len(self.dependencies.gate):
            # Tasks that ended decide their held dependents (a SKIPPED one, its own in turn).
            now = time.time()
            plan = self.dependencies.plan_ended(self.ledger, ended, now=now)
            if plan:
                await self._run(plan, now)
                return
        if kick:
            self.kick()

    # -- retention (manager.retention) ------------------------------------

    def entries(self) -> Iterable[TaskEntry]:
        return self.ledger.catalog.by_id.values()

    def newest_event(self) -> int:
        return self.hub.published

    async def forget(self, tasks: Sequence[TaskEntry], *, events_below: int) -> None:
        """Delete finished tasks (and attempts) and old events: store first, then memory."""
        batch = Batch(forgotten=[(e.seq, e.id) for e in tasks], events_below=events_below)
        await self._commit(batch)
        self.ledger.forget(tasks)

    def kick(self) -> None:
        """Ask for a placement pass over the whole queue soon (capacity may have changed)."""
        self.passes.kick()

    # -- TaskControl: submit, read, stop ----------------------------------

    async def submit(self, tasks: Sequence[NewTask], *, prefix: str = "tasks") -> list[Task]:
        """Validate all, store all in one transaction, then schedule. All or nothing.

        ``prefix`` names the request field in errors: ``tasks[3].spec.command``
        for a batch, ``spec.command`` for a single task (``prefix=""``).
        """
        repeats = queries.check_submission(
            self.ledger.catalog, tasks, prefix, self._check_disconnect
        )
        self.dependencies.check(self.ledger.catalog, tasks, prefix)
        if len(repeats) == len(tasks):
            return list(repeats.values())
        now = time.time()
        batch = Batch()
        entries = []
        fresh_ids = iter(new_task_ids(sum(1 for new in tasks if not new.id)))
        for i, new in enumerate(tasks):
            if i in repeats:
                continue
            task_id = new.id or next(fresh_ids)
            task = queries.new_task(task_id, new.spec, now)
            entry = TaskEntry(self.ledger.catalog.next_seq, task=task)
            self.ledger.add(entry)
            entries.append(entry)
            batch.new_tasks.append((entry.seq, task))
            batch.events.append(
                Event(self.hub.allocate(), now, "task.submitted", task=task, actor=actors.current())
            )
        # Held before anything commits: no placement pass may take a task that waits.
        held = self.dependencies.hold(entry.task for entry in entries)
        try:
            await self._commit(batch)
        except BaseException:
            self.dependencies.release(held)
            for entry in reversed(entries):
                self.ledger.discard(entry)
            raise
        self.ledger.enqueue(entry.id for entry in entries)
        if held:
            await self._run(self.dependencies.plan_held(self.ledger, held, now=now), now)
        self.passes.kick_new(entry.id for entry in entries)
        made = iter(entry.task for entry in entries)
        return [repeats[i] if i in repeats else next(made) for i in range(len(tasks))]

    def _entry(self, ref: str) -> TaskEntry:
        entry = self.ledger.catalog.resolve(ref)
        if entry is None:
            raise NotFound(f"task {ref!r} not found")
        return entry

    async def get(self, ref: str) -> Task:
        return self._entry(ref).task

    async def list_tasks(self, query: TaskQuery) -> tuple[list[Task], str]:
        return queries.page(self.ledger.catalog, query)

    async def stop(self, ref: str, reason: str = "") -> Task:
        entry = self._entry(ref)
        if entry.state.final:
            return entry.task
        now = time.time()
        why = reason or "stopped by user"
        await self._run(ending.plan_stop(self.ledger, entry.id, why, now=now), now)
        return entry.task

    async def wait(
        self, ref: str, until: Callable[[Task], bool], timeout: float | None = None
    ) -> Task:
        entry = self._entry(ref)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            task = entry.task
            if until(task):
                return task
            event = self.applier.waiters.setdefault(entry.id, asyncio.Event())
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise DeadlineExceeded(f"task {ref!r} did not reach the condition in {timeout}s")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await event.wait()

    def watch(self, *, from_index: int = 0, kinds: Sequence[str] = ()) -> AsyncIterator[Event]:
        return self.hub.watch(from_index=from_index, kinds=kinds)

    @property
    def last_event(self) -> int:
        """The index of the last published event (a watch from the next misses nothing)."""
        return self.hub.published

    async def logs(
        self, ref: str, *, tail: int = 0, follow: bool = False, generation: int = 0
    ) -> AsyncIterator[bytes]:
        task = self._entry(ref).task
        generation = generation or task.status.generation
        if generation == 0:
            raise FailedPrecondition(f"task {ref!r} has not been placed yet: no logs")
        node_id = task.status.node_id
        if generation != task.status.generation:
            attempt = await self.store.attempt(task.id, generation)
            if attempt is None:
                raise NotFound(f"task {ref!r} has no attempt {generation}")
            node_id = attempt.node_id
        record = self.ledger.node(node_id)
        if record is None or not record.address:
            raise FailedPrecondition(f"node {node_id!r} that ran the task has no known address")
        async for chunk in self._log_source(
            record.address, task.id, generation, tail=tail, follow=follow
        ):
            yield chunk

    async def nodes(self) -> list[Node]:
        return [record.view() for record in self.ledger.registry]

    def _record(self, ref: str) -> NodeRecord:
        """A node by id, else by name."""
        registry = self.ledger.registry
        record = registry.get(ref) or next((r for r in registry if r.name == ref), None)
        if record is None and len(ref) >= MIN_PREFIX:
            matches = [r for r in registry if r.id.startswith(ref)]
            if len(matches) > 1:
                ids = ", ".join(sorted(r.id for r in matches))
                raise ValidationError("id", f"{ref!r} is ambiguous: it starts node ids {ids}")
            record = matches[0] if matches else None
        if record is None:
            raise NotFound(f"node {ref!r} not found")
        return record

    async def node(self, ref: str) -> Node:
        return self._record(ref).view()

    async def drain(self, ref: str) -> Node:
        """No new placements on the node; its tasks are stopped there and placed elsewhere."""
        record = self._record(ref)
        if record.status is NodeStatus.DOWN:
            raise FailedPrecondition(f"node {ref!r} is down")
        now = time.time()
        await self._run(ending.plan_drain(self.ledger, record.id, now=now), now)
        return record.view()

    async def undrain(self, ref: str) -> Node:
        """A draining node takes new placements again (a no-op on a READY one)."""
        record = self._record(ref)
        if record.status is not NodeStatus.DRAINING:
            if record.status is NodeStatus.DOWN:
                raise FailedPrecondition(f"node {ref!r} is down, not draining")
            return record.view()
        now = time.time()
        await self._run(ending.plan_undrain(self.ledger, record.id), now)
        return record.view()

    def _check_disconnect(self, spec: TaskSpec, at: str) -> None:
        """A replaced task must stop on its node before the TTL lets a replacement start."""
        policy = spec.disconnect.resolved(self.config.disconnect)
        if (
            policy.replace
            and policy.stop_after is not None
            and policy.stop_after >= self.config.ttl
        ):
            raise ValidationError(
                f"{at}spec.disconnect.stop_after",
                f"must be less than the manager's TTL ({self.config.ttl:g}s) when replaced",
            )

    def spec_of(self, task_id: TaskId) -> TaskSpec:
        return self.ledger.task(task_id).spec

    # -- placement ---------------------------------------------------------

    def _wake_at(self, when: float) -> None:
        self.passes.wake_at(when)

    async def settled(self) -> None:
        """Return when no placement pass is running (see ``PlacementPasses.settled``)."""
        await self.passes.settled()

    async def place_pending(self) -> bool:
        """One placement pass now; True when pending work is left for another pass."""
        return await self.passes.place_pending()
