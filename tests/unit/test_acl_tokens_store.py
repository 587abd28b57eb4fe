"""ACL tokens in the store, on both backends: persisted hashed, shared, bootstrapped once,
fenced on PostgreSQL, and the previous release's acl.json imported once."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg
import pytest
from pg import pg_cluster, pg_url

from corral.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from manager.acl import ACL_FILE, IMPORTED_SUFFIX, Role, Tokens, TokenStore, import_file
from manager.acl.tokens import hash_secret
from manager.encoding import ProtoCodec, spec_cache
from manager.leadership import Fenced, Leadership
from manager.store.sqlite import SqliteStore
from manager.store.sqlite_tokens import SqliteTokenStore
from manager.stores import postgres_schema
from manager.stores.postgres_tokens import PostgresTokenStore

__all__ = ["pg_cluster", "pg_url"]

Opener = Callable[[], TokenStore]


@pytest.fixture(params=["sqlite", "postgresql"])
async def open_tokens(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens a token store on each backend (PostgreSQL: the leader's, fenced by its term)."""
    opened: list[TokenStore] = []

    def remember(store: TokenStore) -> TokenStore:
        opened.append(store)
        return store

    if request.param == "sqlite":
        # The manager's store creates (migrates) the file the tokens live in.
        await (await SqliteStore.open(tmp_path, ProtoCodec(spec_cache()))).close()
        yield lambda: remember(SqliteTokenStore.open(tmp_path))
    else:
        url = request.getfixturevalue("pg_url")
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await postgres_schema.migrate(conn)
        leadership = Leadership(url, advertise="test:1")
        await leadership.open()
        assert await leadership.try_acquire()
        term = leadership.term
        try:
            yield lambda: remember(PostgresTokenStore(url, term=term, lease=4.0))
        finally:
            await leadership.close()
    for store in opened:
        store.close()


def rows(store: TokenStore, sql: str) -> list[tuple[object, ...]]:
    return list(store._db.execute(sql).fetchall())  # type: ignore[attr-defined]


def test_tokens_outlive_their_manager_and_are_stored_hashed(open_tokens: Opener) -> None:
    first = Tokens(open_tokens())
    _, admin = first.bootstrap()
    _, reader = first.create("ci", Role.READER, "team-a")
    _, gone = first.create("gone", Role.SUBMITTER, "")
    first.revoke("gone")
    first.bind_node("n1", "token:node-a")
    first.close()

    again = Tokens(open_tokens())
    principal = again.authenticate(reader)
    assert principal is not None and (principal.role, principal.namespace) == (
        Role.READER,
        "team-a",
    )
    admin_principal = again.authenticate(admin)
    assert admin_principal is not None and admin_principal.role is Role.ADMIN
    assert again.authenticate(gone) is None
    assert [r.name for r in again.list()] == ["ci", "management"]
    assert again.nodes == {"n1": "token:node-a"}
    with pytest.raises(FailedPrecondition, match="already"):
        again.bootstrap()
    with pytest.raises(PermissionDenied):
        again.bind_node("n1", "token:node-b")
    stored = rows(open_tokens(), "SELECT name, sha256 FROM acl_tokens")
    assert ("ci", hash_secret(reader)) in stored
    text = repr(stored)
    assert reader not in text and reader.removeprefix("corral_") not in text


def test_the_store_refuses_what_a_stale_cache_would_allow(open_tokens: Opener) -> None:
    # Two caches over one store: the second was filled before the first wrote. The store,
    # not the cache, is what keeps bootstrap single, names unique and node ids owned.
    first, second = Tokens(open_tokens()), Tokens(open_tokens())
    first.bootstrap()
    with pytest.raises(FailedPrecondition, match="already"):
        second.bootstrap()
    first.create("ci", Role.READER, "")
    with pytest.raises(AlreadyExists):
        second.create("ci", Role.ADMIN, "")
    first.bind_node("n1", "token:node-a")
    with pytest.raises(PermissionDenied):
        second.bind_node("n1", "token:node-b")
    second.bind_node("n1", "token:node-a")
    first.revoke("ci")
    second_view = Tokens(open_tokens())
    with pytest.raises(NotFound):
        second_view.revoke("ci")
    assert [r.name for r in second_view.list()] == ["management"]


def test_a_cache_without_a_store_refuses_every_write() -> None:
    standby = Tokens()
    with pytest.raises(Exception, match="not leading"):
        standby.bootstrap()
    with pytest.raises(Exception, match="not leading"):
        standby.create("ci", Role.READER, "")
    assert standby.authenticate("corral_anything") is None


def old_file(data_dir: Path, *, secret: str, node: str = "n9") -> Path:
    """An acl.json as the previous release wrote it."""
    data = {
        "bootstrapped": True,
        "tokens": [
            {
                "name": "legacy",
                "role": "operator",
                "namespace": "",
                "sha256": hash_secret(secret),
                "created_at": 1700000000.0,
            }
        ],
        "nodes": {node: "token:legacy-node"},
    }
    path = data_dir / ACL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_an_old_acl_file_is_imported_once(open_tokens: Opener, tmp_path: Path) -> None:
    path = old_file(tmp_path / "old", secret="corral_legacy-secret")
    store = open_tokens()
    assert import_file(tmp_path / "old", store) == 1
    assert not path.exists() and path.with_name(ACL_FILE + IMPORTED_SUFFIX).exists()
    assert import_file(tmp_path / "old", store) == 0  # nothing left to import
    tokens = Tokens(store)
    principal = tokens.authenticate("corral_legacy-secret")
    assert principal is not None and principal.role is Role.OPERATOR
    assert tokens.bootstrapped and tokens.nodes == {"n9": "token:legacy-node"}
    with pytest.raises(FailedPrecondition):
        tokens.bootstrap()
    # A second manager's file (each manager had its own): what the store holds wins.
    old_file(tmp_path / "other", secret="corral_other-secret", node="n10")
    assert import_file(tmp_path / "other", store) == 0
    merged = Tokens(open_tokens())
    assert merged.authenticate("corral_other-secret") is None
    assert merged.authenticate("corral_legacy-secret") is not None
    assert merged.nodes == {"n9": "token:legacy-node", "n10": "token:legacy-node"}


def test_a_damaged_acl_file_is_refused_by_name(open_tokens: Opener, tmp_path: Path) -> None:
    path = tmp_path / ACL_FILE
    path.write_text('{"tokens": [{"name": "x"}]}')
    with pytest.raises(FailedPrecondition, match=r"acl\.json"):
        import_file(tmp_path, open_tokens())
    assert path.exists()  # left in place for the operator to fix


async def test_a_deposed_leaders_token_writes_are_fenced(pg_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await postgres_schema.migrate(conn)
        leadership = Leadership(pg_url, advertise="test:1")
        await leadership.open()
        try:
            assert await leadership.try_acquire()
            fenced: list[bool] = []
            store = PostgresTokenStore(
                pg_url, term=leadership.term, lease=4.0, on_fenced=lambda: fenced.append(True)
            )
            tokens = Tokens(store)
            tokens.bootstrap()
            tokens.create("kept", Role.READER, "")
            leadership.step_down()
            # A newer term began (a standby took the lapsed lease).
            await conn.execute("UPDATE lease SET term = term + 1")
            with pytest.raises(Fenced):
                tokens.create("late", Role.ADMIN, "")
            with pytest.raises(Fenced):
                tokens.revoke("kept")
            with pytest.raises(Fenced):
                tokens.bind_node("n1", "token:node-a")
            assert fenced == [True, True, True]
            cursor = await conn.execute("SELECT name FROM acl_tokens ORDER BY name")
            assert await cursor.fetchall() == [("kept",), ("management",)]
            cursor = await conn.execute("SELECT count(*) FROM acl_nodes")
            assert await cursor.fetchone() == (0,)
            tokens.close()
        finally:
            await leadership.close()


async def test_a_locked_sqlite_file_is_a_clear_unavailable_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await (await SqliteStore.open(tmp_path, ProtoCodec(spec_cache()))).close()
    monkeypatch.setattr(SqliteTokenStore, "BUSY_TIMEOUT_MS", 50)
    store = SqliteTokenStore.open(tmp_path)
    tokens = Tokens(store)
    blocker = sqlite3.connect(tmp_path / "manager.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(Unavailable, match="busy; nothing was changed"):
            tokens.create("ci", Role.SUBMITTER, "")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert [r.name for r in tokens.list()] == []
    tokens.create("ci", Role.SUBMITTER, "")  # once free, the same write goes through
    assert [r.name for r in tokens.list()] == ["ci"]
    store.close()
