"""Fixtures of the high-availability tests: PostgreSQL (see tests/pg.py)."""

from __future__ import annotations

from pg import pg_cluster, pg_url

__all__ = ["pg_cluster", "pg_url"]
