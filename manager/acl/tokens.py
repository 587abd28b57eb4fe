"""Access control: tokens, roles, and the node ids they bind.

A token is a random secret shown once; the manager keeps only its SHA-256
(a 256-bit random secret needs no slow hash: there is nothing to guess), in
``<data-dir>/acl.json`` (mode 0600, replaced atomically). A call presents it
as ``authorization: Bearer <secret>``; ``Tokens.authenticate`` finds it by
hash in one dictionary lookup.

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
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from corral.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied
from corral.validation import check_name

ACL_FILE = "acl.json"
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


class Tokens:
    """The manager's tokens and node bindings, persisted in ``<data-dir>/acl.json``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bootstrapped = False
        self._records: dict[str, TokenRecord] = {}
        self._by_hash: dict[str, Principal] = {}
        self._principals: dict[str, Principal] = {}
        self.nodes: dict[str, str] = {}
        if path.exists():
            self._load(json.loads(path.read_text()))

    @classmethod
    def open(cls, data_dir: Path) -> Tokens:
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(data_dir / ACL_FILE)

    # -- calls ------------------------------------------------------------------

    def authenticate(self, secret: str) -> Principal | None:
        return self._by_hash.get(hash_secret(secret))

    def bootstrap(self) -> tuple[TokenRecord, str]:
        if self.bootstrapped:
            raise FailedPrecondition("ACL bootstrap was already done; ask an admin for a token")
        self.bootstrapped = True
        return self.create(MANAGEMENT, Role.ADMIN, "")

    def create(self, name: str, role: Role, namespace: str) -> tuple[TokenRecord, str]:
        check_name(name, "name")
        if namespace:
            check_name(namespace, "namespace")
        if name in self._records:
            raise AlreadyExists(f"a token named {name!r} exists")
        secret = new_secret()
        record = TokenRecord(name, role, namespace, hash_secret(secret), time.time())
        self._add(record)
        self._save()
        return record, secret

    def list(self) -> list[TokenRecord]:
        return sorted(self._records.values(), key=lambda r: r.name)

    def revoke(self, name: str) -> None:
        record = self._records.pop(name, None)
        if record is None:
            raise NotFound(f"no token named {name!r}")
        principal = self._by_hash.pop(record.sha256)
        del self._principals[name]
        self._save()
        principal.revoked.set()

    def bind_node(self, node_id: str, credential: str) -> None:
        """Bind ``node_id`` to ``credential`` on first sight; refuse anyone else after."""
        if not credential:
            return  # no credential at all (ACLs and TLS off): nothing to bind to
        bound = self.nodes.get(node_id)
        if bound is None:
            self.nodes[node_id] = credential
            self._save()
        elif bound != credential:
            raise PermissionDenied(
                f"node id {node_id!r} belongs to another credential; a node may only"
                " claim its own id"
            )

    # -- storage ----------------------------------------------------------------

    def _add(self, record: TokenRecord) -> None:
        principal = Principal(record.name, record.role, record.namespace)
        self._records[record.name] = record
        self._by_hash[record.sha256] = principal
        self._principals[record.name] = principal

    def _load(self, data: dict[str, Any]) -> None:
        self.bootstrapped = bool(data.get("bootstrapped"))
        for raw in data.get("tokens", []):
            self._add(TokenRecord(**{**raw, "role": Role(raw["role"])}))
        self.nodes = dict(data.get("nodes", {}))

    def _save(self) -> None:
        data = {
            "bootstrapped": self.bootstrapped,
            "tokens": [asdict(r) for r in self._records.values()],
            "nodes": self.nodes,
        }
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
