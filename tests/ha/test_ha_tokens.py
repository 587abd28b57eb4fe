"""ACL tokens survive a failover: they live in the database every manager shares.

Three managers with ``--acl`` on one PostgreSQL. On the leader: bootstrap,
create a token, create and revoke another. Then the leader is killed with
``kill -9``; the new leader accepts the token, refuses the revoked one and
refuses a second bootstrap, as one manager would. Each manager starts with
an ``acl.json`` of the previous release (per manager then): each leader
imports its own into the database when it first leads. Meanwhile a standby, which
holds no tokens, answers a call carrying a valid token with UNAVAILABLE and
the leader's address (not UNAUTHENTICATED), so clients find the leader.
"""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from ha_cluster import NOWHERE, Managers
from pg import pg_cluster, pg_url
from waiting import eventually

from corral.client import Client
from corral.errors import FailedPrecondition, Unauthenticated
from corral.leaders import LEADER_METADATA
from corral.model import TaskSpec
from corral.serving import channel
from corral.v1 import manager_pb2, manager_pb2_grpc
from manager.acl import ACL_FILE, IMPORTED_SUFFIX
from manager.acl.tokens import hash_secret

__all__ = ["pg_cluster", "pg_url"]

pytestmark = [pytest.mark.timeout(120)]


async def standby_refusal(address: str, token: str) -> tuple[grpc.StatusCode, str]:
    """What a manager answers ListTasks with ``token``: its code and the leader it names."""
    async with channel(address, token=token) as ch:
        call = manager_pb2_grpc.ManagerServiceStub(ch).ListTasks(
            manager_pb2.ListTasksRequest(), timeout=5
        )
        try:
            await call
        except grpc.aio.AioRpcError as err:
            leader = dict(err.trailing_metadata() or ()).get(LEADER_METADATA, "")
            return err.code(), str(leader)
    return grpc.StatusCode.OK, ""


def old_acl_file(data_dir: Path, name: str) -> None:
    """The previous release's per-manager file, holding one reader token named ``name``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    token = {"name": name, "role": "reader", "namespace": "",
             "sha256": hash_secret(f"corral_{name}"), "created_at": 1.0}  # fmt: skip
    (data_dir / ACL_FILE).write_text(json.dumps({"bootstrapped": False, "tokens": [token]}))


async def lists_tasks(address: str, secret: str) -> bool:
    async with Client(address, timeout=10, token=secret, retries=0) as client:
        try:
            await client.list_tasks()
        except Unauthenticated:
            return False
    return True


async def test_tokens_bootstrap_and_revocations_survive_the_leaders_kill_9(
    tmp_path: Path, pg_url: str
) -> None:
    managers = Managers(tmp_path, pg_url, lease=2.0, flags=("--acl",))
    for i in range(3):
        old_acl_file(tmp_path / f"m{i}", f"legacy-{i}")
    managers.start_all()
    try:
        old = await managers.leader()
        assert await lists_tasks(managers.addresses[old], f"corral_legacy-{old}")
        async with Client(managers.targets, timeout=10) as anonymous:
            admin_secret = (await anonymous.acl_bootstrap()).secret
        async with Client(managers.targets, timeout=10, token=admin_secret) as admin:
            ci = await admin.create_token("ci", "submitter")
            gone = await admin.create_token("gone", "reader")
            await admin.revoke_token("gone")
        async with Client(managers.targets, timeout=10, token=ci.secret) as client:
            await client.submit(TaskSpec(name="before", command=("true",), constraints=NOWHERE))

        standby = next(i for i in range(3) if i != old)
        await managers.answering(standby)
        code, named = await standby_refusal(managers.addresses[standby], ci.secret)
        assert (code, named) == (grpc.StatusCode.UNAVAILABLE, managers.addresses[old])

        managers.kill(old)
        new = await managers.leader(besides=old)
        at_new = managers.addresses[new]
        # The old leader's import is in the database; the new leader imported its own file.
        assert await lists_tasks(at_new, f"corral_legacy-{old}")
        assert await lists_tasks(at_new, f"corral_legacy-{new}")
        imported = tmp_path / f"m{new}" / (ACL_FILE + IMPORTED_SUFFIX)
        assert imported.exists() and not (tmp_path / f"m{new}" / ACL_FILE).exists()
        async with Client(at_new, timeout=10, token=ci.secret, retries=0) as client:
            await client.submit(TaskSpec(name="after", command=("true",), constraints=NOWHERE))
            assert {t.spec.name for t in await client.list_tasks()} == {"before", "after"}
        async with Client(at_new, timeout=10, token=gone.secret, retries=0) as revoked:
            with pytest.raises(Unauthenticated):
                await revoked.list_tasks()
        async with Client(at_new, timeout=10, retries=0) as anonymous:
            with pytest.raises(FailedPrecondition, match="already"):
                await anonymous.acl_bootstrap()
        async with Client(at_new, timeout=10, token=admin_secret, retries=0) as admin:
            names = sorted(t.name for t in await admin.list_tokens())
            assert names == sorted(["ci", "management", f"legacy-{old}", f"legacy-{new}"])
            # The new leader writes tokens too, and the old one, restarted, stands by.
            await admin.revoke_token("ci")
        async with Client(at_new, timeout=10, token=ci.secret, retries=0) as client:
            with pytest.raises(Unauthenticated):
                await client.list_tasks()
        managers.start(old)
        await managers.answering(old)

        async def refused_by_restarted() -> bool:
            code, named = await standby_refusal(managers.addresses[old], admin_secret)
            return code is grpc.StatusCode.UNAVAILABLE and named == at_new

        await eventually(refused_by_restarted, timeout=30, what=managers.logs)
    finally:
        managers.close()
