"""Opening the manager's SQLite files so that a damaged one is refused, never emptied.

A manager that starts on a damaged store must not come up quietly with fewer
tasks than it acknowledged. SQLite itself takes a zero-length file for a new,
empty database, and only notices other damage when a read reaches the bad
page, so ``connect`` checks both before anything else runs:

- a file that exists with zero bytes and no write-ahead log to recover from
  is refused (a fresh data dir has no file at all);
- ``PRAGMA quick_check`` must answer ``ok``; any ``sqlite3.DatabaseError``
  (not a database, malformed image) is reported the same way.

Commits that were in the WAL when a manager was killed are recovered by
SQLite as usual: that is the one repair that happens silently, because it
loses nothing. The error names the file and says what to do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from corral.errors import FailedPrecondition, Unavailable

# How long a write waits for another writer (a large group commit) before giving up.
BUSY_TIMEOUT_MS = 5000


class DamagedStore(FailedPrecondition):
    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"{path}: {problem}; refusing to start rather than lose acknowledged state "
            "(restore the file from a backup, or move it aside to start empty)"
        )
        self.path = path


def connect(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A connection to ``path`` in autocommit mode, refused when the file is damaged."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wal = path.with_name(path.name + "-wal")
    if path.exists() and path.stat().st_size == 0 and not (wal.exists() and wal.stat().st_size):
        raise DamagedStore(path, "the file is empty (0 bytes) though it exists: truncated?")
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=check_same_thread)
        db.execute("PRAGMA journal_mode=WAL")
        verdict = [row[0] for row in db.execute("PRAGMA quick_check(5)")]
    except sqlite3.DatabaseError as err:
        raise DamagedStore(path, f"not a readable SQLite database ({err})") from None
    if verdict != ["ok"]:
        db.close()
        raise DamagedStore(path, "damaged: " + "; ".join(verdict)[:300])
    return db


@contextmanager
def write_transaction(db: Any) -> Iterator[Any]:
    """``BEGIN IMMEDIATE`` (the write lock at once, so two writers never deadlock on an
    upgrade) ... ``COMMIT``, rolled back on any error. ``db`` is a ``sqlite3`` connection,
    or the ``FencedConnection`` that runs the same stores on PostgreSQL."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as err:
        if "locked" not in str(err) and "busy" not in str(err):
            raise
        # Another writer held the file past BUSY_TIMEOUT_MS: nothing was written.
        raise Unavailable("the store is busy; nothing was changed, try again") from err
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
