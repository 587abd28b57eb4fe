"""Schedules and their runs in the PostgreSQL database that holds the tasks.

The schedules' SQL is plain enough to run on both databases, so this store
IS the SQLite ``ScheduleStore`` over a connection that speaks PostgreSQL:
``?`` placeholders become ``%s``, and each write transaction (``BEGIN
IMMEDIATE`` there) begins with the leader's term check, so schedule writes
are fenced like every other write. The tables come from ``postgres_schema``.

Calls stay synchronous on the event loop, as with SQLite: the volume is a
few writes per schedule run, each a short round trip to the database.
"""

from __future__ import annotations

import psycopg

from corral.errors import AlreadyExists
from corral.schedules import Schedule
from manager.leadership import session_options
from manager.schedules.store import ScheduleStore
from manager.stores.fencing import FencedConnection


class PostgresScheduleStore(ScheduleStore):
    """``ScheduleStore`` on PostgreSQL, fenced by the leader's ``term``."""

    def __init__(self, url: str, *, term: int, lease: float) -> None:
        conn = psycopg.Connection.connect(url, autocommit=True, options=session_options(lease))
        # ScheduleStore's methods only ever call execute() on it (and close()).
        self._db = FencedConnection(conn, term)  # type: ignore[assignment]

    def create(self, schedule: Schedule) -> None:
        try:
            super().create(schedule)
        except psycopg.IntegrityError as err:
            raise AlreadyExists(f"schedule {schedule.name!r} already exists") from err
