"""Where the manager keeps its state: SQLite under the data dir, or PostgreSQL.

``manager.store`` is the embedded SQLite default; ``postgres`` holds the same
tables in a PostgreSQL database that several managers share, one of them
leading (``manager.leadership``). ``postgres_schema`` is that database's
versioned schema.
"""
