"""Three managers on one PostgreSQL survive the leader's kill -9 and SIGSTOP.

kill -9: ten times, during a stream of submits over 10,000 stored tasks, the
leader is killed; no acknowledged submit is lost, a new leader accepts
submits (the failover times are printed; their p50/p99 goal is checked by
``python -m bench ha``), and a worker's task keeps running through every
failover (the worker reconciles with each new leader by Hello).

SIGSTOP: the leader is paused past its lease, a standby takes over, and the
old one, resumed, steps down; no row written under its old term lands after
the new term began. Throughout both, never two managers answer SERVING in
one 50 ms sampling round.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from ha_cluster import NOWHERE, SERVING, Managers, Sampler, Submitter
from pg import pg_cluster, pg_url
from waiting import eventually

from corral.client import Client
from corral.model import NodeStatus, TaskSpec, TaskState
from tests.integration.cluster import Proc

__all__ = ["pg_cluster", "pg_url"]

# Ten failovers over 10,000 stored tasks take a while on a loaded machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]
STORED = 10_000
REPETITIONS = 10


async def store_many(client: Client, count: int) -> None:
    for start in range(0, count, 1000):
        batch = [
            (TaskSpec(name=f"bulk-{i}", command=("true",), constraints=NOWHERE), f"bulk-{i}")
            for i in range(start, min(start + 1000, count))
        ]
        await client.submit_many(batch)


def start_worker(tmp_path: Path, targets: str) -> Proc:
    args = ["worker", "--manager", targets, "--name", "w1", "--listen", "127.0.0.1:0"]
    args += ["--data-dir", str(tmp_path / "w1"), "--runtimes", "process"]
    args += ["--reconnect-initial", "0.1", "--reconnect-max", "0.5"]
    return Proc("w1", args, tmp_path / "w1.log")


async def test_leader_kill_9_loses_no_acknowledged_submit(tmp_path: Path, pg_url: str) -> None:
    managers = Managers(tmp_path, pg_url, lease=2.0)
    managers.start_all()
    worker: Proc | None = None
    marker = f"{400 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"
    try:
        async with Client(managers.targets, timeout=10) as client, Sampler(managers) as sampler:
            await managers.leader()
            await store_many(client, STORED)
            worker = start_worker(tmp_path, managers.targets)
            await eventually(lambda: _node_ready(client), timeout=30, what=worker.output)
            sleeper = await client.submit(TaskSpec(name="sleeper", command=("sleep", marker)))
            running = await client.wait(sleeper.id, running=True, timeout=30)

            submitter = Submitter(client)
            submitter.start()
            failovers = []
            for _ in range(REPETITIONS):
                leader = await managers.leader()
                await submitter.first_ack_sent_after(time.monotonic())
                killed_at = time.monotonic()
                managers.kill(leader)
                failovers.append(await submitter.first_ack_sent_after(killed_at) - killed_at)
                managers.start(leader)
                await managers.answering(leader)
            await submitter.stop()

            stored = {t.id for t in await client.list_tasks()}
            lost = submitter.acked - stored
            assert not lost, f"acknowledged submits lost: {sorted(lost)[:10]}"
            assert len(stored) >= STORED + len(submitter.acked)
            # The worker's task ran through ten failovers, never restarted.
            after = await client.get_task(sleeper.id)
            assert after.status.state is TaskState.RUNNING, managers.logs()
            assert after.status.generation == running.status.generation
            assert (await client.find_node("w1")).status is NodeStatus.READY
            await client.stop_task(sleeper.id)
        assert sampler.rounds > 100
        assert sampler.most_serving == 1, f"two SERVING at once: {sampler.overlaps}"
        ordered = sorted(failovers)
        print(
            f"\nfailover (kill -9 -> first acknowledged submit), {REPETITIONS} times, "
            f"{STORED} tasks stored: p50 {statistics.median(ordered):.2f}s "
            f"max {ordered[-1]:.2f}s; {len(submitter.acked)} submits acknowledged, "
            f"{len(submitter.failed)} failed"
        )
    finally:
        if worker is not None:
            worker.stop()
        managers.close()


async def _node_ready(client: Client) -> bool:
    return any(n.status is NodeStatus.READY for n in await client.list_nodes())


async def rows_of_term(url: str, term: int) -> tuple[int, int]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            "SELECT (SELECT count(*) FROM tasks WHERE term = %s),"
            " (SELECT count(*) FROM events WHERE term = %s)",
            (term, term),
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def test_a_paused_leader_steps_down_and_lands_nothing(tmp_path: Path, pg_url: str) -> None:
    lease = 2.0
    managers = Managers(tmp_path, pg_url, lease=lease)
    managers.start_all()
    try:
        async with Client(managers.targets, timeout=10) as client, Sampler(managers) as sampler:
            old = await managers.leader()
            old_term, holder = await managers.lease_row()
            assert holder == managers.addresses[old]
            submitter = Submitter(client, width=8)
            submitter.start()
            await submitter.first_ack_sent_after(time.monotonic())

            paused_at = time.monotonic()
            managers.signal(old, signal.SIGSTOP)
            new = await managers.leader(besides=old)
            took_over = time.monotonic() - paused_at
            new_term, holder = await managers.lease_row()
            assert new_term > old_term and holder == managers.addresses[new]
            # Everything of the old term is in: the old leader is frozen.
            before = await rows_of_term(pg_url, old_term)

            # A client that knows only the old leader sends it a submit while it is paused.
            async with Client(managers.addresses[old], timeout=20) as stale:
                waiting = asyncio.create_task(
                    stale.submit(TaskSpec(name="late", command=("true",)), id="late-1")
                )
                managers.signal(old, signal.SIGCONT)
                late = await waiting
            await eventually(
                lambda: "stepping down" in managers.proc(old).output(),
                timeout=10,
                what=managers.logs,
            )
            assert await managers.status(old, 2.0) not in (SERVING, None)
            await submitter.first_ack_sent_after(time.monotonic())
            await submitter.stop()

            assert await rows_of_term(pg_url, old_term) == before
            # The late submit was refused by the deposed leader and landed with the new one.
            assert late.id == "late-1"
            async with await psycopg.AsyncConnection.connect(pg_url) as conn:
                cursor = await conn.execute("SELECT term FROM tasks WHERE id = 'late-1'")
                assert await cursor.fetchone() == (new_term,)
            stored = {t.id for t in await client.list_tasks()}
            assert not submitter.acked - stored
        assert sampler.most_serving == 1, f"two SERVING at once: {sampler.overlaps}"
        fenced = "commit fenced" in managers.proc(old).output()
        print(
            f"\nSIGSTOP: standby took over {took_over:.2f}s after the pause (lease {lease}s);"
            f" the old leader stepped down; fenced commit seen: {fenced}"
        )
    finally:
        managers.close()
