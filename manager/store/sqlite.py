"""The SQLite backend of ``manager.store.Store``: WAL mode under the data dir, group commit.

Every accepted change is committed before the caller is answered: the core
queues a ``Batch`` and awaits ``commit``. One writer loop takes every batch
queued meanwhile and commits them in ONE transaction, then resolves all the
waiters: under load, thousands of changes share one commit. Large batches are
written on a dedicated thread (an executor of one) so the event loop keeps
serving meanwhile; a batch of a few rows is written on the loop's own thread,
which is cheaper than the two thread handoffs (nothing waits for the disk:
no fsync on commit, see ``_connect``).

Specs, statuses and nodes are stored as the bytes the ``Codec`` makes (their
protobuf encodings: a stable, versioned format that survives code changes,
unlike pickles); events
store the status of their task at that moment, and take the spec from the
task's row when replayed. Loading is lazy: a restart reads the raw rows and
decodes a task only when something asks for it, so 100,000 stored tasks
restart in well under a second.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from time import perf_counter
from typing import Any

from corral.model import Attempt, Event, Task, TaskId, TaskState, TaskStatus
from manager import sqlitefiles
from manager.store import Batch, Codec, Snapshot, TaskRow
from manager.store.rows import STATE_TEXT, attempt_from, event_rows
from manager.store.sqlite_schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger(__name__)

# The store's file under the data dir (the ACL tokens keep their tables in it too).
DB_FILE = "manager.db"
CHECKPOINT_PERIOD = 1.0
# Batches up to this many rows commit on the event loop's thread, larger ones on the store's.
INLINE_ROWS = 64


class SqliteStore:
    """The manager's SQLite database; see the module docstring."""

    def __init__(self, path: Path, codec: Codec) -> None:
        self.path = path
        self.codec = codec
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="corral-store")
        self._db: sqlite3.Connection | None = None
        # Reads run on the store's thread while small commits run on the event
        # loop's (see _write_loop), so they have their own connection: WAL shows
        # it only committed data.
        self._reader: sqlite3.Connection | None = None
        # Each batch with its specs' bytes, encoded on the event loop's thread when
        # queued: the codec's cache of wire messages is the loop's alone.
        self._queue: list[tuple[Batch, list[tuple[int, bytes]], asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self._writing = False
        # Told (seconds, rows) after each group commit: the manager's metrics.
        self.on_commit: Callable[[float, int], None] | None = None
        # Checkpoints (the only fsyncs in WAL mode with synchronous=NORMAL) run on
        # their own connection and thread, so a commit never waits for the disk.
        self._checkpoints = ThreadPoolExecutor(max_workers=1, thread_name_prefix="corral-ckpt")
        self._checkpointer: asyncio.Task[None] | None = None
        self._dirty = False
        self._event_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    async def open(cls, data_dir: Path, codec: Codec) -> SqliteStore:
        store = cls(data_dir / DB_FILE, codec)
        try:
            await store._run(store._connect)
        except BaseException:
            store._executor.shutdown(wait=False)
            store._checkpoints.shutdown(wait=False)
            raise
        store._writer = asyncio.create_task(store._write_loop(), name="corral-store-writer")
        store._checkpointer = asyncio.create_task(store._checkpoint_loop(), name="corral-ckpt")
        return store

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await self._loop().run_in_executor(self._executor, fn, *args)

    def _loop(self) -> asyncio.AbstractEventLoop:
        # asyncio.get_running_loop() makes a getpid() system call each time (3.11);
        # commits ask for the loop thousands of times a second.
        if self._event_loop is None:
            self._event_loop = asyncio.get_running_loop()
        return self._event_loop

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "store is closed"
        return self._db

    def _connect(self) -> None:
        db = sqlitefiles.connect(self.path, check_same_thread=False)
        # After a checkpoint the WAL file is cut back to this size rather than kept at its peak.
        db.execute("PRAGMA journal_size_limit=16777216")
        # NORMAL in WAL mode is durable against process crashes (the ones a
        # manager restart is about); only an OS crash may lose the last commits.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        version = row[0] if row else 0
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{self.path} has schema {version}, newer than {SCHEMA_VERSION}")
        db.execute("BEGIN IMMEDIATE")
        try:
            for steps in MIGRATIONS[version:]:
                for statement in steps:
                    db.execute(statement)
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._db = db
        self._reader = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)

    def schema_version(self) -> int:
        return int(self.db.execute("SELECT version FROM schema_version").fetchone()[0])

    # -- reading ----------------------------------------------------------

    async def load(self) -> Snapshot:
        result: Snapshot = await self._run(self._load)
        return result

    def _load(self) -> Snapshot:
        db, codec = self.db, self.codec
        tasks = [
            TaskRow(
                TaskId(i), seq, name, TaskState(state), node_id, generation, spec, status, codec
            )
            for seq, i, name, state, node_id, generation, spec, status in db.execute(
                "SELECT t.seq, t.id, t.name, t.state, t.node_id, t.generation, s.spec, t.status"
                " FROM tasks t JOIN specs s ON s.seq = t.seq ORDER BY t.seq"
            )
        ]
        nodes = [codec.decode_node(blob) for (blob,) in db.execute("SELECT record FROM nodes")]
        last = db.execute("SELECT COALESCE(MAX(idx), 0) FROM events").fetchone()[0]
        return Snapshot(tasks, nodes, int(last))

    async def attempt(self, task_id: str, generation: int) -> Attempt | None:
        def read() -> Attempt | None:
            assert self._reader is not None, "store is closed"
            row = self._reader.execute(
                "SELECT task_id, generation, node_id, state, exit_code, message, created_at,"
                " finished_at FROM attempts WHERE task_id = ? AND generation = ?",
                (task_id, generation),
            ).fetchone()
            return attempt_from(row) if row else None

        result: Attempt | None = await self._run(read)
        return result

    async def events(
        self, from_index: int, until: int, kinds: Sequence[str] = (), limit: int = 1000
    ) -> list[Event]:
        """Stored events with ``from_index <= index <= until``, oldest first, at most ``limit``."""
        result: list[Event] = await self._run(self._events, from_index, until, tuple(kinds), limit)
        return result

    def _events(self, start: int, until: int, kinds: tuple[str, ...], limit: int) -> list[Event]:
        sql = (
            "SELECT e.idx, e.time, e.kind, e.task_id, e.message, e.payload, s.spec, e.actor"
            " FROM events e LEFT JOIN tasks t ON t.id = e.task_id"
            " LEFT JOIN specs s ON s.seq = t.seq"
            " WHERE e.idx >= ? AND e.idx <= ?"
        )
        args: list[Any] = [start, until]
        if kinds:
            # Prefix match without LIKE, so '_' and '%' in a kind are not wildcards.
            sql += " AND (" + " OR ".join("substr(e.kind, 1, ?) = ?" for _ in kinds) + ")"
            for kind in kinds:
                args.extend((len(kind), kind))
        sql += " ORDER BY e.idx LIMIT ?"
        args.append(limit)
        out = []
        codec = self.codec
        assert self._reader is not None, "store is closed"
        rows = self._reader.execute(sql, args)
        for idx, time, kind, task_id, message, payload, spec, actor in rows:
            task = node = None
            if task_id and spec is not None and payload is not None:
                task = Task(TaskId(task_id), codec.decode_spec(spec), codec.decode_status(payload))
            elif payload is not None:
                node = codec.decode_node(payload)
            out.append(Event(idx, time, kind, task=task, node=node, message=message, actor=actor))
        return out

    # -- writing ----------------------------------------------------------

    async def commit(self, batch: Batch) -> None:
        """Persist ``batch``; returns once it is committed (raises if the commit failed)."""
        if self._closed:
            raise RuntimeError("store is closed")
        if not batch:
            return
        future: asyncio.Future[None] = self._loop().create_future()
        encode = self.codec.encode_spec
        specs = [(seq, encode(task.spec)) for seq, task in batch.new_tasks]
        self._queue.append((batch, specs, future))
        self._wakeup.set()
        await future

    async def barrier(self) -> None:
        """Return once every batch queued before this call is committed."""
        if not self._queue and not self._writing:
            return
        future: asyncio.Future[None] = self._loop().create_future()
        self._queue.append((Batch(), [], future))
        self._wakeup.set()
        # A failed commit is reported to its own caller; the barrier only orders.
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
            specs: list[tuple[int, bytes]] = []
            for batch, encoded, _ in queued:
                merged.merge(batch)
                specs.extend(encoded)
            self._writing = True
            began = perf_counter()
            try:
                if merged.size() > INLINE_ROWS:
                    await self._run(self._write, merged, specs)
                elif merged:
                    # A few rows commit faster right here than the handoff to the
                    # store's thread and back costs (in CPU and in GIL waits).
                    self._write(merged, specs)
                self._dirty = self._dirty or bool(merged)
            except Exception as err:
                log.exception("store commit failed")
                for _, _, future in queued:
                    if not future.done():
                        future.set_exception(err)
            else:
                if self.on_commit is not None and merged:
                    self.on_commit(perf_counter() - began, merged.size())
                for _, _, future in queued:
                    if not future.done():
                        future.set_result(None)
            finally:
                self._writing = False

    def _write(self, batch: Batch, specs: list[tuple[int, bytes]]) -> None:
        db, codec = self.db, self.codec
        # A status is usually stored twice (its task's row and its event): encode it once.
        blobs: dict[int, bytes] = {}

        def encode_status(status: TaskStatus) -> bytes:
            blob = blobs.get(id(status))
            if blob is None:
                blob = blobs[id(status)] = codec.encode_status(status)
            return blob

        # A statement with no rows still costs a prepare and a step: most commits are
        # small (one submit, one worker's update) and touch two or three tables only.
        def many(sql: str, rows: list[Any]) -> None:
            if rows:
                db.executemany(sql, rows)

        db.execute("BEGIN")
        try:
            # A task submitted and changed in the same batch is inserted in its latest form.
            latest = dict(batch.statuses)
            many("INSERT INTO specs (seq, spec) VALUES (?, ?)", specs)
            rows = []
            for seq, task in batch.new_tasks:
                status = latest.pop(seq, task).status
                columns = _status_columns(status, encode_status(status))
                rows.append((seq, task.id, task.spec.name, *columns))
            many(
                "INSERT INTO tasks (seq, id, name, state, node_id, generation, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            many(
                "UPDATE tasks SET state = ?, node_id = ?, generation = ?, status = ? WHERE seq = ?",
                [
                    (*_status_columns(t.status, encode_status(t.status)), seq)
                    for seq, t in latest.items()
                ],
            )
            many(
                "INSERT OR REPLACE INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        a.task_id,
                        a.generation,
                        a.node_id,
                        STATE_TEXT[a.state],
                        a.exit_code,
                        a.message,
                        a.created_at,
                        a.finished_at,
                    )
                    for a in batch.attempts.values()
                ],
            )
            many(
                "INSERT OR REPLACE INTO nodes VALUES (?, ?)",
                [(n.id, codec.encode_node(n)) for n in batch.nodes.values()],
            )
            many(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                list(event_rows(batch.events, encode_status, codec.encode_node)),
            )
            if batch.forgotten:
                seqs = [(seq,) for seq, _ in batch.forgotten]
                db.executemany("DELETE FROM tasks WHERE seq = ?", seqs)
                db.executemany("DELETE FROM specs WHERE seq = ?", seqs)
                db.executemany(
                    "DELETE FROM attempts WHERE task_id = ?", [(i,) for _, i in batch.forgotten]
                )
            if batch.events_below:
                db.execute("DELETE FROM events WHERE idx < ?", (batch.events_below,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def _checkpoint_loop(self) -> None:
        loop = asyncio.get_running_loop()
        db = await loop.run_in_executor(
            self._checkpoints,
            lambda: sqlite3.connect(self.path, isolation_level=None, check_same_thread=False),
        )
        try:
            while True:
                await asyncio.sleep(CHECKPOINT_PERIOD)
                if not self._dirty:
                    continue
                self._dirty = False
                try:
                    # PASSIVE never blocks the writer; what it cannot copy now waits for the next.
                    await loop.run_in_executor(
                        self._checkpoints, db.execute, "PRAGMA wal_checkpoint(PASSIVE)"
                    )
                except sqlite3.Error:
                    log.exception("checkpoint failed")
        finally:
            await loop.run_in_executor(self._checkpoints, db.close)

    async def close(self) -> None:
        self._closed = True
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            await asyncio.gather(self._checkpointer, return_exceptions=True)
        if self._writer is not None:
            # Let queued and in-flight commits finish before the connection goes.
            await self.barrier()
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        if self._db is not None:
            # A last full checkpoint keeps the WAL file from outliving the manager.
            await self._run(self._db.execute, "PRAGMA wal_checkpoint(TRUNCATE)")
            await self._run(self._db.close)
            self._db = None
        if self._reader is not None:
            await self._run(self._reader.close)
            self._reader = None
        self._executor.shutdown(wait=True)
        self._checkpoints.shutdown(wait=True)


def _status_columns(status: TaskStatus, blob: bytes) -> tuple[str, str, int, bytes]:
    return (STATE_TEXT[status.state], status.node_id, status.generation, blob)
