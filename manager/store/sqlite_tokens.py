"""ACL tokens in the SQLite store's ``manager.db``: the ``TokenStore`` of ``manager.acl``.

The tables (``acl_tokens``, ``acl_nodes``, ``acl_state``) come from the
store's migrations (``sqlite_schema``), so the store must have opened the file
first. The SQL is plain enough to run on PostgreSQL too, where
``manager.stores.postgres_tokens`` runs this same class over a connection
fenced by the leader's term, as the schedules do.

The calls are synchronous; the manager makes them on a thread (``asyncio.to_thread``
in the AclService and the worker session's Hello), never on its event loop, since
a write may wait out a group commit (SQLite) or a round trip to the database
(PostgreSQL). A lock keeps one transaction at a time on the connection. Tokens
are written a few times in a cluster's life (bootstrap, an admin's create or
revoke, a node's first Hello), and read once when the cache is filled. The
connection is the tokens' own; WAL lets it write between the store's group
commits (``busy_timeout`` waits out one).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from corral.errors import AlreadyExists, FailedPrecondition, NotFound
from manager.acl.tokens import ALREADY_BOOTSTRAPPED, Role, StoredTokens, TokenRecord
from manager.sqlitefiles import BUSY_TIMEOUT_MS, write_transaction
from manager.store.sqlite import DB_FILE

_INSERT = """INSERT INTO acl_tokens (name, role, namespace, sha256, created_at)
    VALUES (?, ?, ?, ?, ?)"""
# Both databases skip a row that breaks any unique key (name or hash) with a bare DO NOTHING.
_MERGE = _INSERT + " ON CONFLICT DO NOTHING"
_BIND = "INSERT INTO acl_nodes (node_id, credential) VALUES (?, ?) ON CONFLICT DO NOTHING"


def _row(record: TokenRecord) -> tuple[Any, ...]:
    return (record.name, str(record.role), record.namespace, record.sha256, record.created_at)


class SqliteTokenStore:
    """Tokens, node bindings and the bootstrap mark, in ``manager.db``."""

    BUSY_TIMEOUT_MS = BUSY_TIMEOUT_MS
    # What the driver raises when a row breaks a unique key.
    integrity_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)

    def __init__(self, path: Path) -> None:
        # Used from the threads the manager hands token writes to, one at a time.
        self._db: Any = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute(f"PRAGMA busy_timeout={self.BUSY_TIMEOUT_MS}")
        self._lock = threading.Lock()

    @classmethod
    def open(cls, data_dir: Path) -> SqliteTokenStore:
        """The tokens of the store under ``data_dir`` (open the store first: it migrates)."""
        return cls(data_dir / DB_FILE)

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._lock, write_transaction(self._db) as db:
            yield db

    def load(self) -> StoredTokens:
        with self._lock:
            return self._load(self._db)

    def _load(self, db: Any) -> StoredTokens:
        (bootstrapped,) = db.execute("SELECT bootstrapped FROM acl_state").fetchone()
        rows = db.execute("SELECT name, role, namespace, sha256, created_at FROM acl_tokens")
        tokens = [
            TokenRecord(name, Role(role), namespace, sha256, float(created_at))
            for name, role, namespace, sha256, created_at in rows.fetchall()
        ]
        nodes = dict(db.execute("SELECT node_id, credential FROM acl_nodes").fetchall())
        return StoredTokens(bool(bootstrapped), tokens, nodes)

    def bootstrap(self, record: TokenRecord) -> None:
        with self._tx() as db:
            marked = db.execute(
                "UPDATE acl_state SET bootstrapped = 1 WHERE id = 1 AND bootstrapped = 0"
            )
            if marked.rowcount != 1:
                raise FailedPrecondition(ALREADY_BOOTSTRAPPED)
            self._insert(db, record)

    def add(self, record: TokenRecord) -> None:
        with self._tx() as db:
            self._insert(db, record)

    def _insert(self, db: Any, record: TokenRecord) -> None:
        try:
            db.execute(_INSERT, _row(record))
        except self.integrity_errors as err:
            raise AlreadyExists(f"a token named {record.name!r} exists") from err

    def remove(self, name: str) -> None:
        with self._tx() as db:
            if db.execute("DELETE FROM acl_tokens WHERE name = ?", (name,)).rowcount != 1:
                raise NotFound(f"no token named {name!r}")

    def bind(self, node_id: str, credential: str) -> str:
        with self._tx() as db:
            db.execute(_BIND, (node_id, credential))
            row = db.execute(
                "SELECT credential FROM acl_nodes WHERE node_id = ?", (node_id,)
            ).fetchone()
        return str(row[0])

    def merge(self, stored: StoredTokens) -> int:
        with self._tx() as db:
            if stored.bootstrapped:
                db.execute("UPDATE acl_state SET bootstrapped = 1 WHERE id = 1")
            added: int = sum(db.execute(_MERGE, _row(r)).rowcount for r in stored.tokens)
            for node_id, credential in stored.nodes.items():
                db.execute(_BIND, (node_id, credential))
        return added

    def close(self) -> None:
        self._db.close()
