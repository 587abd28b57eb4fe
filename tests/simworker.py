"""A simulated worker for tests: a raw ``ManagerService.Connect`` client.

It speaks the stream protocol by hand (Hello, Heartbeat, TaskUpdates, Ack)
and records every ``ManagerMessage`` it receives, so tests can assert what
the manager sent and when. Optionally it heartbeats in the background and
acks assignments / reports them RUNNING automatically.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import grpc

from corral import convert
from corral.model import Resources
from corral.serving import channel
from corral.v1 import manager_pb2, manager_pb2_grpc, types_pb2

RUNNING = types_pb2.TASK_STATE_RUNNING
COMPLETED = types_pb2.TASK_STATE_COMPLETED
FAILED = types_pb2.TASK_STATE_FAILED
STOPPED = types_pb2.TASK_STATE_STOPPED


class SimWorker:
    def __init__(
        self,
        target: str,
        node_id: str,
        *,
        capacity: Resources = Resources(4.0, 8 << 30, 100 << 30),
        runtimes: Iterable[str] = ("process", "fake"),
        labels: dict[str, str] | None = None,
        address: str = "",
        heartbeat: float | None = 0.1,
        auto_ack: bool = True,
        auto_run: bool = True,
        token: str = "",
    ) -> None:
        self.target, self.node_id = target, node_id
        self.capacity, self.runtimes = capacity, tuple(runtimes)
        self.labels = labels or {}
        self.address = address
        self.heartbeat_period = heartbeat
        self.auto_ack, self.auto_run = auto_ack, auto_run
        # A node token (manager with ACLs), sent as a worker sends it.
        self.token = token
        self.received: asyncio.Queue[manager_pb2.ManagerMessage] = asyncio.Queue()
        self.messages: list[manager_pb2.ManagerMessage] = []
        # task_id -> generation of what this worker "runs".
        self.running: dict[str, int] = {}
        self.welcome: manager_pb2.Welcome | None = None
        self.reconcile: manager_pb2.Reconcile | None = None
        self._channel: grpc.aio.Channel | None = None
        self._call: grpc.aio.StreamStreamCall | None = None  # type: ignore[type-arg]
        self._tasks: list[asyncio.Task[None]] = []
        self._seq = 0
        self._writing = asyncio.Lock()

    async def connect(self, attempts: Iterable[manager_pb2.TaskUpdate] = ()) -> None:
        self._channel = channel(self.target)
        stub = manager_pb2_grpc.ManagerServiceStub(self._channel)
        bearer = (("authorization", f"Bearer {self.token}"),) if self.token else None
        self._call = stub.Connect(metadata=bearer)
        hello = manager_pb2.Hello(
            node_id=self.node_id,
            name=self.node_id,
            address=self.address,
            labels=self.labels,
            capacity=convert.resources_to(self.capacity),
            runtimes=list(self.runtimes),
            attempts=list(attempts),
        )
        await self._call.write(manager_pb2.WorkerMessage(hello=hello))
        first = await self._call.read()
        assert first.WhichOneof("kind") == "welcome", first
        self.welcome = first.welcome
        second = await self._call.read()
        assert second.WhichOneof("kind") == "reconcile", second
        self.reconcile = second.reconcile
        self._tasks.append(asyncio.create_task(self._read()))
        if self.heartbeat_period:
            self._tasks.append(asyncio.create_task(self._beat()))

    async def _read(self) -> None:
        assert self._call is not None
        with contextlib.suppress(
            grpc.aio.AioRpcError, asyncio.CancelledError, asyncio.InvalidStateError
        ):
            while (message := await self._call.read()) is not grpc.aio.EOF:
                self.messages.append(message)
                self.received.put_nowait(message)
                await self._react(message)

    async def _react(self, message: manager_pb2.ManagerMessage) -> None:
        kind = message.WhichOneof("kind")
        if kind == "assign":
            refs = [
                manager_pb2.AttemptRef(task_id=a.task_id, generation=a.generation)
                for a in message.assign.assignments
            ]
            for a in message.assign.assignments:
                self.running[a.task_id] = a.generation
            if self.auto_ack:
                await self.send(manager_pb2.WorkerMessage(ack=manager_pb2.Ack(attempts=refs)))
            if self.auto_run:
                await self.update([(r.task_id, r.generation, RUNNING, None, "") for r in refs])
        elif kind == "stop":
            for order in message.stop.orders:
                self.running.pop(order.task_id, None)

    async def _beat(self) -> None:
        assert self.heartbeat_period is not None
        with contextlib.suppress(
            grpc.aio.AioRpcError,
            asyncio.CancelledError,
            grpc.aio.UsageError,
            asyncio.InvalidStateError,
        ):
            while True:
                self._seq += 1
                await self.send(
                    manager_pb2.WorkerMessage(heartbeat=manager_pb2.Heartbeat(seq=self._seq))
                )
                await asyncio.sleep(self.heartbeat_period)

    async def send(self, message: manager_pb2.WorkerMessage) -> None:
        # grpc.aio allows one write at a time per call; heartbeats and reactions share it.
        assert self._call is not None
        async with self._writing:
            await self._call.write(message)

    async def update(self, items: Iterable[tuple[str, int, int, int | None, str]]) -> None:
        """Send (task_id, generation, state, exit_code, message) updates as ONE message."""
        updates = [
            manager_pb2.TaskUpdate(task_id=t, generation=g, state=s, exit_code=code, message=msg)
            for t, g, s, code, msg in items
        ]
        for u in updates:
            if u.state in (COMPLETED, FAILED, STOPPED):
                self.running.pop(u.task_id, None)
        await self.send(manager_pb2.WorkerMessage(updates=manager_pb2.TaskUpdates(updates=updates)))

    async def next(self, kind: str, timeout: float = 10.0) -> manager_pb2.ManagerMessage:
        """The next received message of ``kind`` (others are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.received.get()
                if message.WhichOneof("kind") == kind:
                    return message

    def attempts(self, state: int = RUNNING) -> list[manager_pb2.TaskUpdate]:
        """What this worker runs, as Hello reports it on reconnect."""
        return [
            manager_pb2.TaskUpdate(task_id=t, generation=g, state=state)
            for t, g in self.running.items()
        ]

    async def stop_heartbeats(self) -> None:
        for task in self._tasks[1:]:
            task.cancel()
        await asyncio.gather(*self._tasks[1:], return_exceptions=True)
        del self._tasks[1:]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._call is not None:
            self._call.cancel()
        if self._channel is not None:
            await self._channel.close()
