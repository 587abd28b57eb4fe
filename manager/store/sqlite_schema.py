"""The SQLite store's schema: one migration per version, applied in order at start-up.

Kept apart from ``manager.store.sqlite`` (the backend) as ``postgres_schema``
is from the PostgreSQL one: a schema change is a new entry here and nothing
else. A file whose version is newer than ``SCHEMA_VERSION`` is refused.
"""

from __future__ import annotations

# Each entry migrates the schema from version i to i + 1; never edit a shipped one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # Keyed by the submission sequence (the rowid): status updates find their
        # row without a text index. The spec lives apart, so rewriting a status
        # never rewrites the (possibly large) spec.
        """CREATE TABLE tasks (
            seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
            state TEXT NOT NULL, node_id TEXT NOT NULL, generation INTEGER NOT NULL,
            status BLOB NOT NULL)""",
        "CREATE TABLE specs (seq INTEGER PRIMARY KEY, spec BLOB NOT NULL)",
        # Ended attempts only: the current one is in its task's status.
        """CREATE TABLE attempts (
            task_id TEXT NOT NULL, generation INTEGER NOT NULL, node_id TEXT NOT NULL,
            state TEXT NOT NULL, exit_code INTEGER, message TEXT NOT NULL,
            created_at REAL, finished_at REAL, PRIMARY KEY (task_id, generation))""",
        "CREATE TABLE nodes (id TEXT PRIMARY KEY, record BLOB NOT NULL)",
        """CREATE TABLE events (
            idx INTEGER PRIMARY KEY, time REAL NOT NULL, kind TEXT NOT NULL,
            task_id TEXT, node_id TEXT, message TEXT NOT NULL, payload BLOB)""",
    ),
    # Who caused each event (a token or a node; empty for the manager's own work).
    ("ALTER TABLE events ADD COLUMN actor TEXT NOT NULL DEFAULT ''",),
    # ACL tokens (manager.acl.tokens, manager.store.sqlite_tokens), which were acl.json.
    (
        # Only the secret's SHA-256 is stored, never the secret.
        """CREATE TABLE acl_tokens (
            name TEXT PRIMARY KEY, role TEXT NOT NULL, namespace TEXT NOT NULL,
            sha256 TEXT NOT NULL UNIQUE, created_at REAL NOT NULL)""",
        "CREATE TABLE acl_nodes (node_id TEXT PRIMARY KEY, credential TEXT NOT NULL)",
        # One row: whether `corral acl bootstrap` was answered (it answers once).
        """CREATE TABLE acl_state (
            id INTEGER PRIMARY KEY CHECK (id = 1), bootstrapped INTEGER NOT NULL)""",
        "INSERT INTO acl_state VALUES (1, 0)",
    ),
    # PostgreSQL's version 4 gives the tasks table room for updates in place (fillfactor);
    # SQLite has nothing of the kind, and keeps the version numbers in step.
    (),
)
SCHEMA_VERSION = len(MIGRATIONS)
