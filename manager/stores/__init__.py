"""PostgreSQL, the backend for several managers.

``manager.store`` holds the ``Store`` protocol and the embedded SQLite
default; ``postgres`` implements the protocol over a PostgreSQL database that
several managers share, one of them leading (``manager.leadership``);
``postgres_schedules`` keeps the schedules in the same database and
``postgres_tokens`` the ACL tokens, both fenced through ``fencing``;
``postgres_schema`` is that database's versioned schema.
"""
