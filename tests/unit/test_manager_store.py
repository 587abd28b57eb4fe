"""The SQLite store: commit, reopen, schema version, batch atomicity, lazy loading."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pg import StoreOpener, open_store, pg_cluster, pg_url

from corral.model import (
    Attempt,
    Event,
    Node,
    NodeId,
    Resources,
    Task,
    TaskId,
    TaskSpec,
    TaskState,
    TaskStatus,
)
from manager.encoding import ProtoCodec, spec_cache
from manager.leadership import Leadership
from manager.store import Batch
from manager.store.sqlite import SCHEMA_VERSION, SqliteStore
from manager.stores import postgres
from manager.stores.postgres import PostgresStore


class Store:
    """The SQLite backend with the manager's codec."""

    @staticmethod
    async def open(path: Path) -> SqliteStore:
        return await SqliteStore.open(path, ProtoCodec(spec_cache()))


# The store tests that hold for both backends take ``open_store`` (SQLite, then PostgreSQL).
__all__ = ["open_store", "pg_cluster", "pg_url"]


def make(i: int, state: TaskState = TaskState.PENDING) -> Task:
    spec = TaskSpec(name=f"t{i}", command=("echo", str(i)), labels={"i": str(i)})
    return Task(TaskId(f"id{i}"), spec, TaskStatus(state=state, created_at=1.0 + i))


async def test_commit_then_reopen_returns_everything(open_store: StoreOpener) -> None:
    store = await open_store()
    batch = Batch()
    for i in range(3):
        batch.new_tasks.append((i + 1, make(i)))
    status = TaskStatus(state=TaskState.RUNNING, node_id="n1", generation=2)
    running = Task(TaskId("id1"), make(1).spec, status)
    batch.statuses[2] = running
    ended = Attempt(TaskId("id1"), 1, "n0", TaskState.FAILED, 1, "exit code 1")
    batch.attempts[("id1", 1)] = ended
    batch.nodes["n1"] = Node(NodeId("n1"), "n1", capacity=Resources(2, 1024))
    batch.events.append(Event(1, 1.0, "task.submitted", task=make(0)))
    batch.events.append(Event(2, 2.0, "task.state", task=running, message="running"))
    await store.commit(batch)
    await store.close()

    store = await open_store()
    snapshot = await store.load()
    assert [row.id for row in snapshot.tasks] == ["id0", "id1", "id2"]
    row = snapshot.tasks[1]
    assert (row.state, row.node_id, row.generation) == (TaskState.RUNNING, "n1", 2)
    assert await store.attempt("id1", 1) == ended
    assert await store.attempt("id1", 2) is None
    assert snapshot.nodes[0].capacity == Resources(2, 1024)
    assert snapshot.last_event == 2
    events = await store.events(1, 2)
    assert [e.kind for e in events] == ["task.submitted", "task.state"]
    assert events[1].task is not None and events[1].task.spec == make(1).spec
    assert events[1].task.status.node_id == "n1"
    assert (await store.events(2, 2, kinds=["task.submitted"])) == []
    await store.close()


async def test_a_failing_batch_stores_nothing(open_store: StoreOpener) -> None:
    store = await open_store()
    await store.commit(Batch(new_tasks=[(1, make(1))]))
    bad = Batch(new_tasks=[(2, make(2)), (3, make(1))])  # id1 again: primary key clash
    with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)):
        await store.commit(bad)
    snapshot = await store.load()
    assert [row.id for row in snapshot.tasks] == ["id1"]
    await store.close()


async def test_concurrent_commits_share_transactions(open_store: StoreOpener) -> None:
    store = await open_store()
    writes = 0
    original = store._write

    def counting(*args: Any) -> Any:
        nonlocal writes
        writes += 1
        return original(*args)

    store._write = counting  # type: ignore[method-assign]
    await asyncio.gather(*(store.commit(Batch(new_tasks=[(i, make(i))])) for i in range(1, 201)))
    assert writes < 200
    assert len((await store.load()).tasks) == 200
    await store.close()


async def test_schema_version(tmp_path: Path) -> None:
    store = await Store.open(tmp_path)
    assert store.schema_version() == SCHEMA_VERSION
    await store.close()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    store = await Store.open(tmp_path)
    await store.close()
    with sqlite3.connect(tmp_path / "manager.db") as db:
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(RuntimeError, match="schema 99"):
        await Store.open(tmp_path)


async def test_wal_mode(tmp_path: Path) -> None:
    store = await Store.open(tmp_path)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    await store.close()


@asynccontextmanager
async def leading_store(pg_url: str) -> AsyncIterator[PostgresStore]:
    """A PostgreSQL store opened by the leader of a fresh database."""
    leadership = Leadership(pg_url, advertise="test:1")
    await leadership.open()
    assert await leadership.try_acquire()
    store = await PostgresStore.open(pg_url, term=leadership.term, codec=ProtoCodec(spec_cache()))
    try:
        yield store
    finally:
        await store.close()
        await leadership.close()


async def test_postgresql_status_updates_probe_the_primary_key(pg_url: str) -> None:
    """A commit's status changes join the tasks by their key, never by a scan of all of
    them (which the planner chose, and which grew with the table)."""
    async with leading_store(pg_url) as store:
        batch = Batch()
        for i in range(5000):
            batch.new_tasks.append((i + 1, make(i)))
        await store.commit(batch)

        def explain() -> str:
            with store.writer.connection() as conn, conn.transaction():
                conn.execute("ANALYZE tasks")
                rows = [("running", "n1", 1, b"", seq) for seq in range(1, 2001)]
                postgres._copy(conn, postgres._COPY_STATUSES, postgres._STATUS_TYPES, rows)
                plan = conn.execute("EXPLAIN " + postgres._UPDATE_TASKS, [store.term])
                return "\n".join(row[0] for row in plan.fetchall())

        plan = await asyncio.to_thread(explain)
        assert "Index Scan using tasks_pkey" in plan, plan
        assert "Seq Scan on tasks" not in plan, plan


async def test_postgresql_tasks_leave_room_for_updates_in_place(pg_url: str) -> None:
    async with leading_store(pg_url) as store, store.pool.connection() as conn:
        cursor = await conn.execute("SELECT reloptions FROM pg_class WHERE relname = 'tasks'")
        row = await cursor.fetchone()
    assert row is not None and "fillfactor=50" in (row[0] or [])


async def test_barrier_waits_for_everything_queued_before_it(open_store: StoreOpener) -> None:
    """Sessions send an Assign only after ``barrier``: it must cover every batch queued
    before it, even one whose caller was cancelled while it waited."""
    import threading

    store = await open_store()
    gate = threading.Event()
    original = store._write

    def held(*args: Any) -> Any:
        gate.wait(30)
        return original(*args)

    store._write = held  # type: ignore[method-assign]
    # More rows than the SQLite store writes inline, so both backends write on a thread.
    first = asyncio.create_task(
        store.commit(Batch(new_tasks=[(i, make(i)) for i in range(1, 101)]))
    )
    await asyncio.sleep(0)
    second = asyncio.create_task(store.commit(Batch(new_tasks=[(101, make(101))])))
    await asyncio.sleep(0)
    second.cancel()  # its caller went away; its batch is still queued
    barrier = asyncio.create_task(store.barrier())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not barrier.done()
    gate.set()
    await barrier
    assert first.done()
    assert len((await store.load()).tasks) == 101
    await store.close()
