"""The PostgreSQL schema: the same tables as the SQLite stores, versioned, migrated once.

Several managers start against one database at once, so a migration runs in
one transaction under a transaction-level advisory lock: the first manager
migrates, the others wait for it and then find the schema current. Each entry
of ``MIGRATIONS`` takes the schema from version i to i + 1 and is never
edited once shipped, exactly as with SQLite.

Beyond the SQLite tables there is the lease (one row: the leader, its term
and when its lease lapses, see ``manager.leadership``) and a ``term`` column
on tasks and events recording the term of the leader that wrote the row,
which is what lets a test prove that no row of a deposed leader landed.
"""

from __future__ import annotations

import psycopg

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # One row. expires_at is the database's clock (clock_timestamp()), never a
        # manager's, so managers with skewed clocks agree on when a lease lapsed.
        """CREATE TABLE lease (
            id INTEGER PRIMARY KEY CHECK (id = 1), term BIGINT NOT NULL,
            holder TEXT NOT NULL, holder_pid INTEGER NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL, acquired_at TIMESTAMPTZ)""",
        "INSERT INTO lease VALUES (1, 0, '', 0, '-infinity', NULL)",
        """CREATE TABLE tasks (
            seq BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
            state TEXT NOT NULL, node_id TEXT NOT NULL, generation INTEGER NOT NULL,
            status BYTEA NOT NULL, term BIGINT NOT NULL)""",
        "CREATE TABLE specs (seq BIGINT PRIMARY KEY, spec BYTEA NOT NULL)",
        """CREATE TABLE attempts (
            task_id TEXT NOT NULL, generation INTEGER NOT NULL, node_id TEXT NOT NULL,
            state TEXT NOT NULL, exit_code INTEGER, message TEXT NOT NULL,
            created_at DOUBLE PRECISION, finished_at DOUBLE PRECISION,
            PRIMARY KEY (task_id, generation))""",
        "CREATE TABLE nodes (id TEXT PRIMARY KEY, record BYTEA NOT NULL)",
        """CREATE TABLE events (
            idx BIGINT PRIMARY KEY, time DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL,
            task_id TEXT, node_id TEXT, message TEXT NOT NULL, payload BYTEA,
            term BIGINT NOT NULL)""",
        """CREATE TABLE schedules (
            name TEXT PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL,
            started_at DOUBLE PRECISION, run_until DOUBLE PRECISION,
            last_scheduled_at DOUBLE PRECISION, last_run_at DOUBLE PRECISION,
            last_outcome TEXT, created_at DOUBLE PRECISION NOT NULL)""",
        """CREATE TABLE runs (
            seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, schedule TEXT NOT NULL,
            trigger TEXT NOT NULL, scheduled_at DOUBLE PRECISION NOT NULL,
            started_at DOUBLE PRECISION NOT NULL, finished_at DOUBLE PRECISION,
            outcome TEXT NOT NULL, results TEXT NOT NULL)""",
        "CREATE INDEX runs_schedule ON runs (schedule, seq)",
    ),
    # Who caused each event (a token or a node; empty for the manager's own work).
    ("ALTER TABLE events ADD COLUMN actor TEXT NOT NULL DEFAULT ''",),
    # ACL tokens, shared by every manager on the database (manager.stores.postgres_tokens).
    (
        # Only the secret's SHA-256 is stored, never the secret.
        """CREATE TABLE acl_tokens (
            name TEXT PRIMARY KEY, role TEXT NOT NULL, namespace TEXT NOT NULL,
            sha256 TEXT NOT NULL UNIQUE, created_at DOUBLE PRECISION NOT NULL)""",
        "CREATE TABLE acl_nodes (node_id TEXT PRIMARY KEY, credential TEXT NOT NULL)",
        # One row: whether `corral acl bootstrap` was answered (once per cluster).
        """CREATE TABLE acl_state (
            id INTEGER PRIMARY KEY CHECK (id = 1), bootstrapped INTEGER NOT NULL)""",
        "INSERT INTO acl_state VALUES (1, 0)",
    ),
    # Room on each page for a task's new row versions: a status change rewrites the row
    # three times per task, and with full pages every version went to another page and
    # into both indexes. With half-full pages most are heap-only (HOT) updates, which
    # touch no index: 2,000 status changes took 4.7 ms instead of 17.
    ("ALTER TABLE tasks SET (fillfactor = 50)",),
)
SCHEMA_VERSION = len(MIGRATIONS)
# Any constant shared by every Corral manager: the advisory lock that serialises migrations.
_MIGRATION_LOCK = 0x636F7272616C  # "corral"


class SchemaError(RuntimeError):
    """The database holds a schema this Corral cannot use."""


def check_url(url: str) -> str:
    """``url`` when it names a PostgreSQL database; ValueError naming the flag otherwise."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"--store: {url!r} is not a postgresql://USER@HOST:PORT/DB URL")
    return url


async def migrate(conn: psycopg.AsyncConnection[object]) -> int:
    """Bring the schema to ``SCHEMA_VERSION``; returns the version found before."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        cursor = await conn.execute("SELECT version FROM schema_version")
        row = await cursor.fetchone()
        found = int(row[0]) if row else 0  # type: ignore[index]
        if found > SCHEMA_VERSION:
            raise SchemaError(
                f"the database has Corral schema {found}, newer than this Corral's "
                f"({SCHEMA_VERSION}); upgrade this manager"
            )
        for steps in MIGRATIONS[found:]:
            for statement in steps:
                await conn.execute(statement)
        await conn.execute("DELETE FROM schema_version")
        await conn.execute("INSERT INTO schema_version VALUES (%s)", (SCHEMA_VERSION,))
    return found


async def version(conn: psycopg.AsyncConnection[object]) -> int:
    cursor = await conn.execute("SELECT version FROM schema_version")
    row = await cursor.fetchone()
    return int(row[0]) if row else 0  # type: ignore[index]
