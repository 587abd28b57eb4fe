"""A psycopg connection that passes for the ``sqlite3.Connection`` of a SQLite-shaped store.

``ScheduleStore`` and ``SqliteTokenStore`` are plain SQL over ``execute``,
with ``BEGIN IMMEDIATE`` opening each write transaction. Over this adapter
the same code runs on PostgreSQL: ``?`` placeholders become ``%s``, and
``BEGIN IMMEDIATE`` begins a transaction whose first statement checks the
leader's term (``manager.leadership.begin_fenced_sync``), so every write of
those stores is fenced like the task store's.
"""

from __future__ import annotations

from typing import Any

import psycopg

from manager.leadership import begin_fenced_sync


class FencedConnection:
    """The part of ``sqlite3.Connection`` that the SQLite-shaped stores use, over psycopg."""

    def __init__(self, conn: psycopg.Connection[Any], term: int) -> None:
        self.conn = conn
        self.term = term

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        if sql == "BEGIN IMMEDIATE":
            try:
                begin_fenced_sync(self.conn, self.term)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            return None
        return self.conn.execute(sql.replace("?", "%s"), params)

    def close(self) -> None:
        self.conn.close()
