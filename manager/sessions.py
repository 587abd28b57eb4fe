"""One session per worker stream (``ManagerService.Connect``).

The first message must be ``Hello``; the manager answers ``Welcome`` then
``Reconcile``. After that two loops run: the reader applies what the worker
sends (``TaskUpdates`` in one transaction per message, ``Ack``s,
heartbeats that only touch a timestamp), and the sender flushes the outbox.

Batching: the core queues assignments and stops one by one, the sender wakes,
waits for the store to commit everything queued so far (so a worker never
runs an assignment the manager could forget), and sends whatever is ready
as ONE ``Stop`` and ONE ``Assign`` message.

Delivery is at least once within a live session too: an assignment neither
acknowledged nor reported on within ``resend_after`` (two heartbeats, at
least a second) is sent again by a third loop; the worker applies each
generation at most once and acknowledges every copy. Every heartbeat is
answered with a ``LeaseRenewal`` at once (see ``worker.fencing``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import grpc

from corral import convert
from corral.errors import ValidationError
from corral.model import NodeStats, Resources, TaskId
from corral.v1 import manager_pb2, types_pb2
from corral.validation import check_labels, check_resources, check_text
from manager import actors, traces
from manager.core import TaskManager
from manager.nodes import NodeRecord
from manager.wirecache import SpecCache
from manager.workers import HelloInfo

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 30.0
SETTLE_WAIT = 0.05


class WorkerSession:
    """The manager's end of one worker's session (``worker.session.ManagerSession`` is the
    other end); the core sees it as an ``Outbox``."""

    def __init__(
        self,
        core: TaskManager,
        context: grpc.aio.ServicerContext[Any, Any],
        specs: SpecCache[types_pb2.TaskSpec],
        *,
        admit: Callable[[HelloInfo], None] | None = None,
    ) -> None:
        self.core = core
        self.context = context
        self.specs = specs
        # Checks a Hello before the core sees it (node identity); raises to refuse.
        self._admit = admit
        self._assigns: dict[tuple[TaskId, int], None] = {}
        self._stops: list[manager_pb2.StopOrder] = []
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._close_reason = ""
        self._stats: Any = None
        self.node_id = ""
        # The seq of the latest heartbeat not yet answered with a LeaseRenewal.
        self._renew: int | None = None
        # Assignments sent and not yet acknowledged: loop time of the sending.
        self._unacked: dict[tuple[TaskId, int], float] = {}
        # Set while ``_unacked`` may hold something: an idle session's resend loop sleeps
        # on it instead of waking twice per ``resend_after`` (1,000 workers: 2,000 wakeups/s).
        self._sent = asyncio.Event()
        self.resend_after = max(1.0, 2 * core.config.heartbeat_interval)
        self.resent = 0

    # -- Outbox -----------------------------------------------------------

    def assign(self, task_id: TaskId, generation: int) -> None:
        self._assigns[(task_id, generation)] = None
        self._wake.set()

    def stop(self, task_id: TaskId, generation: int, reason: str, grace: float) -> None:
        self._unacked.pop((task_id, generation), None)
        if (task_id, generation) in self._assigns:
            del self._assigns[(task_id, generation)]
            return  # never sent: nothing to stop
        self._stops.append(
            manager_pb2.StopOrder(
                task_id=task_id,
                generation=generation,
                reason=reason,
                grace=convert.duration(grace),
            )
        )
        self._wake.set()

    def stats(self) -> NodeStats:
        return convert.stats_from(self._stats) if self._stats is not None else NodeStats()

    def close(self, reason: str) -> None:
        self._close_reason = reason
        self._closed.set()

    # -- the stream -------------------------------------------------------

    async def run(self) -> None:
        # The stream is read with ``context.read``: grpc.aio refuses mixing its request
        # iterator with ``context.write``.
        try:
            async with asyncio.timeout(HELLO_TIMEOUT):
                first = await self.context.read()
        except TimeoutError:
            return
        if first is grpc.aio.EOF:
            return
        if first.WhichOneof("kind") != "hello":
            raise ValidationError("hello", "the first message of a session must be hello")
        info = hello_from(first.hello)
        if self._admit is not None:
            # A node's first Hello writes its binding to the database: off the loop.
            await asyncio.to_thread(self._admit, info)
        actors.act_as(f"node:{info.node_id}")
        granted = await self.core.workers.hello(info, self)
        record = granted.record
        self.node_id = record.id
        fields = {"node_id": record.id}
        log.info(
            "worker %s connected: keeps %d attempts, stops %d",
            record.name,
            len(granted.keep),
            len(granted.stop),
            extra=fields,
        )
        try:
            await self.context.write(welcome(self.core, record))
            await self.context.write(
                manager_pb2.ManagerMessage(
                    reconcile=manager_pb2.Reconcile(
                        keep=[
                            manager_pb2.AttemptRef(task_id=t, generation=g) for t, g in granted.keep
                        ],
                        stop=[
                            manager_pb2.AttemptRef(task_id=t, generation=g) for t, g in granted.stop
                        ],
                    )
                )
            )
            reader = asyncio.create_task(self._read(record))
            sender = asyncio.create_task(self._send())
            resender = asyncio.create_task(self._resend())
            closed = asyncio.create_task(self._closed.wait())
            loops: list[asyncio.Task[Any]] = [reader, sender, resender, closed]
            try:
                done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
            finally:
                # Also when the RPC itself is cancelled: no loop outlives its stream.
                for task in loops:
                    task.cancel()
                await asyncio.gather(*loops, return_exceptions=True)
            for task in done:
                if not task.cancelled() and (err := task.exception()) is not None:
                    raise err
        finally:
            self.core.workers.disconnected(record, self)
            log.info("worker %s disconnected", record.name, extra=fields)
        if self._closed.is_set():
            await self.context.abort(grpc.StatusCode.UNAVAILABLE, self._close_reason)

    async def _read(self, record: NodeRecord) -> None:
        # A loop on ``read`` rather than an async generator around it: one frame fewer to
        # resume per message, and heartbeats alone are a thousand messages a second.
        read, eof = self.context.read, grpc.aio.EOF
        while (message := await read()) is not eof:
            kind = message.WhichOneof("kind")
            if kind == "heartbeat":
                record.touch()
                self._stats = message.heartbeat.stats
                self._renew = message.heartbeat.seq
                self._wake.set()
            elif kind == "updates":
                updates = [convert.update_from(u) for u in message.updates.updates]
                for update in updates:  # a report on an attempt is as good as an ack
                    self._unacked.pop((update.task_id, update.generation), None)
                await self.core.workers.apply_updates(record, updates)
            elif kind == "ack":
                refs = [(TaskId(a.task_id), a.generation) for a in message.ack.attempts]
                for ref in refs:
                    self._unacked.pop(ref, None)
                self.core.workers.ack(record, refs)
            else:
                record.touch()

    async def _send(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._renew is not None:
                # At once: the worker counts its lease from the heartbeat's sending.
                seq, self._renew = self._renew, None
                renewal = manager_pb2.LeaseRenewal(seq=seq)
                await self.context.write(manager_pb2.ManagerMessage(lease=renewal))
                if not (self._stops or self._assigns):
                    continue
            # Coalesce a running pass's placements, but never wait long for a big pass.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SETTLE_WAIT):
                    await self.core.settled()
            # Everything queued before now is committed once this returns.
            await self.core.store.barrier()
            stops, self._stops = self._stops, []
            assigns, self._assigns = self._assigns, {}
            if stops:
                await self.context.write(
                    manager_pb2.ManagerMessage(stop=manager_pb2.Stop(orders=stops))
                )
            if assigns:
                await self.context.write(self._assign_message(assigns))
                sent_at = asyncio.get_running_loop().time()
                for key in assigns:
                    self._unacked[key] = sent_at
                self._sent.set()

    async def _resend(self) -> None:
        """Queue again what the worker neither acknowledged nor reported in time."""
        loop = asyncio.get_running_loop()
        while True:
            if not self._unacked:
                self._sent.clear()
                await self._sent.wait()
            await asyncio.sleep(self.resend_after / 2)
            now = loop.time()
            due = [key for key, at in self._unacked.items() if now - at >= self.resend_after]
            for key in due:
                del self._unacked[key]
                self._assigns[key] = None
            if due:
                self.resent += len(due)
                log.info("re-sending unacknowledged assignments", extra={"count": len(due)})
                self._wake.set()

    def _assign_message(
        self, assigns: dict[tuple[TaskId, int], None]
    ) -> manager_pb2.ManagerMessage:
        # Built in place: an Assignment made apart is copied (spec and all) into
        # the Assign, which is copied again into the ManagerMessage.
        message = manager_pb2.ManagerMessage()
        message.assign.SetInParent()
        add = message.assign.assignments.add
        for task_id, generation in assigns:
            try:
                spec = self.core.spec_of(task_id)
            except KeyError:
                continue
            item = add(task_id=task_id, generation=generation)
            item.spec.CopyFrom(self.specs.message(spec))
            if spec.secret_env:
                # Only the assigned worker's stream carries a task's secrets.
                item.spec.secret_env.update(spec.secret_env)
            if context := traces.assignment_context(task_id, generation, self.node_id):
                item.trace_context.update(context)
        return message


def hello_from(m: manager_pb2.Hello) -> HelloInfo:
    """Convert and check a Hello: a worker's capacity and labels are input like any other."""
    capacity: Resources = convert.resources_from(m.capacity)
    check_resources(capacity, "hello.capacity")
    check_labels(dict(m.labels), "hello.labels")
    check_text(m.node_id, "hello.node_id", limit=128)
    check_text(m.name, "hello.name", limit=253)
    check_text(m.address, "hello.address", limit=512)
    if len(m.runtimes) > 16:
        raise ValidationError("hello.runtimes", "at most 16 runtimes")
    return HelloInfo(
        node_id=m.node_id,
        name=m.name,
        address=m.address,
        labels=dict(m.labels),
        capacity=capacity,
        runtimes=tuple(m.runtimes),
        version=m.version,
        attempts=[convert.update_from(u) for u in m.attempts],
    )


def welcome(core: TaskManager, record: NodeRecord) -> manager_pb2.ManagerMessage:
    return manager_pb2.ManagerMessage(
        welcome=manager_pb2.Welcome(
            node_id=record.id,
            heartbeat_interval=convert.duration(core.config.heartbeat_interval),
            ttl=convert.duration(core.config.ttl),
            session_epoch=record.epoch,
            disconnect=convert.disconnect_to(core.config.disconnect),
            retain_finished=convert.duration(core.config.retain_finished),
        )
    )
