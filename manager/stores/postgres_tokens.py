"""ACL tokens in the PostgreSQL database that every manager shares, fenced by the term.

The same SQL as SQLite's ``SqliteTokenStore`` over a ``FencedConnection``
(as the schedules): each write transaction first checks that the lease is
still at this leader's term, so a deposed leader can neither create nor
revoke a token, bind a node nor bootstrap. A fenced write raises ``Fenced``
(UNAVAILABLE to the caller) and tells ``on_fenced``, so the manager steps
down at once. The tables come from ``postgres_schema``; a replica opens one
of these per term it leads and fills its cache from it
(``manager.failover``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from manager.leadership import Fenced, session_options
from manager.store.sqlite_tokens import SqliteTokenStore
from manager.stores.fencing import FencedConnection


class PostgresTokenStore(SqliteTokenStore):
    """``SqliteTokenStore`` on PostgreSQL, its writes fenced by the leader's ``term``."""

    integrity_errors = (psycopg.IntegrityError,)

    def __init__(
        self,
        url: str,
        *,
        term: int,
        lease: float,
        on_fenced: Callable[[], None] = lambda: None,
    ) -> None:
        conn = psycopg.Connection.connect(url, autocommit=True, options=session_options(lease))
        self._db = FencedConnection(conn, term)
        self._lock = threading.Lock()
        self._on_fenced = on_fenced

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        try:
            with super()._tx() as db:
                yield db
        except Fenced:
            self._on_fenced()
            raise
