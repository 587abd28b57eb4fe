"""Access control: tokens, roles, and the node ids they bind.

A token is a random secret shown once; the manager keeps only its SHA-256
(a 256-bit random secret needs no slow hash: there is nothing to guess). A
call presents it as ``authorization: Bearer <secret>``;
``Tokens.authenticate`` finds it by hash in one dictionary lookup.

Tokens live in the manager's store (a ``TokenStore``: the ``acl_*`` tables of
SQLite's ``manager.db``, or of the PostgreSQL database several managers
share), so every manager on one database knows the same tokens, revocations,
node bindings and whether bootstrap was done. ``Tokens`` is the leader's
cache of them: it is filled once (on start, or when a replica takes the
lease), every write goes to the store first and then to the cache, and
authentication never touches the database. Only the leader writes (on
PostgreSQL every write is fenced by its term), so its cache stays whole.
Writes are rare (an admin's call, a node's first Hello) and are one short
transaction each, made where they are called.

Roles nest: ``reader`` (get, list, watch, logs) < ``submitter`` (+ submit
and stop tasks, jobs, run-once, environments) < ``operator`` (+ nodes and
schedules) < ``admin`` (+ tokens). ``node`` stands apart: it may only hold a
worker stream. Which RPC needs which permission is one table,
``manager.acl.authorizing.RULES``.

Every ``Principal`` carries a ``revoked`` event: revoking a token sets it,
and the interceptor ends the streams opened with it (Nomad's CVE-2022-3867:
an expired token kept receiving the event stream).

Node identity: the first Hello of a node id binds that id to the credential
that sent it (the node token's name, or the certificate's name); any other
credential claiming it later is refused. Bindings persist with the tokens.

Before tokens moved into the store, each manager kept them in
``<data-dir>/acl.json``; ``import_file`` moves such a file into the store
once (renaming it ``acl.json.imported``), so an upgrade keeps its tokens.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from corral.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from corral.validation import check_name

log = logging.getLogger(__name__)

# The previous release's per-manager file, imported into the store once.
ACL_FILE = "acl.json"
IMPORTED_SUFFIX = ".imported"
SECRET_PREFIX = "corral_"
MANAGEMENT = "management"


class Role(StrEnum):
    READER = "reader"
    SUBMITTER = "submitter"
    OPERATOR = "operator"
    ADMIN = "admin"
    NODE = "node"


class Permission(StrEnum):
    READ = "read"
    SUBMIT = "submit"
    OPERATE = "operate"
    TOKENS = "tokens"
    CONNECT = "connect"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.READER: frozenset({Permission.READ}),
    Role.SUBMITTER: frozenset({Permission.READ, Permission.SUBMIT}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.SUBMIT, Permission.OPERATE}),
    Role.ADMIN: frozenset(
        {Permission.READ, Permission.SUBMIT, Permission.OPERATE, Permission.TOKENS}
    ),
    Role.NODE: frozenset({Permission.CONNECT}),
}


def role_of(text: str, field: str = "role") -> Role:
    try:
        return Role(text)
    except ValueError:
        from corral.errors import ValidationError

        raise ValidationError(field, f"must be one of {', '.join(Role)}, got {text!r}") from None


@dataclass(frozen=True)
class TokenRecord:
    name: str
    role: Role
    namespace: str
    sha256: str
    created_at: float


@dataclass(eq=False)
class Principal:
    """Who makes a call: a token's holder (or, with ACLs off, anyone)."""

    name: str
    role: Role
    namespace: str = ""  # empty: every namespace
    revoked: asyncio.Event = field(default_factory=asyncio.Event)

    def may(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]

    def sees(self, namespace: str) -> bool:
        return not self.namespace or self.namespace == namespace


# With ACLs off every caller is this one: all permissions, every namespace.
ANYONE = Principal(name="", role=Role.ADMIN)
_caller: contextvars.ContextVar[Principal] = contextvars.ContextVar("caller", default=ANYONE)


def caller() -> Principal:
    """The principal of the RPC being served (set by ``manager.acl.authorizing``)."""
    return _caller.get()


def set_caller(principal: Principal) -> contextvars.Token[Principal]:
    return _caller.set(principal)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


@dataclass
class StoredTokens:
    """Everything a ``TokenStore`` holds: read once into the cache, or imported from a file."""

    bootstrapped: bool = False
    tokens: list[TokenRecord] = field(default_factory=list)
    nodes: dict[str, str] = field(default_factory=dict)


class TokenStore(Protocol):
    """Where tokens persist (``manager.store.sqlite_tokens``, ``manager.stores.postgres_tokens``).

    Each write is one transaction, durable when the call returns, and raises
    when it is refused; on PostgreSQL a deposed leader's write raises ``Fenced``.
    """

    def load(self) -> StoredTokens: ...

    def bootstrap(self, record: TokenRecord) -> None:
        """Mark the cluster bootstrapped and add ``record``; FailedPrecondition if it was."""

    def add(self, record: TokenRecord) -> None:
        """Add ``record``; AlreadyExists when its name is taken."""

    def remove(self, name: str) -> None:
        """Delete the token ``name``; NotFound when there is none."""

    def bind(self, node_id: str, credential: str) -> str:
        """Bind ``node_id`` to ``credential`` unless bound already; returns its owner."""

    def merge(self, stored: StoredTokens) -> int:
        """Add what ``stored`` holds that the store lacks (names, hashes, node ids already
        there win); returns the tokens added."""

    def close(self) -> None: ...


class Tokens:
    """The leader's cache of the tokens and node bindings in its ``TokenStore``.

    Without a store (a replica standing by) nothing authenticates and every
    write is refused.
    """

    def __init__(self, store: TokenStore | None = None) -> None:
        self._store: TokenStore | None = None
        self.bootstrapped = False
        self._records: dict[str, TokenRecord] = {}
        self._by_hash: dict[str, Principal] = {}
        self._principals: dict[str, Principal] = {}
        self.nodes: dict[str, str] = {}
        if store is not None:
            self.attach(store, store.load())

    def attach(self, store: TokenStore, stored: StoredTokens) -> None:
        """Serve ``stored`` (just read from ``store``) and write to ``store`` from now on."""
        self.detach()
        self._store = store
        self.bootstrapped = stored.bootstrapped
        for record in stored.tokens:
            self._add(record)
        self.nodes = dict(stored.nodes)

    def detach(self) -> None:
        """Forget every token and close the store (a replica stepping down)."""
        store, self._store = self._store, None
        self.bootstrapped = False
        self._records, self._by_hash, self._principals, self.nodes = {}, {}, {}, {}
        if store is not None:
            store.close()

    def close(self) -> None:
        self.detach()

    def _writable(self) -> TokenStore:
        if self._store is None:
            raise Unavailable("this manager is not leading: it keeps no tokens")
        return self._store

    # -- calls ------------------------------------------------------------------

    def authenticate(self, secret: str) -> Principal | None:
        return self._by_hash.get(hash_secret(secret))

    def bootstrap(self) -> tuple[TokenRecord, str]:
        if self.bootstrapped:
            raise FailedPrecondition(ALREADY_BOOTSTRAPPED)
        record, secret = _new(MANAGEMENT, Role.ADMIN, "")
        self._writable().bootstrap(record)
        self.bootstrapped = True
        self._add(record)
        return record, secret

    def create(self, name: str, role: Role, namespace: str) -> tuple[TokenRecord, str]:
        check_name(name, "name")
        if namespace:
            check_name(namespace, "namespace")
        if name in self._records:
            raise AlreadyExists(f"a token named {name!r} exists")
        record, secret = _new(name, role, namespace)
        self._writable().add(record)
        self._add(record)
        return record, secret

    def list(self) -> list[TokenRecord]:
        return sorted(self._records.values(), key=lambda r: r.name)

    def revoke(self, name: str) -> None:
        self.revoke_stored(name)
        self.forget(name)

    def revoke_stored(self, name: str) -> None:
        """The database half of ``revoke``: callable from a thread."""
        if name not in self._records:
            raise NotFound(f"no token named {name!r}")
        self._writable().remove(name)

    def forget(self, name: str) -> None:
        """The cache half of ``revoke``, on the event loop: it ends the token's streams."""
        record = self._records.pop(name, None)
        if record is None:
            return
        principal = self._by_hash.pop(record.sha256)
        del self._principals[name]
        principal.revoked.set()

    def bind_node(self, node_id: str, credential: str) -> None:
        """Bind ``node_id`` to ``credential`` on first sight; refuse anyone else after."""
        if not credential:
            return  # no credential at all (ACLs and TLS off): nothing to bind to
        bound = self.nodes.get(node_id)
        if bound is None:
            bound = self.nodes[node_id] = self._writable().bind(node_id, credential)
        if bound != credential:
            raise PermissionDenied(
                f"node id {node_id!r} belongs to another credential; a node may only"
                " claim its own id"
            )

    def _add(self, record: TokenRecord) -> None:
        principal = Principal(record.name, record.role, record.namespace)
        self._records[record.name] = record
        self._by_hash[record.sha256] = principal
        self._principals[record.name] = principal


ALREADY_BOOTSTRAPPED = "ACL bootstrap was already done; ask an admin for a token"


def _new(name: str, role: Role, namespace: str) -> tuple[TokenRecord, str]:
    secret = new_secret()
    return TokenRecord(name, role, namespace, hash_secret(secret), time.time()), secret


def import_file(data_dir: Path, store: TokenStore) -> int:
    """Move ``<data-dir>/acl.json`` (the previous release's tokens) into ``store``, once.

    Afterwards the file is renamed ``acl.json.imported``. Returns the tokens
    added (0 when there was no file). What the store already holds wins, so
    a replayed import (a crash between the commit and the rename) adds nothing.
    """
    path = data_dir / ACL_FILE
    if not path.exists():
        return 0
    try:
        data = json.loads(path.read_text())
        stored = StoredTokens(
            bootstrapped=bool(data.get("bootstrapped")),
            tokens=[TokenRecord(**{**raw, "role": Role(raw["role"])}) for raw in data["tokens"]],
            nodes={str(k): str(v) for k, v in data.get("nodes", {}).items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise FailedPrecondition(
            f"{path}: cannot import the tokens of the previous release ({err}); fix or move"
            " the file aside to start without them"
        ) from None
    added = store.merge(stored)
    path.replace(path.with_name(ACL_FILE + IMPORTED_SUFFIX))
    log.info("imported %d of %d tokens from %s into the store", added, len(stored.tokens), path)
    return added
