"""A real worker (``worker.server.serve``) against a fake manager written here.

The fake manager is an in-process ``grpc.aio`` server implementing only
``Connect``: it records every message the worker sends and sends whatever a
test queues. Tests wait for conditions (polling with a deadline), never sleep
for a fixed time to let something happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import psutil
import pytest
from waiting import eventually

from corral import convert
from corral.model import Disconnect, FakeSpec, TaskSpec, TaskState
from corral.v1 import manager_pb2, manager_pb2_grpc, types_pb2, worker_pb2, worker_pb2_grpc
from worker.config import WorkerConfig
from worker.server import RunningWorker, serve

HEARTBEAT = 0.1


class FakeManager(manager_pb2_grpc.ManagerServiceServicer):
    def __init__(self) -> None:
        self.hellos: list[manager_pb2.Hello] = []
        self.messages: list[manager_pb2.WorkerMessage] = []
        self.outgoing: asyncio.Queue[manager_pb2.ManagerMessage] = asyncio.Queue()
        # Answer heartbeats with lease renewals, as the real manager does.
        self.renew = True
        # Long enough for a worker restarted by a test to come back within its
        # launchers' grace ((TTL - heartbeat) / 2, see worker.fencing).
        self.ttl = 3.0
        # Sent right after Welcome, as the real manager sends Reconcile.
        self.after_welcome: Callable[[manager_pb2.Hello], list[manager_pb2.ManagerMessage]] = (
            lambda hello: []
        )

    async def Connect(self, request_iterator: Any, context: Any) -> None:
        first = await context.read()
        self.hellos.append(first.hello)
        await context.write(
            manager_pb2.ManagerMessage(
                welcome=manager_pb2.Welcome(
                    node_id=first.hello.node_id,
                    heartbeat_interval=convert.duration(HEARTBEAT),
                    ttl=convert.duration(self.ttl),
                    session_epoch=len(self.hellos),
                )
            )
        )
        for message in self.after_welcome(first.hello):
            await context.write(message)

        async def read() -> None:
            while (message := await context.read()) is not grpc.aio.EOF:
                self.messages.append(message)
                if message.WhichOneof("kind") == "heartbeat" and self.renew:
                    renewal = manager_pb2.LeaseRenewal(seq=message.heartbeat.seq)
                    self.outgoing.put_nowait(manager_pb2.ManagerMessage(lease=renewal))

        async def write() -> None:
            while True:
                await context.write(await self.outgoing.get())

        loops = [asyncio.ensure_future(read()), asyncio.ensure_future(write())]
        try:
            await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    # -- what the worker said --------------------------------------------------

    def of_kind(self, kind: str) -> list[Any]:
        return [getattr(m, kind) for m in self.messages if m.WhichOneof("kind") == kind]

    def updates(self, task_id: str | None = None) -> list[manager_pb2.TaskUpdate]:
        return [
            u
            for batch in self.of_kind("updates")
            for u in batch.updates
            if task_id is None or u.task_id == task_id
        ]

    def states(self, task_id: str) -> list[TaskState]:
        return [convert.state_from(u.state) for u in self.updates(task_id)]

    def send(self, **kind: Any) -> None:
        self.outgoing.put_nowait(manager_pb2.ManagerMessage(**kind))

    def assign(self, *items: tuple[str, int, TaskSpec]) -> None:
        self.send(
            assign=manager_pb2.Assign(
                assignments=[
                    manager_pb2.Assignment(task_id=t, generation=g, spec=convert.spec_to(s))
                    for t, g, s in items
                ]
            )
        )


class ManagerServer:
    """The fake manager; a new one binds port 0 unless given the port of one that went
    away, so a manager can go away and come back at the same address."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.fake = FakeManager()
        self.server: grpc.aio.Server | None = None

    async def start(self) -> None:
        self.server = grpc.aio.server()
        manager_pb2_grpc.add_ManagerServiceServicer_to_server(self.fake, self.server)
        port = self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        assert port and self.port in (0, port)
        self.port = port
        await self.server.start()

    async def stop(self) -> None:
        assert self.server is not None
        await self.server.stop(0)


@pytest.fixture
async def manager() -> Any:
    server = ManagerServer()
    await server.start()
    yield server
    await server.stop()


def config(tmp_path: Path, manager_port: int, **kw: Any) -> WorkerConfig:
    return WorkerConfig(
        manager=f"127.0.0.1:{manager_port}",
        listen="127.0.0.1:0",
        data_dir=tmp_path / "worker",
        name="w1",
        labels={"zone": "a"},
        runtimes=("process", "fake"),
        reconnect_initial=0.05,
        reconnect_max=0.3,
        **kw,
    )


@pytest.fixture
async def worker(tmp_path: Path, manager: ManagerServer) -> Any:
    running = await serve(config(tmp_path, manager.port))
    yield running
    await shutdown(running)


async def shutdown(running: RunningWorker) -> None:
    """Stop the worker AND what it runs (a real worker leaves its tasks running)."""
    from worker.runtimes.base import AttemptRef

    sup = running.supervisor
    for update in sup.current():
        sup.stop_running(AttemptRef(update.task_id, update.generation), reason="test over")
    await eventually(lambda: sup.running_count == 0)
    await running.stop()


def fake(duration: float = 0.0, **kw: Any) -> TaskSpec:
    return TaskSpec(name="f", runtime="fake", fake=FakeSpec(duration=duration), **kw)


def process(*argv: str, **kw: Any) -> TaskSpec:
    return TaskSpec(name="p", runtime="process", command=argv, **kw)


# -- Hello and heartbeats ---------------------------------------------------------


async def test_hello_tells_who_the_node_is(
    tmp_path: Path, manager: ManagerServer, worker: RunningWorker
) -> None:
    await eventually(lambda: manager.fake.hellos)
    hello = manager.fake.hellos[0]
    assert hello.node_id == worker.node_id
    assert (tmp_path / "worker" / "node-id").read_text().strip() == worker.node_id
    assert hello.name == "w1"
    assert hello.address == f"127.0.0.1:{worker.port}" and worker.port > 0
    assert dict(hello.labels) == {"zone": "a"}
    assert list(hello.runtimes) == ["process", "fake"]
    assert hello.capacity.cpu >= 1 and hello.capacity.memory_bytes > 0
    assert hello.capacity.disk_bytes > 0
    assert list(hello.attempts) == []
    assert hello.version and hello.version != "0.0.0"


async def test_capacity_can_be_configured_and_node_id_is_stable(
    tmp_path: Path, manager: ManagerServer
) -> None:
    from corral.model import Resources

    cfg = config(tmp_path, manager.port, capacity=Resources(cpu=3.5))
    first = await serve(cfg)
    await eventually(lambda: manager.fake.hellos)
    await first.stop()
    second = await serve(cfg)
    await eventually(lambda: len(manager.fake.hellos) == 2)
    await shutdown(second)
    one, two = manager.fake.hellos
    assert one.node_id == two.node_id == first.node_id == second.node_id
    assert one.capacity.cpu == 3.5 and one.capacity.memory_bytes > 0


async def test_heartbeats_carry_stats(manager: ManagerServer, worker: RunningWorker) -> None:
    fm = manager.fake
    await eventually(lambda: len(fm.of_kind("heartbeat")) >= 3)
    beats = fm.of_kind("heartbeat")
    assert [b.seq for b in beats[:3]] == [1, 2, 3]
    stats = beats[-1].stats
    assert stats.memory_total_bytes > 0 and 0 < stats.memory_used_bytes <= stats.memory_total_bytes
    assert stats.disk_total_bytes > 0
    # The 1-minute load average moves slowly: the heartbeat's agrees with the OS's.
    assert abs(stats.load1 - os.getloadavg()[0]) < 2.0
    assert stats.task_count == 0 and stats.container_memory_bytes == 0
    # What the runtimes run shows up: the task count and the processes' memory.
    fm.assign(("busy", 1, process("sleep", "30")))
    await eventually(lambda: fm.states("busy"))
    await eventually(lambda: fm.of_kind("heartbeat")[-1].stats.container_memory_bytes > 0)
    assert fm.of_kind("heartbeat")[-1].stats.task_count == 1


# -- assignments, acks and updates ------------------------------------------------------


async def test_assignments_are_acked_once_and_run_once(
    manager: ManagerServer, worker: RunningWorker
) -> None:
    fm = manager.fake
    await eventually(lambda: fm.hellos)
    items = [(f"t{i}", 1, fake(0.3)) for i in range(200)]
    fm.assign(*items)
    await eventually(lambda: len(fm.updates()) >= 400)
    # They all started at once: each one's RUNNING, in the same write, is its ack
    # (the manager takes an update as one), so no separate Ack message goes up.
    assert fm.of_kind("ack") == []
    for i in range(200):
        assert fm.states(f"t{i}") == [TaskState.RUNNING, TaskState.COMPLETED]
    # Batched: 400 updates in far fewer messages (one per update would be 400; how few
    # depends on the machine's load, which is bench's business, not a test's).
    assert len(fm.of_kind("updates")) < 200
    # Re-delivery of the same generation, or an older one, is acked but not run again.
    fm.assign(("t0", 1, fake(0.0)))
    fm.assign(("t1", 0, fake(0.0)))
    # Nothing reports those, so they are acked: one Ack each (two reader turns).
    await eventually(lambda: sum(len(a.attempts) for a in fm.of_kind("ack")) == 2)
    fm.assign(("t2", 2, fake(0.0)))  # a newer generation runs
    await eventually(lambda: len(fm.states("t2")) == 4)
    assert len(fm.states("t0")) == 2 and len(fm.states("t1")) == 2
    assert [u.generation for u in fm.updates("t2")] == [1, 1, 2, 2]


async def test_process_task_reports_exit_codes(
    manager: ManagerServer, worker: RunningWorker
) -> None:
    fm = manager.fake
    await eventually(lambda: fm.hellos)
    fm.assign(
        ("ok", 1, process("sh", "-c", "echo hi")),
        ("bad", 1, process("sh", "-c", "exit 4")),
        ("missing", 1, process("no-such-binary-here")),
        ("elsewhere", 1, TaskSpec(name="d", runtime="docker", image="busybox")),
    )
    await eventually(lambda: all(len(fm.states(t)) >= 1 for t in ("missing", "elsewhere")))
    await eventually(lambda: len(fm.states("ok")) == 2 and len(fm.states("bad")) == 2)
    (ok,) = [u for u in fm.updates("ok") if u.state == types_pb2.TASK_STATE_COMPLETED]
    assert ok.exit_code == 0
    bad = fm.updates("bad")[-1]
    assert convert.state_from(bad.state) is TaskState.FAILED
    assert bad.exit_code == 4 and bad.message == "exit code 4"
    (missing,) = fm.updates("missing")
    assert convert.state_from(missing.state) is TaskState.FAILED
    assert "executable not found: no-such-binary-here" in missing.message
    (elsewhere,) = fm.updates("elsewhere")
    assert "runtime 'docker' is not available" in elsewhere.message


async def test_stop_order_stops_the_attempt(manager: ManagerServer, worker: RunningWorker) -> None:
    fm = manager.fake
    await eventually(lambda: fm.hellos)
    fm.assign(("long", 1, process("sleep", "60")), ("f", 1, fake(3600)))
    await eventually(lambda: fm.states("long") == [TaskState.RUNNING] and fm.states("f"))
    fm.send(
        stop=manager_pb2.Stop(
            orders=[
                manager_pb2.StopOrder(
                    task_id="long", generation=1, reason="user asked", grace=convert.duration(5)
                ),
                manager_pb2.StopOrder(task_id="f", generation=1, reason="user asked"),
            ]
        )
    )
    await eventually(lambda: len(fm.states("long")) == 2 and len(fm.states("f")) == 2)
    stopped = fm.updates("long")[-1]
    assert convert.state_from(stopped.state) is TaskState.STOPPED
    assert stopped.message == "user asked" and stopped.exit_code == 143
    assert fm.states("f")[-1] is TaskState.STOPPED
    # A stop for an attempt the node never ran is answered, so the manager converges.
    fm.send(stop=manager_pb2.Stop(orders=[manager_pb2.StopOrder(task_id="ghost", generation=3)]))
    await eventually(lambda: fm.states("ghost") == [TaskState.STOPPED])


async def test_deadline_and_health_end_attempts(
    manager: ManagerServer, worker: RunningWorker, closed_port: int
) -> None:
    from corral.model import HealthCheck, TcpProbe

    fm = manager.fake
    await eventually(lambda: fm.hellos)
    closed = closed_port
    unhealthy = process(
        "sleep",
        "60",
        health_check=HealthCheck(TcpProbe(closed), interval=0.05, timeout=1, failure_threshold=2),
    )
    fm.assign(("slow", 1, fake(60, deadline=0.3)), ("sick", 1, unhealthy))
    await eventually(lambda: len(fm.states("slow")) == 2 and len(fm.states("sick")) == 2)
    slow = fm.updates("slow")[-1]
    assert convert.state_from(slow.state) is TaskState.FAILED
    assert "deadline of 0.3s exceeded" in slow.message
    sick = fm.updates("sick")[-1]
    assert convert.state_from(sick.state) is TaskState.FAILED
    assert sick.message.startswith(f"unhealthy: tcp 127.0.0.1:{closed}")
    assert convert.health_from(sick.health).value == "unhealthy"


# -- WorkerService -------------------------------------------------------------------------


async def test_worker_service_lists_attempts_stats_and_logs(
    manager: ManagerServer, worker: RunningWorker
) -> None:
    fm = manager.fake
    await eventually(lambda: fm.hellos)
    fm.assign(("done", 1, process("sh", "-c", "for i in 1 2 3 4; do echo line$i; done")))
    fm.assign(("live", 1, process("sh", "-c", "echo first; exec sleep 30")))
    await eventually(lambda: len(fm.states("done")) == 2 and fm.states("live"))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{worker.port}") as ch:
        stub = worker_pb2_grpc.WorkerServiceStub(ch)
        listed = await stub.ListAttempts(worker_pb2.ListAttemptsRequest(), timeout=5)
        states = {a.task_id: convert.state_from(a.state) for a in listed.attempts}
        assert states == {"done": TaskState.COMPLETED, "live": TaskState.RUNNING}
        assert {a.node_id for a in listed.attempts} == {worker.node_id}

        stats = await stub.GetStats(worker_pb2.GetStatsRequest(), timeout=5)
        assert stats.capacity.cpu >= 1 and stats.stats.task_count == 1

        async def logs(**kw: Any) -> bytes:
            call = stub.StreamLogs(worker_pb2.StreamLogsRequest(**kw), timeout=10)
            return b"".join([r.data async for r in call])

        assert await logs(task_id="done") == b"line1\nline2\nline3\nline4\n"
        assert await logs(task_id="done", generation=1, tail=2) == b"line3\nline4\n"
        # Follow streams while the attempt runs (its first line arrives while it
        # still runs) and ends when it does.
        follow = stub.StreamLogs(
            worker_pb2.StreamLogsRequest(task_id="live", follow=True), timeout=10
        )
        stream = aiter(follow)
        seen = b""
        while not seen.endswith(b"\n"):
            seen += (await anext(stream)).data
        assert seen == b"first\n"
        assert follow.done() is False
        fm.send(stop=manager_pb2.Stop(orders=[manager_pb2.StopOrder(task_id="live", generation=1)]))
        assert b"".join([r.data async for r in stream]) == b""
        assert await follow.code() == grpc.StatusCode.OK

        with pytest.raises(grpc.aio.AioRpcError) as err:
            await logs(task_id="nope")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


# -- losing the manager, reconciling, restarting ----------------------------------------------


async def test_tasks_keep_running_while_the_manager_is_away(
    tmp_path: Path, manager: ManagerServer, worker: RunningWorker
) -> None:
    fm = manager.fake
    await eventually(lambda: fm.hellos)
    fm.assign(
        ("keep", 1, process("sleep", "60")),
        ("drop", 1, process("sleep", "60")),
        ("quick", 1, fake(0.5)),
    )
    names = ("keep", "drop", "quick")
    await eventually(lambda: all(fm.states(t) == [TaskState.RUNNING] for t in names))
    pids = await started_pids("keep", tmp_path)
    assert len(pids) == 1
    await manager.stop()
    await eventually(lambda: not worker.session.connected.is_set())
    # "quick" ends while nobody listens; "keep" runs on.
    await eventually(lambda: worker.supervisor.running_count == 2)
    assert _task_pids("keep", tmp_path) == pids

    # The manager comes back: it keeps "keep" and no longer gives the node "drop".
    fresh = ManagerServer(manager.port)
    fresh.fake.after_welcome = lambda hello: [
        manager_pb2.ManagerMessage(
            reconcile=manager_pb2.Reconcile(
                keep=[manager_pb2.AttemptRef(task_id="keep", generation=1)],
                stop=[manager_pb2.AttemptRef(task_id="drop", generation=1)],
            )
        )
    ]
    await fresh.start()
    try:
        await eventually(lambda: fresh.fake.hellos)
        await eventually(worker.session.connected.is_set)
        hello = fresh.fake.hellos[0]
        reported = {(a.task_id, a.generation): convert.state_from(a.state) for a in hello.attempts}
        assert reported == {
            ("keep", 1): TaskState.RUNNING,
            ("drop", 1): TaskState.RUNNING,
            ("quick", 1): TaskState.COMPLETED,
        }
        await eventually(lambda: fresh.fake.states("drop") == [TaskState.STOPPED])
        assert "no longer assigns it" in fresh.fake.updates("drop")[0].message
        assert fresh.fake.states("keep") == [] and _task_pids("keep", tmp_path) == pids
    finally:
        await fresh.stop()
        manager.server = fresh.server  # the fixture stops it again: harmless


async def test_a_restarted_worker_adopts_instead_of_duplicating(
    tmp_path: Path, manager: ManagerServer, closed_port: int
) -> None:
    from corral.model import HealthCheck, TcpProbe

    fm = manager.fake
    first = await serve(config(tmp_path, manager.port))
    await eventually(lambda: fm.hellos)
    closed = closed_port
    check = HealthCheck(TcpProbe(closed), interval=0.05, failure_threshold=2, initial_delay=2.0)
    fm.assign(
        ("adopt", 1, process("sleep", "60")),
        ("ends", 1, process("sh", "-c", "read x < /dev/null; sleep 0.5; exit 3")),
        ("sick", 1, process("sleep", "60", health_check=check)),
        ("said", 1, process("echo", "said")),
    )
    await eventually(lambda: all(fm.states(t) for t in ("adopt", "ends", "sick")))
    await eventually(lambda: fm.states("said")[-1:] == [TaskState.COMPLETED])
    pids = await started_pids("adopt", tmp_path)
    await first.stop()  # the worker goes; its tasks stay

    # "ends" ends while no worker runs (its launcher records the status).
    await eventually((tmp_path / "worker" / "process" / "ends.1.status").exists)
    second = await serve(config(tmp_path, manager.port))
    try:
        await eventually(lambda: len(fm.hellos) == 2)
        hello = fm.hellos[1]
        assert hello.node_id == first.node_id
        reported = {a.task_id: a for a in hello.attempts}
        assert convert.state_from(reported["adopt"].state) is TaskState.RUNNING
        assert convert.state_from(reported["sick"].state) is TaskState.RUNNING
        ends = reported["ends"]
        assert convert.state_from(ends.state) is TaskState.FAILED and ends.exit_code == 3
        # Re-delivery after the restart does not start a second copy.
        before = len(fm.of_kind("ack"))
        fm.assign(("adopt", 1, process("sleep", "60")))
        # Acked (received), and nothing more: no update, no second process.
        await eventually(lambda: len(fm.of_kind("ack")) == before + 1)
        assert [a.task_id for a in fm.of_kind("ack")[-1].attempts] == ["adopt"]
        assert _task_pids("adopt", tmp_path) == pids
        # The adopted attempt kept its spec: its health check still runs.
        await eventually(lambda: fm.states("sick")[-1:] == [TaskState.FAILED])
        # Output of an attempt that ended before the restart is still served.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as ch:
            stub = worker_pb2_grpc.WorkerServiceStub(ch)
            request = worker_pb2.StreamLogsRequest(task_id="said")
            chunks = [r.data async for r in stub.StreamLogs(request, timeout=5)]
            assert b"".join(chunks) == b"said\n"
        # And it can be stopped by its new worker.
        fm.send(
            stop=manager_pb2.Stop(orders=[manager_pb2.StopOrder(task_id="adopt", generation=1)])
        )
        await eventually(lambda: fm.states("adopt")[-1:] == [TaskState.STOPPED])
        await eventually(lambda: not _task_pids("adopt", tmp_path))
    finally:
        await shutdown(second)


async def started_pids(task_id: str, root: Path) -> list[int]:
    """The task's own processes once its launcher has started them: RUNNING is reported
    as soon as the launcher runs, a moment before argv's process exists."""
    return await eventually(lambda: _task_pids(task_id, root), what=f"{task_id}'s process")


def _task_pids(task_id: str, root: Path) -> list[int]:
    """Pids of the task's own processes: children of its launcher under ``root``.

    Other tests (and other runs) may run tasks with the same ids at the same
    time, so the launcher's status-file argument must lie under this test's dir.
    """
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if cmd[:2] != ["/bin/sh", "-c"] or len(cmd) < 4:
            continue
        status = Path(cmd[3])
        if status.is_relative_to(root) and status.name.startswith(f"{task_id}."):
            # Not the launcher's watchdog (a fork of the launcher, or its `sleep`
            # of the grace or kill wait, cmd[5:7]: see worker.runtimes.launching).
            watchdog = [cmd, *(["sleep", t] for t in cmd[5:7])]
            with contextlib.suppress(psutil.Error):
                found.extend(c.pid for c in proc.children() if c.cmdline() not in watchdog)
    return found


# -- fencing: the lease and the launchers' watchdog (worker.fencing) ----------------------------


async def test_attempts_run_on_while_the_manager_renews_the_lease(
    tmp_path: Path, manager: ManagerServer
) -> None:
    fm = manager.fake
    fm.ttl = 0.6  # stop_after 0.4 s: ten heartbeats span it several times over
    running = await serve(config(tmp_path, manager.port))
    try:
        await eventually(lambda: fm.hellos)
        fm.assign(("kept", 1, process("sleep", "60")))
        await eventually(lambda: fm.states("kept") == [TaskState.RUNNING])
        seen = len(fm.of_kind("heartbeat"))
        await eventually(lambda: len(fm.of_kind("heartbeat")) >= seen + 10)
        assert fm.states("kept") == [TaskState.RUNNING]
        assert running.session.lease.age() is not None
    finally:
        await shutdown(running)


async def test_a_worker_that_cannot_renew_its_lease_stops_its_attempts(
    tmp_path: Path, manager: ManagerServer
) -> None:
    fm = manager.fake
    fm.ttl, fm.renew = 0.6, False
    running = await serve(config(tmp_path, manager.port))
    try:
        await eventually(lambda: fm.hellos)
        fm.assign(
            ("fenced", 1, process("sleep", "60")),
            # replace=False: the manager never runs a second copy, so nothing stops it.
            ("waits", 1, process("sleep", "60", disconnect=Disconnect(replace=False))),
        )
        await eventually(lambda: TaskState.RUNNING in fm.states("fenced"))
        pids = await started_pids("fenced", tmp_path)
        await eventually(lambda: fm.states("fenced") == [TaskState.RUNNING, TaskState.LOST])
        lost = fm.updates("fenced")[-1]
        assert "no lease from the manager" in lost.message and "stop_after 0.4s" in lost.message
        # Reported once the process has ended: it is gone before the update.
        assert not any(psutil.pid_exists(p) for p in pids)
        assert fm.states("waits") == [TaskState.RUNNING]
    finally:
        await shutdown(running)


async def test_a_launcher_stops_its_task_when_its_worker_is_gone_past_the_grace(
    tmp_path: Path, manager: ManagerServer
) -> None:
    fm = manager.fake
    fm.ttl = 0.6  # grace (0.6 - 0.1) / 2 = 0.25 s
    running = await serve(config(tmp_path, manager.port))
    await eventually(lambda: fm.hellos)
    fm.assign(("orphan", 1, process("sleep", "60")))
    await eventually(lambda: fm.states("orphan") == [TaskState.RUNNING])
    pids = await started_pids("orphan", tmp_path)
    assert len(pids) == 1
    await running.stop()  # releases the beacon, as the kernel does for a killed worker
    status = tmp_path / "worker" / "process" / "orphan.1.status"
    await eventually(status.exists)
    assert status.read_text().strip() == "143"  # SIGTERM from its own watchdog
    assert not psutil.pid_exists(pids[0])
