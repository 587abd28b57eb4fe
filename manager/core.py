"""The manager core: the one place where tasks are submitted, placed, changed and stopped.

``TaskManager`` implements ``manager.control.TaskControl`` for the servicer
and the feature modules, and the worker-facing side (``manager.sessions``
calls ``hello``, ``apply_updates``, ``ack``, ``disconnected``).

Everything in memory is changed synchronously on the event loop, collected
in a ``store.Batch`` with one event per change, then committed (group
commit) before anyone is answered or any worker is told: a worker never
runs an assignment the store could forget, and watchers only see durable
events. Placement runs in passes (``manager.placing``) woken whenever
capacity or pending work may have changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from dataclasses import fields as dataclass_fields
from typing import Any, Protocol

from corral.errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    NotFound,
    ValidationError,
)
from corral.model import (
    ACTIVE_STATES,
    Attempt,
    Event,
    Health,
    Node,
    NodeId,
    NodeStatus,
    Resources,
    Task,
    TaskId,
    TaskSpec,
    TaskState,
    TaskStatus,
    TaskUpdate,
)
from corral.validation import check_task_id, validate_task_spec
from manager import restarting, states
from manager.catalog import MIN_PREFIX, Catalog, TaskEntry
from manager.config import ManagerConfig
from manager.control import NewTask, TaskQuery
from manager.events import EventHub
from manager.nodes import NodeRecord, NodeRegistry, Outbox
from manager.scheduling import Scheduler, explain
from manager.store import Batch, Store

log = logging.getLogger(__name__)

MAX_BATCH = 10_000
# Placements per pass: bounds how long one pass holds the event loop.
PASS_LIMIT = 10_000
# Tasks examined between two commits of a pass (each commit yields the event loop).
CHUNK = 2_000
NO_FIT = "no node fits"
DEFAULT_GRACE = 10.0


_STATUS_FIELDS = tuple(f.name for f in dataclass_fields(TaskStatus))


def _evolve(status: TaskStatus, **changes: Any) -> TaskStatus:
    """``dataclasses.replace`` for the hottest path: a third of its cost per change."""
    values = {name: getattr(status, name) for name in _STATUS_FIELDS}
    values.update(changes)
    return TaskStatus(**values)


class LogSource(Protocol):
    def __call__(
        self, address: str, task_id: str, generation: int, *, tail: int, follow: bool
    ) -> AsyncIterator[bytes]: ...


@dataclass(slots=True)
class Live:
    """The current attempt of an active task."""

    node_id: NodeId
    generation: int
    acked: bool = False


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


class TaskManager:
    def __init__(self, store: Store, config: ManagerConfig, *, log_source: LogSource) -> None:
        self.store = store
        self.config = config
        self.catalog = Catalog()
        self.registry = NodeRegistry()
        self.hub = EventHub(store, 0)
        self.scheduler = Scheduler(config.strategy)
        self.pending: dict[TaskId, None] = {}
        self.live: dict[TaskId, Live] = {}
        self._log_source = log_source
        self._waiters: dict[TaskId, asyncio.Event] = {}
        self._kick = asyncio.Event()
        self._settled = asyncio.Event()
        self._settled.set()
        self._loops: list[asyncio.Task[None]] = []
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    async def open(cls, config: ManagerConfig, *, log_source: LogSource) -> TaskManager:
        store = await Store.open(config.data_dir)
        core = cls(store, config, log_source=log_source)
        await core._restore()
        return core

    async def _restore(self) -> None:
        snapshot = await self.store.load()
        self.hub = EventHub(self.store, snapshot.last_event)
        for row in snapshot.tasks:
            entry = TaskEntry(row.seq, row=row)
            self.catalog.add(entry)
            if entry.state is TaskState.PENDING:
                self.pending[entry.id] = None
        for node in snapshot.nodes:
            self.registry.restore(node, grace=self.config.ttl)
        for row in snapshot.tasks:
            record = self.registry.get(row.node_id)
            if row.state not in ACTIVE_STATES or record is None:
                continue
            entry = self.catalog.by_id[row.id]
            self.live[entry.id] = Live(record.id, row.generation, acked=True)
            record.tasks.add(entry.id)
            record.allocate(entry.task.spec.resources)
        # A task LOST when the manager went down is rescheduled now.
        batch = Batch()
        for entry in list(self.catalog.active()):
            if entry.state is TaskState.LOST:
                self._after_loss(entry, batch, "node lost before the manager restarted")
        await self._commit(batch)

    async def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._placement_loop(), name="corral-placement"),
            asyncio.create_task(self._liveness_loop(), name="corral-liveness"),
        ]
        self.kick()

    async def close(self) -> None:
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        if self._timer is not None:
            self._timer.cancel()
        for record in self.registry:
            if record.session is not None:
                record.session.close("manager stopping")
        await self.store.close()

    # -- the change plumbing ---------------------------------------------

    def _change(
        self, entry: TaskEntry, batch: Batch, kind: str = "task.state", **fields: Any
    ) -> Task | None:
        """Apply ``fields`` to the task's status; None when the state machine refuses."""
        old = entry.task
        now = time.time()
        status = _evolve(old.status, updated_at=now, **fields)
        if not states.move(entry.id, old.status.state, status.state):
            return None
        task = Task(old.id, old.spec, status)
        self.catalog.update(entry, task)
        batch.statuses[entry.seq] = task
        if status.state is old.status.state and kind == "task.state":
            kind = "task.updated"
        batch.events.append(
            Event(self.hub.allocate(), now, kind, task=task, message=status.message)
        )
        if (waiter := self._waiters.pop(entry.id, None)) is not None:
            waiter.set()
        return task

    def _node_event(self, record: NodeRecord, batch: Batch, kind: str, message: str = "") -> None:
        node = record.view()
        batch.nodes[record.id] = node
        batch.events.append(
            Event(self.hub.allocate(), time.time(), kind, node=node, message=message)
        )

    async def _commit(self, batch: Batch) -> None:
        await self.store.commit(batch)
        self.hub.publish(batch.events)

    def kick(self) -> None:
        """Ask for a placement pass soon (capacity or pending work changed)."""
        self._kick.set()

    # -- TaskControl: submit, read, stop ----------------------------------

    async def submit(self, tasks: Sequence[NewTask], *, prefix: str = "tasks") -> list[Task]:
        """Validate all, store all in one transaction, then schedule. All or nothing.

        ``prefix`` names the request field in errors: ``tasks[3].spec.command``
        for a batch, ``spec.command`` for a single task (``prefix=""``).
        """
        if len(tasks) > MAX_BATCH:
            raise ValidationError(prefix or "tasks", f"at most {MAX_BATCH} tasks per call")
        if prefix and not tasks:
            raise ValidationError(prefix, "must not be empty")
        names: set[str] = set()
        ids: set[str] = set()
        for i, new in enumerate(tasks):
            at = f"{prefix}[{i}]." if prefix else ""
            validate_task_spec(new.spec, f"{at}spec")
            self._check_disconnect(new.spec, f"{at}spec.disconnect.stop_after")
            if new.id is not None:
                check_task_id(new.id, f"{at}id")
                if new.id in self.catalog.by_id or new.id in ids:
                    raise AlreadyExists(f"{at}id: task {new.id} already exists")
                ids.add(new.id)
            name = new.spec.name
            if name in self.catalog.active_names or name in names:
                raise AlreadyExists(f"{at}spec.name: a task named {name!r} is not finished yet")
            names.add(name)
        now = time.time()
        batch = Batch()
        entries = []
        for new in tasks:
            task_id = new.id or TaskId(str(uuid.uuid4()))
            status = TaskStatus(created_at=now, updated_at=now, message="waiting for placement")
            task = Task(task_id, new.spec, status)
            entry = TaskEntry(self.catalog.next_seq, task=task)
            self.catalog.add(entry)
            entries.append(entry)
            batch.new_tasks.append((entry.seq, task))
            batch.events.append(Event(self.hub.allocate(), now, "task.submitted", task=task))
        try:
            await self._commit(batch)
        except BaseException:
            for entry in reversed(entries):
                self.catalog.discard(entry)
            raise
        for entry in entries:
            self.pending[entry.id] = None
        self.kick()
        return [entry.task for entry in entries]

    def _entry(self, ref: str) -> TaskEntry:
        entry = self.catalog.resolve(ref)
        if entry is None:
            raise NotFound(f"task {ref!r} not found")
        return entry

    async def get(self, ref: str) -> Task:
        return self._entry(ref).task

    async def list_tasks(self, query: TaskQuery) -> tuple[list[Task], str]:
        size = query.page_size or 100
        if not 1 <= size <= 1000:
            raise ValidationError("page_size", "must be between 1 and 1000")
        below: int | None = None
        if query.page_token:
            if not query.page_token.isdigit():
                raise ValidationError("page_token", "is not a token this server issued")
            below = int(query.page_token)
        page: list[TaskEntry] = []
        entries = (
            self.catalog.newest_in(query.states, below)
            if query.states
            else self.catalog.newest_first(below)
        )
        for entry in entries:
            task = entry.task if (query.node_id or query.labels) else None
            if task is not None and query.node_id and task.status.node_id != query.node_id:
                continue
            if task is not None and any(
                task.spec.labels.get(k) != v for k, v in query.labels.items()
            ):
                continue
            if len(page) == size:
                return [e.task for e in page], str(page[-1].seq)
            page.append(entry)
        return [e.task for e in page], ""

    async def stop(self, ref: str, reason: str = "") -> Task:
        entry = self._entry(ref)
        if entry.state.final:
            return entry.task
        batch = Batch()
        why = reason or "stopped by user"
        self._end_attempt(entry, batch, TaskState.STOPPED, why, tell_worker=True)
        self.pending.pop(entry.id, None)
        self._change(
            entry,
            batch,
            state=TaskState.STOPPED,
            message=why,
            finished_at=time.time(),
            next_attempt_at=None,
        )
        await self._commit(batch)
        self.kick()
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
            event = self._waiters.setdefault(entry.id, asyncio.Event())
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
        record = self.registry.get(node_id)
        if record is None or not record.address:
            raise FailedPrecondition(f"node {node_id!r} that ran the task has no known address")
        async for chunk in self._log_source(
            record.address, task.id, generation, tail=tail, follow=follow
        ):
            yield chunk

    async def nodes(self) -> list[Node]:
        return [record.view() for record in self.registry]

    def _record(self, ref: str) -> NodeRecord:
        """A node by id, else by name."""
        record = self.registry.get(ref) or next((r for r in self.registry if r.name == ref), None)
        if record is None and len(ref) >= MIN_PREFIX:
            matches = [r for r in self.registry if r.id.startswith(ref)]
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
        batch = Batch()
        record.status = NodeStatus.DRAINING
        record.refresh()
        for task_id in list(record.tasks):
            entry = self.catalog.by_id[task_id]
            why = f"moved off draining node {record.name or record.id}"
            self._end_attempt(entry, batch, TaskState.STOPPED, why, tell_worker=True)
            self._reschedule(entry, batch, why, delay=0.0, count_restart=False)
        self._node_event(record, batch, "node.draining")
        await self._commit(batch)
        self.kick()
        return record.view()

    async def undrain(self, ref: str) -> Node:
        """A draining node takes new placements again (a no-op on a READY one)."""
        record = self._record(ref)
        if record.status is not NodeStatus.DRAINING:
            if record.status is NodeStatus.DOWN:
                raise FailedPrecondition(f"node {ref!r} is down, not draining")
            return record.view()
        batch = Batch()
        record.status = NodeStatus.READY
        record.refresh()
        self._node_event(record, batch, "node.undrained")
        await self._commit(batch)
        self.kick()
        return record.view()

    # -- attempts ending, restarts ----------------------------------------

    def _end_attempt(
        self,
        entry: TaskEntry,
        batch: Batch,
        state: TaskState,
        why: str,
        *,
        tell_worker: bool,
        exit_code: int | None = None,
    ) -> None:
        """Forget the task's current attempt, free its allocation, record how it ended."""
        live = self.live.pop(entry.id, None)
        if live is None:
            return
        record = self.registry.get(live.node_id)
        if record is not None:
            record.tasks.discard(entry.id)
            record.release(entry.task.spec.resources)
            if tell_worker and record.session is not None:
                record.session.stop(entry.id, live.generation, why, entry.task.spec.stop_grace)
        task = entry.task
        batch.attempts[(entry.id, live.generation)] = Attempt(
            entry.id,
            live.generation,
            live.node_id,
            state,
            exit_code,
            why,
            task.status.scheduled_at,
            time.time(),
        )

    def _reschedule(
        self, entry: TaskEntry, batch: Batch, why: str, *, delay: float, count_restart: bool
    ) -> None:
        status = entry.task.status
        next_at = time.time() + delay if delay > 0 else None
        changed = self._change(
            entry,
            batch,
            state=TaskState.PENDING,
            message=why,
            restart_count=status.restart_count + (1 if count_restart else 0),
            next_attempt_at=next_at,
            started_at=None,
            health=Health.UNKNOWN,
        )
        if changed is not None:
            self.pending[entry.id] = None
            if next_at is not None:
                self._wake_at(next_at)

    def _after_loss(self, entry: TaskEntry, batch: Batch, why: str) -> None:
        task = entry.task
        if task.status.state is not TaskState.LOST:
            self._change(entry, batch, state=TaskState.LOST, message=why)
        verdict = restarting.after_loss(task.spec, entry.task.status, why)
        if verdict.restart:
            self._reschedule(entry, batch, verdict.message, delay=0.0, count_restart=True)
        else:
            self._change(
                entry,
                batch,
                state=TaskState.FAILED,
                message=verdict.message,
                finished_at=time.time(),
            )

    def _after_exit(self, entry: TaskEntry, batch: Batch, update: TaskUpdate) -> None:
        ended = TaskState.COMPLETED if update.state is TaskState.COMPLETED else TaskState.FAILED
        why = update.message or (
            f"exit code {update.exit_code}" if update.exit_code is not None else ended.value
        )
        self._end_attempt(
            entry, batch, update.state, why, tell_worker=False, exit_code=update.exit_code
        )
        task = entry.task
        verdict = restarting.after_exit(task.spec, task.status, ended, why)
        common: dict[str, Any] = {"exit_code": update.exit_code, "result": update.result}
        if verdict.restart:
            self._change(entry, batch, kind="task.updated", **common)
            self._reschedule(entry, batch, verdict.message, delay=verdict.delay, count_restart=True)
        else:
            self._change(
                entry,
                batch,
                state=verdict.final,
                message=verdict.message,
                finished_at=update.time or time.time(),
                **common,
            )

    # -- placement ---------------------------------------------------------

    def _wake_at(self, when: float) -> None:
        loop = asyncio.get_running_loop()
        delay = max(0.0, when - time.time())
        if self._timer is not None and self._timer.when() <= loop.time() + delay:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(delay, self.kick)

    async def _placement_loop(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            self._settled.clear()
            try:
                more = await self.place_pending()
            except Exception:
                log.exception("placement pass failed")
                more = False
            finally:
                self._settled.set()
            if more:
                self._kick.set()
                await asyncio.sleep(0)

    async def settled(self) -> None:
        """Return when no placement pass is running.

        Sessions wait for this before flushing, so one pass's placements on a
        node leave in one ``Assign`` message instead of one per commit chunk.
        """
        await self._settled.wait()

    async def place_pending(self) -> bool:
        """One placement pass; True when pending work is left for another pass.

        The pass commits every ``CHUNK`` tasks it examines, which also yields
        the event loop, so a long queue never blocks the manager for long.
        """
        now = time.time()
        batch = Batch()
        slots = self.registry.slots()
        # Shapes that fit nowhere in this pass: the next task of the same shape is not re-tried.
        unplaceable: dict[tuple[Any, ...], str] = {}
        placed = examined = 0
        for task_id in list(self.pending):
            if placed >= PASS_LIMIT:
                await self._commit(batch)
                return True
            examined += 1
            if examined % CHUNK == 0:
                await self._commit(batch)
                batch = Batch()
            entry = self.catalog.by_id.get(task_id)
            if entry is None or task_id not in self.pending:
                continue  # stopped while a chunk was committing
            task = entry.task
            if task.status.next_attempt_at is not None and task.status.next_attempt_at > now:
                self._wake_at(task.status.next_attempt_at)
                continue
            spec = task.spec
            shape = (spec.runtime, spec.resources, tuple(sorted(spec.constraints.items())))
            reason = unplaceable.get(shape)
            node = None if reason is not None else self.scheduler.pick(spec, slots)
            if node is None:
                if reason is None:
                    reason = unplaceable[shape] = explain(spec, slots)
                self._unplaced(entry, batch, reason)
                continue
            assert isinstance(node, NodeRecord)
            self._place(entry, node, batch, now)
            placed += 1
        await self._commit(batch)
        return False

    def _unplaced(self, entry: TaskEntry, batch: Batch, reason: str) -> None:
        """Show why the task waits.

        Becoming unplaceable is a durable change with an event; later
        refinements of the counts ("2 lack memory" -> "3 lack memory") only
        update the status in memory, so a long queue is not rewritten every
        time a node joins.
        """
        status = entry.task.status
        if status.message == reason:
            return
        if not status.message.startswith(NO_FIT):
            self._change(entry, batch, kind="task.updated", message=reason)
        else:
            task = entry.task
            self.catalog.update(entry, Task(task.id, task.spec, replace(status, message=reason)))

    def _place(self, entry: TaskEntry, record: NodeRecord, batch: Batch, now: float) -> None:
        status = entry.task.status
        generation = status.generation + 1
        changed = self._change(
            entry,
            batch,
            state=TaskState.SCHEDULED,
            node_id=record.id,
            generation=generation,
            attempts=status.attempts + 1,
            scheduled_at=now,
            started_at=None,
            message=f"placed on {record.name or record.id}",
            next_attempt_at=None,
        )
        if changed is None:
            return
        del self.pending[entry.id]
        record.allocate(entry.task.spec.resources)
        record.tasks.add(entry.id)
        self.live[entry.id] = Live(record.id, generation)
        # The session sends only after the store confirms this batch (see sessions).
        if record.session is not None:
            record.session.assign(entry.id, generation)

    def _grace(self, task_id: TaskId) -> float:
        entry = self.catalog.by_id.get(task_id)
        # An unknown task gets the model's default grace.
        return entry.task.spec.stop_grace if entry is not None else DEFAULT_GRACE

    def spec_of(self, task_id: TaskId) -> TaskSpec:
        return self.catalog.by_id[task_id].task.spec

    # -- nodes: sessions, heartbeats, liveness ----------------------------

    async def hello(self, info: HelloInfo, outbox: Outbox) -> Session:
        """Register (or re-register) a node and reconcile what it runs."""
        node_id = NodeId(info.node_id or str(uuid.uuid4()))
        record = self.registry.register(
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
        batch = Batch()
        keep: list[tuple[TaskId, int]] = []
        stop: list[tuple[TaskId, int]] = []
        reported: set[TaskId] = set()
        current: list[TaskUpdate] = []
        for update in info.attempts:
            live = self.live.get(update.task_id)
            if (
                live is not None
                and live.node_id == node_id
                and live.generation == update.generation
            ):
                keep.append((update.task_id, update.generation))
                reported.add(update.task_id)
                current.append(update)
            else:
                stop.append((update.task_id, update.generation))
        for task_id in list(record.tasks):
            if task_id in reported:
                continue
            entry = self.catalog.by_id[task_id]
            live = self.live[task_id]
            if entry.state is TaskState.SCHEDULED:
                # Delivered at least once: whatever the worker did not report is sent again.
                live.acked = False
                outbox.assign(task_id, live.generation)
            else:
                why = f"node {record.name} no longer runs it"
                self._end_attempt(entry, batch, TaskState.LOST, why, tell_worker=False)
                self._after_loss(entry, batch, why)
        self._node_event(record, batch, "node.registered")
        self._apply(record, current, batch)
        await self._commit(batch)
        self.kick()
        return Session(record, keep, stop)

    def disconnected(self, record: NodeRecord, outbox: Outbox) -> None:
        """The stream ended; the node stays until its TTL says otherwise."""
        if record.session is outbox:
            record.session = None
            record.refresh()

    def ack(self, record: NodeRecord, refs: Sequence[tuple[TaskId, int]]) -> None:
        record.touch()
        for task_id, generation in refs:
            live = self.live.get(task_id)
            if live is not None and live.generation == generation and live.node_id == record.id:
                live.acked = True

    async def apply_updates(self, record: NodeRecord, updates: Sequence[TaskUpdate]) -> None:
        """Task updates from one worker message, applied in one transaction."""
        record.touch()
        batch = Batch()
        self._apply(record, updates, batch)
        await self._commit(batch)
        if batch.statuses:
            self.kick()

    def _apply(self, record: NodeRecord, updates: Sequence[TaskUpdate], batch: Batch) -> None:
        for update in updates:
            live = self.live.get(update.task_id)
            if live is None or live.generation != update.generation or live.node_id != record.id:
                # A stale generation is fenced off; if it still runs, it must stop.
                if update.state is TaskState.RUNNING and record.session is not None:
                    grace = self._grace(update.task_id)
                    why = "attempt no longer assigned to this node"
                    record.session.stop(update.task_id, update.generation, why, grace)
                continue
            live.acked = True
            entry = self.catalog.by_id[update.task_id]
            if update.state is TaskState.RUNNING:
                self._running(entry, batch, update)
            elif update.state in (TaskState.COMPLETED, TaskState.FAILED):
                self._after_exit(entry, batch, update)
            elif update.state is TaskState.LOST:
                # The worker gave the attempt up when its lease lapsed (worker.fencing).
                why = update.message or "lease lapsed on the node"
                self._end_attempt(entry, batch, TaskState.LOST, why, tell_worker=False)
                self._after_loss(entry, batch, why)
            elif update.state is TaskState.STOPPED:
                # Not asked for (asked-for stops end the attempt first): a failure.
                why = update.message or "stopped on the node"
                self._after_exit(entry, batch, replace(update, state=TaskState.FAILED, message=why))

    def _running(self, entry: TaskEntry, batch: Batch, update: TaskUpdate) -> None:
        status = entry.task.status
        fields: dict[str, Any] = {}
        if status.state is TaskState.SCHEDULED:
            fields = {"state": TaskState.RUNNING, "started_at": update.time or time.time()}
            fields["message"] = update.message or "running"
        elif status.state is TaskState.LOST:  # its node is back (disconnect.replace false)
            fields = {"state": TaskState.RUNNING, "message": "running again: its node is back"}
        if update.ports and update.ports != status.ports:
            fields["ports"] = update.ports
        if update.health is not status.health and update.health is not Health.UNKNOWN:
            fields["health"] = update.health
        if fields:
            self._change(entry, batch, **fields)

    async def _liveness_loop(self) -> None:
        period = min(self.config.heartbeat_interval, self.config.ttl) / 4
        while True:
            await asyncio.sleep(period)
            expired = self.registry.expired(self.config.ttl)
            if expired:
                try:
                    await self.nodes_down(expired)
                except Exception:
                    log.exception("marking nodes down failed")

    def _check_disconnect(self, spec: TaskSpec, field: str) -> None:
        """A replaced task must stop on its node before the TTL lets a replacement start."""
        policy = spec.disconnect.resolved(self.config.disconnect)
        if (
            policy.replace
            and policy.stop_after is not None
            and policy.stop_after >= self.config.ttl
        ):
            raise ValidationError(
                field, f"must be less than the manager's TTL ({self.config.ttl:g}s) when replaced"
            )

    async def nodes_down(self, records: Sequence[NodeRecord]) -> None:
        batch = Batch()
        for record in records:
            why = f"node {record.name or record.id} missed heartbeats for {self.config.ttl:g}s"
            record.status = NodeStatus.DOWN
            if record.session is not None:
                record.session.close(why)
                record.session = None
            record.refresh()
            for task_id in list(record.tasks):
                entry = self.catalog.by_id[task_id]
                if not entry.task.spec.disconnect.resolved(self.config.disconnect).replace:
                    # disconnect.replace is false: it keeps its attempt and waits for its node.
                    if entry.state is TaskState.RUNNING:
                        waiting = f"{why}; waiting for it (disconnect.replace is false)"
                        self._change(entry, batch, state=TaskState.LOST, message=waiting)
                    continue
                self._end_attempt(entry, batch, TaskState.LOST, why, tell_worker=False)
                self._after_loss(entry, batch, why)
            self._node_event(record, batch, "node.down", why)
            log.warning("node down", extra={"node_id": record.id, "tasks": len(record.tasks)})
        await self._commit(batch)
        self.kick()
