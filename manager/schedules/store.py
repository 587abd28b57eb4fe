"""Schedules and their runs in their own SQLite file (``schedules.db``, WAL mode).

The volume is tiny (a write per state change, two per run) and the code is
plain synchronous sqlite3; the loops reach it only through
``manager.schedules.storing.ScheduleStoreThread``, which makes every call on
the store's own thread, so a locked file (``busy_timeout``) never blocks the
event loop. Specs and run results are the proto's JSON
mapping, readable with ``sqlite3 schedules.db``. The schema is versioned with
``PRAGMA user_version``; each migration step is never edited once shipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from corral.convert import schedules as convert
from corral.errors import AlreadyExists, NotFound
from corral.schedules import (
    Run,
    RunOutcome,
    Schedule,
    ScheduleSpec,
    ScheduleState,
    ScheduleStatus,
    Timing,
)
from manager import namespaces, sqlitefiles

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE schedules (
            name TEXT PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL,
            started_at REAL, run_until REAL, last_scheduled_at REAL,
            last_run_at REAL, last_outcome TEXT, created_at REAL NOT NULL)""",
        """CREATE TABLE runs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
            schedule TEXT NOT NULL, trigger TEXT NOT NULL, scheduled_at REAL NOT NULL,
            started_at REAL NOT NULL, finished_at REAL, outcome TEXT NOT NULL,
            results TEXT NOT NULL)""",
        "CREATE INDEX runs_schedule ON runs (schedule, seq)",
    ),
    # The namespace a schedule belongs to (issue 11); those made before were default's.
    ("ALTER TABLE schedules ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default'",),
)
SCHEMA_VERSION = len(MIGRATIONS)


class ScheduleStore:
    def __init__(self, path: Path) -> None:
        # Opened here, then used only from the store's thread (see storing.py).
        self._db = sqlitefiles.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(f"PRAGMA busy_timeout={sqlitefiles.BUSY_TIMEOUT_MS}")
        self._migrate()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"schedules.db has schema {version}, newer than this Corral ({SCHEMA_VERSION})"
            )
        for step in range(version, SCHEMA_VERSION):
            with self._tx():
                for sql in MIGRATIONS[step]:
                    self._db.execute(sql)
                self._db.execute(f"PRAGMA user_version={step + 1}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with sqlitefiles.write_transaction(self._db) as db:
            yield db

    def close(self) -> None:
        self._db.close()

    # -- schedules ---------------------------------------------------------------

    def create(self, schedule: Schedule) -> None:
        try:
            with self._tx() as db:
                db.execute(
                    """INSERT INTO schedules (name, spec, state, created_at, namespace)
                       VALUES (?, ?, ?, ?, ?)""",
                    (
                        schedule.name,
                        convert.spec_json(schedule.spec),
                        schedule.status.state.value,
                        schedule.created_at,
                        schedule.spec.namespace or namespaces.DEFAULT,
                    ),
                )
        except sqlite3.IntegrityError as err:
            raise AlreadyExists(f"schedule {schedule.name!r} already exists") from err

    def replace_spec(self, spec: ScheduleSpec) -> None:
        """Change a schedule's definition, keeping its status and timing."""
        with self._tx() as db:
            db.execute(
                "UPDATE schedules SET spec = ? WHERE name = ?", (convert.spec_json(spec), spec.name)
            )

    def save_state(self, name: str, state: ScheduleState, timing: Timing) -> None:
        with self._tx() as db:
            db.execute(
                """UPDATE schedules SET state = ?, started_at = ?, run_until = ?,
                   last_scheduled_at = ? WHERE name = ?""",
                (state.value, timing.started_at, timing.run_until, timing.last_scheduled_at, name),
            )

    def get(self, name: str) -> Schedule:
        row = self._db.execute(
            """SELECT spec, state, started_at, run_until, last_scheduled_at, last_run_at,
               last_outcome, created_at, namespace FROM schedules WHERE name = ?""",
            (name,),
        ).fetchone()
        if row is None:
            raise NotFound(f"no schedule named {name!r}")
        return _schedule(row)

    def names(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT name FROM schedules ORDER BY name")]

    def delete(self, name: str) -> None:
        with self._tx() as db:
            if db.execute("DELETE FROM schedules WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"no schedule named {name!r}")
            db.execute("DELETE FROM runs WHERE schedule = ?", (name,))

    # -- runs ----------------------------------------------------------------------

    def put_run(self, run: Run, *, keep: int) -> None:
        """Insert or update a run; the schedule keeps its newest ``keep`` finished runs."""
        with self._tx() as db:
            db.execute(
                """INSERT INTO runs (id, schedule, trigger, scheduled_at, started_at,
                   finished_at, outcome, results) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET finished_at = excluded.finished_at,
                   outcome = excluded.outcome, results = excluded.results""",
                (
                    run.id,
                    run.schedule,
                    run.trigger,
                    run.scheduled_at,
                    run.started_at,
                    run.finished_at,
                    run.outcome.value,
                    convert.results_json(run.results),
                ),
            )
            if run.outcome is not RunOutcome.RUNNING:
                db.execute(
                    "UPDATE schedules SET last_run_at = ?, last_outcome = ? WHERE name = ?",
                    (run.started_at, run.outcome.value, run.schedule),
                )
                db.execute(
                    """DELETE FROM runs WHERE schedule = ? AND outcome != 'running' AND seq NOT IN
                       (SELECT seq FROM runs WHERE schedule = ? AND outcome != 'running'
                        ORDER BY seq DESC LIMIT ?)""",
                    (run.schedule, run.schedule, keep),
                )

    def runs(self, schedule: str) -> list[Run]:
        """Newest first."""
        rows = self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE schedule = ? ORDER BY seq DESC", (schedule,)
        )
        return [_run(r) for r in rows]

    def get_run(self, schedule: str, run_id: str) -> Run:
        row = self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE schedule = ? AND id = ?", (schedule, run_id)
        ).fetchone()
        if row is None:
            raise NotFound(f"schedule {schedule!r} has no run {run_id!r}")
        return _run(row)

    def unfinished_runs(self) -> list[Run]:
        rows = self._db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE outcome = 'running'")
        return [_run(r) for r in rows]


_RUN_COLUMNS = "id, schedule, trigger, scheduled_at, started_at, finished_at, outcome, results"


def _schedule(row: tuple[object, ...]) -> Schedule:
    spec, state, started, until, last, last_run, outcome, created, namespace = row
    assert isinstance(spec, str) and isinstance(state, str) and isinstance(namespace, str)
    return Schedule(
        # The column, not the JSON (the wire form has no namespace), says where it lives.
        spec=replace(convert.spec_from_json(spec), namespace=namespace),
        status=ScheduleStatus(
            state=ScheduleState(state),
            last_run_at=_float(last_run),
            last_outcome=RunOutcome(outcome) if isinstance(outcome, str) else None,
        ),
        timing=Timing(_float(started), _float(until), _float(last)),
        created_at=_float(created) or 0.0,
    )


def _run(row: tuple[object, ...]) -> Run:
    run_id, schedule, trigger, scheduled, started, finished, outcome, results = row
    assert isinstance(run_id, str) and isinstance(schedule, str) and isinstance(trigger, str)
    assert isinstance(outcome, str) and isinstance(results, str)
    return Run(
        id=run_id,
        schedule=schedule,
        trigger=trigger,
        scheduled_at=_float(scheduled) or 0.0,
        started_at=_float(started) or 0.0,
        finished_at=_float(finished),
        outcome=RunOutcome(outcome),
        results=convert.results_from_json(results),
    )


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
