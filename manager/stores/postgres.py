"""The manager's tasks, attempts, nodes and events in PostgreSQL, with group commit.

The same contract as the SQLite backend, ``manager.store.Store`` (the core
cannot tell them apart): ``commit`` returns once the batch is durable, ``load`` gives the
raw rows to decode lazily, ``events`` replays the index. One writer loop
merges every batch queued meanwhile and writes them in ONE transaction of a
few statements, one per table: new rows by binary ``COPY``, changed rows by a
``COPY`` into a staging table and one ``UPDATE``. A thousand placements cost
a handful of round trips, not two thousand.

The writes run on a thread of their own over a synchronous connection, as the
SQLite store's large commits do: encoding the rows and psycopg's dumping still
take the GIL, but the waits on the server no longer run through the event
loop (psycopg's async wait machinery was a third of the writer's time on the
loop), and the network round trips overlap the loop's work.

Every write transaction is fenced: it first checks, under a share lock on the
lease row, that this manager's term is still current (``check_term``), and
stamps the rows it writes with that term. A deposed leader's commit fails
with ``Fenced``, which the store also reports to ``on_fenced`` so the manager
steps down at once instead of at its next renewal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from time import perf_counter
from typing import Any

import psycopg
from psycopg.types.string import BytesBinaryDumper
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from corral.model import Attempt, Event, Task, TaskId, TaskState, TaskStatus
from manager.leadership import Fenced, begin_fenced_sync, session_options, writer_name
from manager.store import Batch, Codec, Snapshot, TaskRow
from manager.store.rows import STATE_TEXT, attempt_from, event_rows
from manager.stores import postgres_schema

log = logging.getLogger(__name__)
POOL_SIZE = 4

# New rows arrive by binary COPY: psycopg formats a row in C, where an ``unnest`` of
# array parameters dumped every element in Python (half the writer's time), and the
# server parses it faster too. Changed rows are COPYed into a temporary table first.
_COPY_SPECS = "COPY specs (seq, spec) FROM STDIN (FORMAT BINARY)"
_SPEC_TYPES = ("int8", "bytea")
_COPY_TASKS = """COPY tasks (seq, id, name, state, node_id, generation, status, term)
    FROM STDIN (FORMAT BINARY)"""
_TASK_TYPES = ("int8", "text", "text", "text", "text", "int4", "bytea", "int8")
_COPY_EVENTS = """COPY events (idx, time, kind, task_id, node_id, message, payload, actor, term)
    FROM STDIN (FORMAT BINARY)"""
_EVENT_TYPES = ("int8", "float8", "text", "text", "text", "text", "bytea", "text", "int8")

# The writer connection's own staging tables, emptied by every commit. The one join
# the writer makes (staged statuses onto tasks) must probe the tasks' primary key once
# per staged row: the planner, which knows nothing of a temp table's rows, chose a hash
# join over a full scan of tasks, 22 ms per commit at 100,000 tasks and growing with
# the table, where the probes take 2 ms. Hash and merge joins are off for this
# connection only, which runs nothing else that joins.
_STAGING = (
    """CREATE TEMP TABLE IF NOT EXISTS staged_statuses (state TEXT, node_id TEXT,
    generation INTEGER, status BYTEA, seq BIGINT) ON COMMIT DELETE ROWS""",
    "CREATE TEMP TABLE IF NOT EXISTS staged_attempts (LIKE attempts) ON COMMIT DELETE ROWS",
    "SET enable_hashjoin = off",
    "SET enable_mergejoin = off",
)
_COPY_STATUSES = """COPY staged_statuses (state, node_id, generation, status, seq)
    FROM STDIN (FORMAT BINARY)"""
_STATUS_TYPES = ("text", "text", "int4", "bytea", "int8")
_UPDATE_TASKS = """UPDATE tasks t SET state = u.state, node_id = u.node_id,
    generation = u.generation, status = u.status, term = %s
    FROM staged_statuses u WHERE t.seq = u.seq"""
_COPY_ATTEMPTS = "COPY staged_attempts FROM STDIN (FORMAT BINARY)"
_ATTEMPT_TYPES = ("text", "int4", "text", "text", "int4", "text", "float8", "float8")
_UPSERT_ATTEMPTS = """INSERT INTO attempts SELECT * FROM staged_attempts
    ON CONFLICT (task_id, generation) DO UPDATE SET node_id = excluded.node_id,
    state = excluded.state, exit_code = excluded.exit_code, message = excluded.message,
    created_at = excluded.created_at, finished_at = excluded.finished_at"""
_UPSERT_NODES = """INSERT INTO nodes SELECT * FROM unnest(%b::text[], %b::bytea[])
    ON CONFLICT (id) DO UPDATE SET record = excluded.record"""

# Retention (manager.retention): finished tasks with their specs and attempts.
_FORGET_TASKS = "DELETE FROM tasks WHERE seq = ANY(%b::bigint[])"
_FORGET_SPECS = "DELETE FROM specs WHERE seq = ANY(%b::bigint[])"
_FORGET_ATTEMPTS = "DELETE FROM attempts WHERE task_id = ANY(%b::text[])"


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows as one list per column: what ``unnest`` takes."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


def _copy(
    conn: psycopg.Connection[Any], sql: str, types: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    with conn.cursor().copy(sql) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def _stage(conn: psycopg.Connection[Any]) -> None:
    """The writer pool's ``configure``: each new connection gets its staging tables.

    And bytes are dumped by psycopg's C dumper: a COPY column typed ``bytea`` otherwise
    takes the DB-API ``Binary`` dumper, registered last for that type and written in
    Python, which doubled the cost of a row of status bytes.
    """
    conn.adapters.register_dumper(bytes, BytesBinaryDumper)
    for sql in _STAGING:
        conn.execute(sql)


class PostgresStore:
    """The manager's state in PostgreSQL; see the module docstring."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        writer: ConnectionPool[Any],
        *,
        url: str,
        term: int,
        lease: float,
        codec: Codec,
        on_fenced: Callable[[], None],
    ) -> None:
        self.pool = pool
        # The group commits' own connection, used only from the writer thread.
        self.writer = writer
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="corral-pg-writer")
        self.codec = codec
        # The schedules store opens its own connection to the same database, same term.
        self.url = url
        self.term = term
        self.lease = lease
        self._on_fenced = on_fenced
        self._queue: list[tuple[Batch, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self._writing = False
        # Told (seconds, rows) after each group commit: the manager's metrics.
        self.on_commit: Callable[[float, int], None] | None = None

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        term: int,
        codec: Codec,
        lease: float = 4.0,
        on_fenced: Callable[[], None] = lambda: None,
    ) -> PostgresStore:
        """Connect (a pool) and migrate; writes are fenced by ``term``."""
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            postgres_schema.check_url(url),
            min_size=1,
            max_size=POOL_SIZE,
            kwargs={"autocommit": True, "options": session_options(lease)},
            open=False,
            name="corral-store",
        )
        writer: ConnectionPool[Any] = ConnectionPool(
            postgres_schema.check_url(url),
            min_size=1,
            max_size=1,
            # Named for its term: a standby that takes over ends this session if it is
            # still in a transaction (manager.leadership.writer_name).
            kwargs={
                "autocommit": True,
                "options": session_options(lease),
                "application_name": writer_name(term),
            },
            configure=_stage,
            open=False,
            name="corral-store-writer",
        )
        await pool.open(wait=True)
        try:
            async with pool.connection() as conn:
                await postgres_schema.migrate(conn)
            await asyncio.to_thread(writer.open, wait=True)
        except BaseException:
            await pool.close()
            await asyncio.to_thread(writer.close)
            raise
        store = cls(pool, writer, url=url, term=term, lease=lease, codec=codec, on_fenced=on_fenced)
        store._writer = asyncio.create_task(store._write_loop(), name="corral-pg-writer")
        return store

    async def schema_version(self) -> int:
        async with self.pool.connection() as conn:
            return await postgres_schema.version(conn)

    # -- reading ----------------------------------------------------------

    async def load(self) -> Snapshot:
        codec = self.codec
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT t.seq, t.id, t.name, t.state, t.node_id, t.generation, s.spec, t.status"
                " FROM tasks t JOIN specs s ON s.seq = t.seq ORDER BY t.seq",
                binary=True,
            )
            tasks = [
                TaskRow(
                    TaskId(i), seq, name, TaskState(state), node, gen, bytes(spec), bytes(st), codec
                )
                for seq, i, name, state, node, gen, spec, st in await cursor.fetchall()
            ]
            cursor = await conn.execute("SELECT record FROM nodes", binary=True)
            nodes = [codec.decode_node(bytes(blob)) for (blob,) in await cursor.fetchall()]
            cursor = await conn.execute("SELECT COALESCE(MAX(idx), 0) FROM events")
            row = await cursor.fetchone()
        return Snapshot(tasks, nodes, int(row[0]) if row else 0)

    async def attempt(self, task_id: str, generation: int) -> Attempt | None:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT task_id, generation, node_id, state, exit_code, message, created_at,"
                " finished_at FROM attempts WHERE task_id = %s AND generation = %s",
                (task_id, generation),
            )
            row = await cursor.fetchone()
        return attempt_from(row) if row else None

    async def events(
        self, from_index: int, until: int, kinds: Sequence[str] = (), limit: int = 1000
    ) -> list[Event]:
        """Stored events with ``from_index <= index <= until``, oldest first, at most ``limit``."""
        sql = (
            "SELECT e.idx, e.time, e.kind, e.task_id, e.message, e.payload, s.spec, e.actor"
            " FROM events e LEFT JOIN tasks t ON t.id = e.task_id"
            " LEFT JOIN specs s ON s.seq = t.seq WHERE e.idx >= %s AND e.idx <= %s"
        )
        args: list[Any] = [from_index, until]
        if kinds:
            # A prefix match, without LIKE's wildcards.
            sql += " AND EXISTS (SELECT 1 FROM unnest(%b::text[]) k WHERE starts_with(e.kind, k))"
            args.append(list(kinds))
        sql += " ORDER BY e.idx LIMIT %s"
        args.append(limit)
        async with self.pool.connection() as conn:
            cursor = await conn.execute(sql, args, binary=True)
            rows = await cursor.fetchall()
        out = []
        codec = self.codec
        for idx, time, kind, task_id, message, payload, spec, actor in rows:
            task = node = None
            if task_id and spec is not None and payload is not None:
                spec_, status = codec.decode_spec(bytes(spec)), codec.decode_status(bytes(payload))
                task = Task(TaskId(task_id), spec_, status)
            elif payload is not None:
                node = codec.decode_node(bytes(payload))
            out.append(Event(idx, time, kind, task=task, node=node, message=message, actor=actor))
        return out

    # -- writing ----------------------------------------------------------

    async def commit(self, batch: Batch) -> None:
        """Persist ``batch``; returns once it is committed (raises if the commit failed)."""
        if self._closed:
            raise RuntimeError("store is closed")
        if not batch:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((batch, future))
        self._wakeup.set()
        await future

    async def barrier(self) -> None:
        """Return once every batch queued before this call is committed."""
        if not self._queue and not self._writing:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((Batch(), future))
        self._wakeup.set()
        # Not contextlib.suppress: a sender calls this before every message it sends.
        try:  # noqa: SIM105
            await future
        except Exception:
            pass

    async def _write_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            queued, self._queue = self._queue, []
            if not queued:
                continue
            merged = Batch()
            for batch, _ in queued:
                merged.merge(batch)
            self._writing = True
            began = perf_counter()
            try:
                if merged:
                    loop = asyncio.get_running_loop()
                    await loop.run_in_executor(self._thread, self._write, merged)
            except Exception as err:
                if isinstance(err, Fenced):
                    log.warning("commit fenced: %s", err)
                    self._on_fenced()
                else:
                    log.exception("store commit failed")
                for _, future in queued:
                    if not future.done():
                        future.set_exception(err)
            else:
                if self.on_commit is not None and merged:
                    self.on_commit(perf_counter() - began, merged.size())
                for _, future in queued:
                    if not future.done():
                        future.set_result(None)
            finally:
                self._writing = False

    def _write(self, batch: Batch) -> None:
        """One group commit, on the writer thread."""
        codec = self.codec
        blobs: dict[int, bytes] = {}

        def encode_status(status: TaskStatus) -> bytes:
            blob = blobs.get(id(status))
            if blob is None:
                blob = blobs[id(status)] = codec.encode_status(status)
            return blob

        term = self.term
        latest = dict(batch.statuses)
        new_tasks = []
        for seq, task in batch.new_tasks:
            status = latest.pop(seq, task).status
            new_tasks.append(
                (seq, task.id, task.spec.name, STATE_TEXT[status.state], status.node_id,
                 status.generation, encode_status(status), term)
            )  # fmt: skip
        updates = [
            (STATE_TEXT[t.status.state], t.status.node_id, t.status.generation,
             encode_status(t.status), seq)
            for seq, t in latest.items()
        ]  # fmt: skip
        attempts = [
            (a.task_id, a.generation, a.node_id, STATE_TEXT[a.state], a.exit_code, a.message,
             a.created_at, a.finished_at)
            for a in batch.attempts.values()
        ]  # fmt: skip
        nodes = [(n.id, codec.encode_node(n)) for n in batch.nodes.values()]
        events = [
            (*row, term) for row in event_rows(batch.events, encode_status, codec.encode_node)
        ]
        specs = [(seq, codec.encode_spec(task.spec)) for seq, task in batch.new_tasks]
        with self.writer.connection() as conn:
            try:
                begin_fenced_sync(conn, term)
                if specs:
                    _copy(conn, _COPY_SPECS, _SPEC_TYPES, specs)
                if new_tasks:
                    _copy(conn, _COPY_TASKS, _TASK_TYPES, new_tasks)
                if updates:
                    _copy(conn, _COPY_STATUSES, _STATUS_TYPES, updates)
                    conn.execute(_UPDATE_TASKS, [term])
                if attempts:
                    _copy(conn, _COPY_ATTEMPTS, _ATTEMPT_TYPES, attempts)
                    conn.execute(_UPSERT_ATTEMPTS)
                if nodes:
                    conn.execute(_UPSERT_NODES, _columns(nodes, 2))
                if events:
                    _copy(conn, _COPY_EVENTS, _EVENT_TYPES, events)
                if batch.forgotten:
                    seqs = [seq for seq, _ in batch.forgotten]
                    conn.execute(_FORGET_TASKS, [seqs])
                    conn.execute(_FORGET_SPECS, [seqs])
                    conn.execute(_FORGET_ATTEMPTS, [[i for _, i in batch.forgotten]])
                if batch.events_below:
                    conn.execute("DELETE FROM events WHERE idx < %s", [batch.events_below])
                conn.commit()
            except BaseException:
                # The pool would roll back too, but with a warning. A broken connection
                # cannot, and the pool drops it.
                with contextlib.suppress(psycopg.Error):
                    conn.rollback()
                raise

    async def close(self) -> None:
        self._closed = True
        if self._writer is not None:
            await self.barrier()
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        await self.pool.close()
        await asyncio.to_thread(self.writer.close)
        self._thread.shutdown(wait=False)
