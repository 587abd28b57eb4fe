"""PostgreSQL for the tests: one throwaway cluster per session, one database per test.

Tests that need PostgreSQL take ``pg_url`` (a fresh, empty database) or
``pg_cluster``. Without PostgreSQL installed they skip on a developer's
machine and FAIL in CI, where ``.ci/run`` installs Debian's ``postgresql``.
Modules outside ``tests/ha`` import the fixtures by name
(``from pg import pg_cluster, pg_url``), which is how pytest finds them there.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import pgcluster
from manager.encoding import ProtoCodec, spec_cache
from manager.leadership import Leadership
from manager.store.sqlite import SqliteStore
from manager.stores.postgres import PostgresStore

IN_CI = bool(os.environ.get("CI"))
_names = itertools.count()


def require_postgres() -> None:
    if pgcluster.binaries() is None:
        reason = "PostgreSQL is not installed (apt-get install -y postgresql)"
        if IN_CI:
            pytest.fail(reason + "; CI must provide it (.ci/run installs it)")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pgcluster.Cluster]:
    require_postgres()
    cluster = pgcluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: pgcluster.Cluster) -> Iterator[str]:
    name = f"t{os.getpid()}_{next(_names)}"
    url = pg_cluster.create_database(name)
    try:
        yield url
    finally:
        pg_cluster.drop_database(name)


StoreOpener = Callable[[], Awaitable[Any]]


@pytest.fixture(params=["sqlite", "postgresql"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreOpener]:
    """Opens the manager's store on each backend (PostgreSQL as the leader of a fresh database)."""
    if request.param == "sqlite":
        yield lambda: SqliteStore.open(tmp_path, ProtoCodec(spec_cache()))
        return
    url = request.getfixturevalue("pg_url")
    leadership = Leadership(url, advertise="test:1")
    await leadership.open()
    assert await leadership.try_acquire()
    try:
        codec = ProtoCodec(spec_cache())
        yield lambda: PostgresStore.open(url, term=leadership.term, codec=codec)
    finally:
        await leadership.close()
