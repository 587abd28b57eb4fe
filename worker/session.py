"""The worker's side of its one stream to the manager (``ManagerService.Connect``).

A session says ``Hello`` (who the node is, what it offers, and every attempt
it runs or that ended while it was away), reads ``Welcome`` (heartbeat
interval), then runs three loops until the stream breaks:

- the reader applies ``Assign`` (through the supervisor, which fences stale
  generations), ``Stop`` and ``Reconcile``, and queues one ack per assignment;
- the heartbeat loop samples stats every interval and queues a heartbeat;
- the writer is the only one that writes: each time it wakes it sends
  whatever is ready as at most one ``Ack``, one ``TaskUpdates`` and one
  ``Heartbeat``, so a burst of a thousand assignments costs a few messages.

When the manager goes away the attempts keep running; updates wait in the
``Outbox`` and the session dials again with jittered exponential backoff.
This module is the stream's edge: it converts wire messages to domain types
and hands them to the supervisor.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata

import grpc

from corral import convert, tracing
from corral.errors import ValidationError
from corral.leaders import LeaderChannel
from corral.model import (
    Disconnect,
    NodeId,
    NodeStats,
    Resources,
    TaskId,
    TaskState,
    TaskUpdate,
    lease_stop_after,
)
from corral.serving import channel
from corral.tls import TlsFiles
from corral.v1 import manager_pb2, manager_pb2_grpc
from corral.validation import check_task_id
from worker.fencing import Lease, Terms, refused
from worker.runtimes.base import Assignment, AttemptRef
from worker.supervisor import Supervisor

log = logging.getLogger(__name__)

try:
    VERSION = metadata.version("corral")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    VERSION = "0.0.0"
WELCOME_TIMEOUT = 10.0
COALESCE_TURNS = 3
BUSY_GAP = 0.002


@dataclass
class Outbox:
    """What waits to go up the stream; survives reconnects."""

    updates: list[TaskUpdate] = field(default_factory=list)
    acks: list[AttemptRef] = field(default_factory=list)
    heartbeat: NodeStats | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def update(self, update: TaskUpdate) -> None:
        self.updates.append(update)
        self.ready.set()

    def ack(self, refs: Sequence[AttemptRef]) -> None:
        if refs:
            self.acks.extend(refs)
            self.ready.set()

    def beat(self, stats: NodeStats) -> None:
        self.heartbeat = stats
        self.ready.set()


def unreported(acks: list[AttemptRef], updates: Sequence[TaskUpdate]) -> list[AttemptRef]:
    """The acks still worth a message: the manager takes an update on an attempt as its
    ack, so an assignment that started at once (RUNNING rides in the same write, the
    common case) costs one message up the stream instead of two."""
    if not acks or not updates:
        return acks
    reported = {(u.task_id, u.generation) for u in updates}
    return [r for r in acks if (r.task_id, r.generation) not in reported]


@dataclass(frozen=True)
class Identity:
    """What the Hello says about the node."""

    node_id: NodeId
    name: str
    address: str
    labels: dict[str, str]
    capacity: Resources
    runtimes: tuple[str, ...]


StatsSource = Callable[[], Awaitable[NodeStats]]


class ManagerSession:
    """The worker's end of its session with the manager (``manager.sessions.WorkerSession``
    is the other end): one stream at a time, dialled again with backoff."""

    def __init__(
        self,
        *,
        manager: str,
        identity: Identity,
        supervisor: Supervisor,
        outbox: Outbox,
        stats: StatsSource,
        reconnect_initial: float = 0.2,
        reconnect_max: float = 5.0,
        lease: Lease | None = None,
        tls: TlsFiles | None = None,
        token: str = "",
    ) -> None:
        self.manager = manager
        self.tls = tls
        self.token = token
        self.identity = identity
        self.supervisor = supervisor
        self.outbox = outbox
        self.stats = stats
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.lease = lease or Lease()
        # How long the manager keeps finished tasks (Welcome); their logs go after it.
        self.retain_finished: float | None = None
        self.heartbeat_interval = 1.0
        self.ttl = 3.0
        self.epoch = 0
        # Set while a Welcome-ed stream is up; tests and the server wait on it.
        self.connected = asyncio.Event()
        self.sessions = 0
        self._lost_at: float | None = None
        self._channel: LeaderChannel | None = None
        self._seq = 0

    # -- the reconnect loop -----------------------------------------------------

    async def run(self) -> None:
        """Hold a stream to the manager until cancelled, dialing again when it breaks."""
        # Several managers may be listed: the stream goes to the leader (corral.leaders).
        self._channel = LeaderChannel(
            self.manager, opener=lambda t: channel(t, tls=self.tls, token=self.token)
        )
        delay = self.reconnect_initial
        try:
            while True:
                try:
                    if await self._once():
                        delay = self.reconnect_initial
                except asyncio.CancelledError:
                    raise
                except grpc.aio.AioRpcError as err:
                    log.info("manager stream ended: %s %s", err.code().name, err.details())
                    if self._channel.redirect(err):
                        # A standby named the leader (or none answered): dial on at once.
                        delay = self.reconnect_initial
                except Exception:
                    log.exception("manager stream failed")
                if self.connected.is_set():
                    self.connected.clear()
                self._lost_at = self._lost_at or time.time()
                pause = random.uniform(delay / 2, delay)
                probed_at = self.lease.clock()
                if await refused(self.manager):
                    # No manager runs: nobody counts our TTL down, so the lease holds
                    # (worker.fencing). Dial often enough to keep proving it.
                    self.lease.refused(probed_at)
                    pause = min(pause, self.lease.terms.ttl / 4)
                await asyncio.sleep(pause)
                delay = min(delay * 2, self.reconnect_max)
        finally:
            self.connected.clear()
            await self._channel.close(None)

    async def _once(self) -> bool:
        """One stream's life; True when it got as far as Welcome."""
        assert self._channel is not None
        stub = manager_pb2_grpc.ManagerServiceStub(self._channel)
        call = stub.Connect()
        try:
            told = len(self.outbox.updates)
            hello_at = self.lease.clock()
            await call.write(manager_pb2.WorkerMessage(hello=self._hello()))
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
            async with asyncio.timeout(WELCOME_TIMEOUT):
                first = await call.read()
            if first is grpc.aio.EOF or first.WhichOneof("kind") != "welcome":
                raise ConnectionError("the manager did not answer Hello with Welcome")
            # The Hello carried the queued updates; sending them again would only repeat them.
            del self.outbox.updates[:told]
            self._welcome(first.welcome)
            self.lease.granted(hello_at, self._terms(first.welcome))
            self.connected.set()
            self._lost_at = None
            log.info(
                "connected to manager %s as %s",
                self._channel.current,
                self.identity.node_id,
                extra={"node_id": self.identity.node_id},
            )
            await self._serve(call)
            return True
        finally:
            call.cancel()

    async def _serve(self, call: grpc.aio.StreamStreamCall) -> None:
        loops = [
            asyncio.ensure_future(self._read(call)),
            asyncio.ensure_future(self._write(call)),
            asyncio.ensure_future(self._beat()),
        ]
        try:
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
        for loop in done:
            if not loop.cancelled() and (err := loop.exception()) is not None:
                raise err

    # -- worker -> manager --------------------------------------------------------

    def _hello(self) -> manager_pb2.Hello:
        """Identity plus one entry per attempt: running ones and those that ended unseen."""
        latest: dict[tuple[str, int], TaskUpdate] = {}
        if self._lost_at is not None:
            # Finals written just before the stream broke may never have been read.
            margin = 2 * self.heartbeat_interval
            for update in self.supervisor.ended_since(self._lost_at - margin):
                latest[(update.task_id, update.generation)] = update
        for update in self.outbox.updates:
            latest[(update.task_id, update.generation)] = update
        for update in self.supervisor.current():
            latest[(update.task_id, update.generation)] = update
        ident = self.identity
        return manager_pb2.Hello(
            node_id=ident.node_id,
            name=ident.name,
            address=ident.address,
            labels=ident.labels,
            capacity=convert.resources_to(ident.capacity),
            runtimes=list(ident.runtimes),
            attempts=[convert.update_to(u) for u in latest.values()],
            version=VERSION,
        )

    async def _write(self, call: grpc.aio.StreamStreamCall) -> None:
        outbox = self.outbox
        loop = asyncio.get_running_loop()
        last_write = 0.0
        while True:
            await outbox.ready.wait()
            # Busy stream: wait out a short gap since the last write so a burst of
            # updates (attempts ending microseconds apart) travels as one message.
            # An idle stream writes at once, so a lone update is not delayed.
            gap = loop.time() - last_write
            if gap < BUSY_GAP:
                await asyncio.sleep(BUSY_GAP - gap)
            # Attempts that became ready at the same instant reach emit() a few loop
            # turns apart; yielding briefly (microseconds) gathers them too.
            for _ in range(COALESCE_TURNS):
                await asyncio.sleep(0)
            outbox.ready.clear()
            acks, outbox.acks = outbox.acks, []
            updates, outbox.updates = outbox.updates, []
            beat, outbox.heartbeat = outbox.heartbeat, None
            try:
                # Updates first: they are what a user waits for (RUNNING, exit codes).
                sent = updates
                if updates:
                    batch = manager_pb2.TaskUpdates(updates=[convert.update_to(u) for u in updates])
                    await call.write(manager_pb2.WorkerMessage(updates=batch))
                    updates = []
                if acks := unreported(acks, sent):
                    refs = [
                        manager_pb2.AttemptRef(task_id=r.task_id, generation=r.generation)
                        for r in acks
                    ]
                    await call.write(manager_pb2.WorkerMessage(ack=manager_pb2.Ack(attempts=refs)))
                if beat is not None:
                    self._seq += 1
                    hb = manager_pb2.Heartbeat(seq=self._seq, stats=convert.stats_to(beat))
                    self.lease.sent(self._seq)
                    await call.write(manager_pb2.WorkerMessage(heartbeat=hb))
                last_write = loop.time()
            except BaseException:
                # Not written: keep them for the next stream (acks are re-earned by re-delivery).
                outbox.updates[:0] = updates
                raise

    async def _beat(self) -> None:
        self._seq = 0
        while True:
            try:
                stats = await self.stats()
            except Exception:  # a heartbeat without figures still proves the node alive
                log.exception("sampling node stats failed")
                stats = NodeStats()
            self.outbox.beat(stats)
            await asyncio.sleep(self.heartbeat_interval)

    # -- manager -> worker ---------------------------------------------------------

    async def _read(self, call: grpc.aio.StreamStreamCall) -> None:
        while True:
            message = await call.read()
            if message is grpc.aio.EOF:
                return
            kind = message.WhichOneof("kind")
            if kind == "assign":
                self._assign(message.assign)
            elif kind == "stop":
                self._stop(message.stop)
            elif kind == "reconcile":
                self._reconcile(message.reconcile)
            elif kind == "lease":
                self.lease.renew(message.lease.seq)
            elif kind == "welcome":
                self._welcome(message.welcome)

    def _welcome(self, welcome: manager_pb2.Welcome) -> None:
        if welcome.HasField("heartbeat_interval"):
            self.heartbeat_interval = max(0.05, convert.seconds(welcome.heartbeat_interval))
        if welcome.HasField("ttl"):
            self.ttl = convert.seconds(welcome.ttl)
        if welcome.HasField("retain_finished"):
            self.retain_finished = convert.seconds(welcome.retain_finished)
        self.epoch = welcome.session_epoch
        self.sessions += 1

    def _terms(self, welcome: manager_pb2.Welcome) -> Terms:
        default = convert.disconnect_from(welcome.disconnect)
        if default.stop_after is None and default.replace is not False:
            # A manager that names no default: the one its TTL implies.
            default = Disconnect(stop_after=lease_stop_after(self.ttl), replace=default.replace)
        return Terms(ttl=self.ttl, heartbeat_interval=self.heartbeat_interval, default=default)

    def _assign(self, assign: manager_pb2.Assign) -> None:
        refs = []
        for item in assign.assignments:
            ref = AttemptRef(TaskId(item.task_id), item.generation)
            refs.append(ref)
            try:
                check_task_id(item.task_id, "assignment.task_id")
                spec = convert.spec_from(item.spec)
            except (ValidationError, ValueError) as err:
                self.outbox.update(
                    TaskUpdate(
                        ref.task_id,
                        ref.generation,
                        TaskState.FAILED,
                        message=f"bad assignment: {err}",
                        time=time.time(),
                    )
                )
                continue
            assignment = Assignment(ref, spec, self.identity.node_id)
            if item.trace_context:
                # The attempt's task is created inside the span: its start span is a child.
                attributes = {"corral.task_id": ref.task_id, "corral.generation": ref.generation}
                parent = dict(item.trace_context)
                with tracing.span("worker", "worker.assign", parent=parent, attributes=attributes):
                    self.supervisor.apply(assignment)
            else:
                self.supervisor.apply(assignment)
        # One ack for the whole batch, received and applied (or fenced) alike.
        self.outbox.ack(refs)

    def _stop(self, stop: manager_pb2.Stop) -> None:
        for order in stop.orders:
            grace = convert.seconds(order.grace) if order.HasField("grace") else None
            task_id = TaskId(order.task_id)
            if order.generation == 0:
                self.supervisor.stop_task(task_id, reason=order.reason, grace=grace)
            else:
                ref = AttemptRef(task_id, order.generation)
                self.supervisor.stop(ref, reason=order.reason, grace=grace)

    def _reconcile(self, reconcile: manager_pb2.Reconcile) -> None:
        """Stop what the manager no longer gives this node; ``keep`` needs nothing."""
        for ref in reconcile.stop:
            self.supervisor.stop_running(
                AttemptRef(TaskId(ref.task_id), ref.generation),
                reason="the manager no longer assigns it to this node",
            )
