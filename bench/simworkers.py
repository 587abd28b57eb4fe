"""Simulated workers: real ``corral.v1`` clients that run nothing.

Each simulated worker holds its own ``ManagerService.Connect`` stream, says
``Hello`` (runtimes ``["fake"]``), heartbeats at the interval the ``Welcome``
gives, reports ``RUNNING`` (then ``COMPLETED`` or ``FAILED`` after the
``FakeSpec`` duration) in ``TaskUpdates`` batched per stream: whatever is ready
when the stream's writer wakes goes out as one message. As a real worker, it
sends an ``Ack`` only for assignments no update in the same write reports.
Many workers share a process (asyncio) and a gRPC channel carries
``per_channel`` of them, each channel its own TCP connection, so thousands fit
on a 2-core machine; a fleet spreads over several processes.

Every worker records wall-clock times (``time.time()``, comparable across the
processes of one machine): when each assignment arrived, when its RUNNING and
final updates were written, and when each heartbeat was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing.connection
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from bench import spawning
from corral.v1 import manager_pb2, manager_pb2_grpc, types_pb2

# Each channel gets its own subchannel (its own TCP connection), like separate machines.
CHANNEL_OPTIONS = [
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
]
GiB = 1024**3


@dataclass
class Record:
    """What one fleet process saw; merged by the parent."""

    # task id -> [assigned, running written, final written] (wall clock; 0 = not yet)
    tasks: dict[str, list[float]] = field(default_factory=dict)
    # node id -> heartbeat send times
    heartbeats: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    stops: int = 0
    # Sessions that ended and were opened again (a refused connect counts too).
    reconnects: int = 0


def _stamp(update: manager_pb2.TaskUpdate, now: float) -> None:
    update.time.seconds = int(now)
    update.time.nanos = int((now % 1) * 1e9)


class SimWorker:
    def __init__(
        self, channel: grpc.aio.Channel, node_id: str, record: Record, *, cpu: float
    ) -> None:
        self.stub = manager_pb2_grpc.ManagerServiceStub(channel)
        self.node_id = node_id
        self.record = record
        self.cpu = cpu
        self.welcomed = asyncio.Event()
        self.interval = 1.0
        self._acks: list[manager_pb2.AttemptRef] = []
        self._updates: list[tuple[manager_pb2.TaskUpdate, int]] = []  # (update, slot)
        self._heartbeat_due = False
        self._seq = 0
        self._wake = asyncio.Event()
        self._timers: dict[tuple[str, int], asyncio.TimerHandle] = {}
        self._running = 0
        self.record.heartbeats[node_id] = []

    async def run(self) -> None:
        """Hold a session; like a real worker, reconnect with jittered backoff when it breaks."""
        backoff = 0.2
        while True:
            try:
                await self._session()
            except grpc.aio.AioRpcError as err:
                what = "connect" if not self.welcomed.is_set() else "stream"
                self.record.errors.append(
                    f"{self.node_id}: {what} {err.code().name} {err.details()}"
                )
            self.record.reconnects += 1
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, 2.0)

    async def _session(self) -> None:
        self._acks, self._updates, self._heartbeat_due = [], [], False
        call = self.stub.Connect()
        try:
            await call.write(
                manager_pb2.WorkerMessage(
                    hello=manager_pb2.Hello(
                        node_id=self.node_id,
                        name=self.node_id,
                        address="127.0.0.1:1",
                        capacity=types_pb2.Resources(
                            cpu=self.cpu, memory_bytes=256 * GiB, disk_bytes=1024 * GiB
                        ),
                        runtimes=["fake"],
                        version="bench",
                    )
                )
            )
            writer = asyncio.create_task(self._write(call))
            beats = asyncio.create_task(self._beat())
            try:
                await self._read(call)
            finally:
                writer.cancel()
                beats.cancel()
                for timer in self._timers.values():
                    timer.cancel()
                self._timers.clear()
        finally:
            call.cancel()

    async def _read(self, call: Any) -> None:
        while True:
            message = await call.read()
            if message is grpc.aio.EOF:
                self.record.errors.append(f"{self.node_id}: stream ended by the manager")
                return
            kind = message.WhichOneof("kind")
            if kind == "assign":
                self._assign(message.assign)
            elif kind == "stop":
                self._stop(message.stop)
            elif kind == "welcome":
                interval = message.welcome.heartbeat_interval
                self.interval = interval.seconds + interval.nanos / 1e9 or 1.0
                self.welcomed.set()

    def _assign(self, assign: manager_pb2.Assign) -> None:
        now = time.time()
        loop = asyncio.get_running_loop()
        for a in assign.assignments:
            self._acks.append(manager_pb2.AttemptRef(task_id=a.task_id, generation=a.generation))
            self.record.tasks[a.task_id] = [now, 0.0, 0.0]
            update = manager_pb2.TaskUpdate(
                task_id=a.task_id, generation=a.generation, state=types_pb2.TASK_STATE_RUNNING
            )
            _stamp(update, now)
            self._updates.append((update, 1))
            self._running += 1
            fake = a.spec.fake
            duration = fake.duration.seconds + fake.duration.nanos / 1e9
            failed = fake.failure_rate > 0 and random.random() < fake.failure_rate
            code = 1 if failed else fake.exit_code
            if duration <= 0:
                self._finish(a.task_id, a.generation, code)
            else:
                key = (a.task_id, a.generation)
                self._timers[key] = loop.call_later(
                    duration, self._finish, a.task_id, a.generation, code
                )
        self._wake.set()

    def _finish(self, task_id: str, generation: int, code: int) -> None:
        self._timers.pop((task_id, generation), None)
        state = types_pb2.TASK_STATE_COMPLETED if code == 0 else types_pb2.TASK_STATE_FAILED
        update = manager_pb2.TaskUpdate(
            task_id=task_id, generation=generation, state=state, exit_code=code
        )
        _stamp(update, time.time())
        self._updates.append((update, 2))
        self._running -= 1
        self._wake.set()

    def _stop(self, stop: manager_pb2.Stop) -> None:
        for order in stop.orders:
            timer = self._timers.pop((order.task_id, order.generation), None)
            if timer is None:
                continue
            timer.cancel()
            self._running -= 1
            self.record.stops += 1
            update = manager_pb2.TaskUpdate(
                task_id=order.task_id,
                generation=order.generation,
                state=types_pb2.TASK_STATE_STOPPED,
                message="stopped",
            )
            _stamp(update, time.time())
            self._updates.append((update, 2))
        self._wake.set()

    async def _beat(self) -> None:
        await self.welcomed.wait()
        # Spread the fleet's heartbeats over the interval, as independent machines would.
        await asyncio.sleep(random.random() * self.interval)
        while True:
            self._heartbeat_due = True
            self._wake.set()
            await asyncio.sleep(self.interval)

    async def _write(self, call: Any) -> None:
        """The stream's only writer: one message per kind for whatever is ready."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._heartbeat_due:
                self._heartbeat_due = False
                self._seq += 1
                self.record.heartbeats[self.node_id].append(time.time())
                await call.write(
                    manager_pb2.WorkerMessage(
                        heartbeat=manager_pb2.Heartbeat(
                            seq=self._seq, stats=types_pb2.NodeStats(task_count=self._running)
                        )
                    )
                )
            # As the real worker (worker.session): updates first, and no ack for an
            # attempt an update in the same write reports (the manager takes it as one).
            acks, self._acks = self._acks, []
            updates, self._updates = self._updates, []
            if updates:
                await call.write(
                    manager_pb2.WorkerMessage(
                        updates=manager_pb2.TaskUpdates(updates=[u for u, _ in updates])
                    )
                )
                now = time.time()
                for update, slot in updates:
                    times = self.record.tasks.get(update.task_id)
                    if times is not None:
                        times[slot] = now
                reported = {(u.task_id, u.generation) for u, _ in updates}
                acks = [a for a in acks if (a.task_id, a.generation) not in reported]
            if acks:
                await call.write(manager_pb2.WorkerMessage(ack=manager_pb2.Ack(attempts=acks)))


# --- one fleet process ---


def _channel(target: str, link: dict[str, Any] | None) -> grpc.aio.Channel:
    """Plaintext, or (``link``) mutual TLS from ``link["tls"]`` and a bearer ``link["token"]``."""
    if not link:
        return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
    from corral.bearer import bearer_interceptors
    from corral.tls import TlsFiles, channel_credentials

    interceptors = bearer_interceptors(link["token"]) if link.get("token") else None
    if link.get("tls"):
        cert, key, ca = (Path(p) for p in link["tls"])
        return grpc.aio.secure_channel(
            target,
            channel_credentials(TlsFiles(cert, key, ca)),
            options=CHANNEL_OPTIONS,
            interceptors=interceptors,
        )
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS, interceptors=interceptors)


def _fleet_main(conn: multiprocessing.connection.Connection, options: dict[str, Any]) -> None:
    asyncio.run(_fleet(conn, **options))


async def _fleet(
    conn: multiprocessing.connection.Connection,
    *,
    target: str,
    prefix: str,
    count: int,
    per_channel: int,
    cpu: float,
    link: dict[str, Any] | None = None,
) -> None:
    record = Record()
    channels = [_channel(target, link) for _ in range(-(-count // per_channel))]
    workers = [
        SimWorker(channels[i // per_channel], f"{prefix}-{i:05d}", record, cpu=cpu)
        for i in range(count)
    ]
    runs: list[asyncio.Task[None]] = []

    async def start(timeout: float) -> int:
        for worker in workers:
            runs.append(asyncio.create_task(worker.run()))
        waits = [asyncio.create_task(w.welcomed.wait()) for w in workers]
        await asyncio.wait(waits, timeout=timeout)
        for wait in waits:
            wait.cancel()
        return sum(w.welcomed.is_set() for w in workers)

    def snapshot(reset: bool) -> dict[str, Any]:
        data = {
            "tasks": dict(record.tasks),
            "heartbeats": {k: list(v) for k, v in record.heartbeats.items()},
            "errors": list(record.errors),
            "stops": record.stops,
            "reconnects": record.reconnects,
        }
        if reset:
            record.tasks.clear()
            for beats in record.heartbeats.values():
                beats.clear()
            record.errors.clear()
            record.reconnects = 0
        return data

    async def stop(_: Any) -> dict[str, Any]:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        for channel in channels:
            with contextlib.suppress(Exception):
                await channel.close(None)
        return snapshot(False)

    conn.send(("ok", count))
    await spawning.serve_commands(
        conn,
        {
            "start": lambda timeout: start(float(timeout)),
            "snapshot": lambda reset: snapshot(bool(reset)),
            "stop": stop,
        },
    )


# --- the parent's handle on a fleet ---


@dataclass
class Fleet:
    """Simulated workers spread over ``procs`` processes."""

    children: list[spawning.Child]
    count: int

    @classmethod
    async def start(
        cls,
        target: str,
        *,
        workers: int,
        procs: int = 2,
        per_channel: int = 10,
        prefix: str = "sim",
        cpu: float = 64.0,
        timeout: float = 60.0,
        link: dict[str, Any] | None = None,
    ) -> Fleet:
        """``link``: mutual TLS files (cert, key, ca) and a node token, see ``_channel``."""
        procs = max(1, min(procs, workers))
        shares = [workers // procs + (1 if i < workers % procs else 0) for i in range(procs)]
        children = [
            spawning.spawn(
                _fleet_main,
                {
                    "target": target,
                    "prefix": f"{prefix}{i}",
                    "count": n,
                    "per_channel": per_channel,
                    "cpu": cpu,
                    "link": link,
                },
            )
            for i, n in enumerate(shares)
        ]
        fleet = cls(children, workers)
        try:
            for child in children:
                await child.answer(60)
            welcomed = await asyncio.gather(
                *(c.ask("start", timeout, timeout + 30) for c in children)
            )
        except BaseException:
            await fleet.close()
            raise
        if sum(welcomed) < workers:
            seen = await fleet.close()
            errors = sorted(set(e.split(": ", 1)[-1] for e in seen.get("errors", [])))[:3]
            raise RuntimeError(
                f"only {sum(welcomed)} of {workers} simulated workers were welcomed"
                f" (errors: {'; '.join(errors) or 'none'})"
            )
        return fleet

    @property
    def pids(self) -> list[int]:
        return [c.pid for c in self.children]

    async def snapshot(self, reset: bool = False) -> dict[str, Any]:
        parts = await asyncio.gather(*(c.ask("snapshot", reset, 120) for c in self.children))
        return merge(parts)

    def kill(self) -> None:
        for child in self.children:
            child.kill()

    async def close(self) -> dict[str, Any]:
        parts = await asyncio.gather(*(c.close() for c in self.children))
        return merge([p for p in parts if p])


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {
        "tasks": {},
        "heartbeats": {},
        "errors": [],
        "stops": 0,
        "reconnects": 0,
    }
    for part in parts:
        merged["tasks"].update(part["tasks"])
        merged["heartbeats"].update(part["heartbeats"])
        merged["errors"].extend(part["errors"])
        merged["stops"] += part["stops"]
        merged["reconnects"] += part["reconnects"]
    return merged
