"""Three real ``corral manager`` processes on one PostgreSQL, and what the HA tests watch.

Each manager listens on a free loopback port chosen up front (so it can be
restarted on the same address after a ``kill -9``) and advertises it. The
``Sampler`` asks every manager's health check every 50 ms, each round on its
own clock whatever earlier rounds are doing (a paused manager answers
nothing: its probe times out), and remembers the most managers that answered
SERVING in one round: the invariant is that this never exceeds one.
``Submitter`` streams submits with client-chosen ids, remembering which were
acknowledged and when each was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc
from waiting import eventually, free_port

from corral.client import Client
from corral.errors import AlreadyExists, CorralError
from corral.model import TaskSpec
from corral.serving import channel
from tests.integration.cluster import Proc

SERVING = health_pb2.HealthCheckResponse.SERVING
SAMPLE_EVERY = 0.05
PROBE_TIMEOUT = 0.2
# Tasks that never place (no node has the label): they only need storing.
NOWHERE = {"zone": "nowhere"}


class Managers:
    def __init__(
        self, root: Path, url: str, *, lease: float, count: int = 3, flags: tuple[str, ...] = ()
    ) -> None:
        self.root = root
        self.url = url
        self.lease = lease
        # More `corral manager` flags for every manager (e.g. --acl).
        self.flags = flags
        self.addresses = [f"127.0.0.1:{free_port()}" for _ in range(count)]
        self.procs: list[Proc | None] = [None] * count
        self._all: list[Proc] = []

    @property
    def targets(self) -> str:
        return ",".join(self.addresses)

    def start(self, i: int) -> Proc:
        address = self.addresses[i]
        args = ["manager", "--listen", address, "--advertise", address, "--store", self.url]
        args += ["--lease-duration", str(self.lease), "--data-dir", str(self.root / f"m{i}")]
        # Workers stop their tasks after two thirds of the TTL without a manager (their
        # lease, Nomad's disconnect): the TTL must outlast a failover, as in production.
        args += ["--heartbeat-interval", "0.2", "--ttl", "30"]
        args += self.flags
        proc = Proc(f"manager{i}", args, self.root / f"manager{i}.log")
        self.procs[i] = proc
        self._all.append(proc)
        return proc

    def start_all(self) -> None:
        for i in range(len(self.addresses)):
            self.start(i)

    def proc(self, i: int) -> Proc:
        proc = self.procs[i]
        assert proc is not None
        return proc

    def kill(self, i: int) -> None:
        self.proc(i).kill()

    def signal(self, i: int, sig: signal.Signals) -> None:
        os.kill(self.proc(i).pid, sig)

    async def status(self, i: int, timeout: float = PROBE_TIMEOUT) -> int | None:
        """Manager i's health (None when it does not answer in time)."""
        async with channel(self.addresses[i]) as ch:
            try:
                reply = await health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(), timeout=timeout
                )
            except Exception:
                return None
        return int(reply.status)

    async def leader(self, *, timeout: float = 30.0, besides: int | None = None) -> int:
        """The index of the manager that answers SERVING (other than ``besides``)."""

        async def serving() -> list[int]:
            found = await asyncio.gather(*(self.status(i, 1.0) for i in range(len(self.addresses))))
            return [i for i, s in enumerate(found) if s == SERVING and i != besides]

        return (await eventually(serving, timeout=timeout, what=self.logs))[0]

    async def answering(self, i: int, timeout: float = 30.0) -> None:
        """Wait until manager i answers its health check at all (a standby: NOT_SERVING)."""
        await eventually(
            lambda: self.status(i, 1.0), timeout=timeout, what=lambda: self.proc(i).output()
        )

    async def lease_row(self) -> tuple[int, str]:
        async with await psycopg.AsyncConnection.connect(self.url) as conn:
            cursor = await conn.execute("SELECT term, holder FROM lease")
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0]), str(row[1])

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.output()[-3000:]}" for p in self._all)

    def close(self) -> None:
        for proc in self._all:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGCONT)
            proc.stop()


@dataclass
class Sampler:
    managers: Managers
    rounds: int = 0
    most_serving: int = 0
    overlaps: list[tuple[float, list[int]]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _pending: set[asyncio.Task[None]] = field(default_factory=set)

    async def _round(self) -> None:
        count = len(self.managers.addresses)
        found = await asyncio.gather(*(self.managers.status(i) for i in range(count)))
        serving = [i for i, s in enumerate(found) if s == SERVING]
        self.rounds += 1
        self.most_serving = max(self.most_serving, len(serving))
        if len(serving) > 1:
            self.overlaps.append((time.time(), serving))

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        tick = loop.time()
        while True:
            task = asyncio.create_task(self._round())
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            tick += SAMPLE_EVERY
            await asyncio.sleep(max(tick - loop.time(), 0))

    async def __aenter__(self) -> Sampler:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, *self._pending, return_exceptions=True)


@dataclass
class Submitter:
    """Submits with ids ``{prefix}-{n}`` from ``width`` coroutines until stopped."""

    client: Client
    prefix: str = "s"
    width: int = 4
    acked: set[str] = field(default_factory=set)
    # (sent, acknowledged) monotonic times of every acknowledged submit.
    times: list[tuple[float, float]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    _n: int = 0
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _ack: asyncio.Event = field(default_factory=asyncio.Event)

    async def _one(self) -> None:
        while True:
            self._n += 1
            task_id = f"{self.prefix}-{self._n}"
            spec = TaskSpec(name=task_id, command=("true",), constraints=NOWHERE)
            sent = time.monotonic()
            try:
                await self.client.submit(spec, id=task_id)
            except AlreadyExists:
                pass  # stored by a leader that died before answering; the retry found it
            except CorralError as err:
                self.failed.append(f"{task_id}: {err}")
                continue
            self.acked.add(task_id)
            self.times.append((sent, time.monotonic()))
            self._ack.set()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._one()) for _ in range(self.width)]

    async def first_ack_sent_after(self, moment: float, timeout: float = 30.0) -> float:
        """When the first submit sent after ``moment`` was acknowledged."""
        async with asyncio.timeout(timeout):
            while True:
                later = [acked for sent, acked in self.times if sent >= moment]
                if later:
                    return min(later)
                self._ack.clear()
                await self._ack.wait()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
