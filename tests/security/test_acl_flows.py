"""ACLs in use: bootstrap once, revocation cutting open streams, node identity, storage."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from acl_stack import AclStack, acl_stack
from typer.testing import CliRunner

from corral.cli.main import build
from corral.client import Client
from corral.errors import FailedPrecondition, Unauthenticated
from corral.model import Resources, TaskSpec
from corral.serving import channel
from corral.v1 import manager_pb2, manager_pb2_grpc
from manager.acl import ACL_FILE, IMPORTED_SUFFIX, Role
from manager.acl.tokens import hash_secret
from manager.config import ManagerConfig
from manager.server import open_tokens, serve
from worker import server as worker_server
from worker.config import WorkerConfig


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[AclStack]:
    async with acl_stack(tmp_path / "m") as s:
        yield s


async def hello(target: str, secret: str, node_id: str) -> str:
    """Open a worker stream claiming ``node_id``: "welcome" or the status code's name."""
    async with channel(target, token=secret) as ch:
        call = manager_pb2_grpc.ManagerServiceStub(ch).Connect()
        message = manager_pb2.Hello(node_id=node_id, name=node_id, runtimes=["fake"])
        message.capacity.cpu = 1.0
        try:
            await call.write(manager_pb2.WorkerMessage(hello=message))
            first = await call.read()
        except grpc.aio.AioRpcError as err:
            return err.code().name
        if first is grpc.aio.EOF:
            return (await call.code()).name
        call.cancel()
        return first.WhichOneof("kind") or ""


def cli(stack: AclStack, *args: str, token: str = "") -> tuple[int, str]:
    env = {"CORRAL_MANAGER": stack.target, "CORRAL_TOKEN": token, "CORRAL_DATA_DIR": "/nonexistent"}
    result = CliRunner().invoke(build(), list(args), env=env)
    return result.exit_code, result.output


async def test_bootstrap_answers_once_then_refuses(stack: AclStack) -> None:
    code, out = await asyncio.to_thread(cli, stack, "acl", "bootstrap", "-o", "json")
    assert code == 0, out
    token = json.loads(out)
    assert token["name"] == "management" and token["role"] == "admin"
    assert token["secret"].startswith("corral_")
    code, out = await asyncio.to_thread(cli, stack, "acl", "bootstrap")
    assert code == 1 and "already" in out
    # The management token works at once; the CLI creates and lists with it.
    secret = token["secret"]
    code, out = await asyncio.to_thread(
        cli, stack, "acl", "token", "create", "--name", "ci", "--role", "submitter",
        "--namespace", "team-a", "-o", "json", token=secret,
    )  # fmt: skip
    assert code == 0, out
    made = json.loads(out)
    assert (made["name"], made["role"], made["namespace"]) == ("ci", "submitter", "team-a")
    code, out = await asyncio.to_thread(
        cli, stack, "acl", "token", "ls", "-o", "json", token=secret
    )
    assert code == 0, out
    listed = {t["name"]: t for t in json.loads(out)}
    assert "ci" in listed and "secret" not in listed["ci"]
    code, out = await asyncio.to_thread(cli, stack, "acl", "token", "revoke", "ci", token=secret)
    assert code == 0, out
    code, out = await asyncio.to_thread(cli, stack, "task", "ls", token=made["secret"])
    assert code == 1 and "token" in out


async def test_revocation_ends_an_open_watch_and_log_follow_within_a_second(
    stack: AclStack, tmp_path: Path
) -> None:
    node_secret = stack.make("node-1", Role.NODE)
    worker = await worker_server.serve(
        WorkerConfig(
            manager=stack.target,
            listen="127.0.0.1:0",
            data_dir=tmp_path / "w",
            runtimes=("process",),
            token=node_secret,
            capacity=Resources(cpu=2, memory_bytes=1 << 30, disk_bytes=1 << 30),
        )
    )
    try:
        async with stack.client("submitter") as submitter:
            task = await submitter.submit(
                TaskSpec(
                    name="talker", runtime="process", command=("sh", "-c", "echo up; sleep 60")
                )
            )
            await submitter.wait(task.id, running=True, timeout=30)
        reader_secret = stack.make("watcher", Role.READER)
        async with stack.client("watcher") as reader:
            events = reader.watch_events(from_index=1)
            logs = reader.logs(task.id, follow=True)
            await anext(events)  # both streams are open and serving
            assert b"up" in await anext(logs)

            async def drain(stream: object) -> None:
                with pytest.raises(Unauthenticated, match="revoked"):
                    async for _ in stream:  # type: ignore[attr-defined]
                        pass

            ending = [asyncio.ensure_future(drain(events)), asyncio.ensure_future(drain(logs))]
            stack.tokens.revoke("watcher")
            async with asyncio.timeout(1.0):
                await asyncio.gather(*ending)
        assert stack.tokens.authenticate(reader_secret) is None
        async with stack.client("submitter") as submitter:
            await submitter.stop_task(task.id)
    finally:
        await worker.stop()


async def test_a_node_id_belongs_to_the_credential_of_its_first_hello(stack: AclStack) -> None:
    first, other = stack.make("node-a", Role.NODE), stack.make("node-b", Role.NODE)
    assert await hello(stack.target, first, "n1") == "welcome"
    # Another node token claiming n1 is refused, while the first stream is up or not.
    assert await hello(stack.target, other, "n1") == "PERMISSION_DENIED"
    assert await hello(stack.target, first, "n1") == "welcome"  # its owner reconnects
    assert await hello(stack.target, other, "n2") == "welcome"  # and may have its own id
    assert await hello(stack.target, first, "n2") == "PERMISSION_DENIED"
    # Roles other than node cannot open a worker stream at all.
    assert await hello(stack.target, stack.secrets["admin"], "n3") == "PERMISSION_DENIED"
    assert await hello(stack.target, "", "n3") == "UNAUTHENTICATED"
    async with stack.client("reader") as reader:
        assert {n.id for n in await reader.list_nodes()} == {"n1", "n2"}


async def test_secrets_are_stored_hashed_and_tokens_outlive_a_restart(tmp_path: Path) -> None:
    async with acl_stack(tmp_path / "m") as stack:
        secrets = dict(stack.secrets)
    # Kept in the store's file (and its write-ahead log), by hash only.
    stored = b"".join(path.read_bytes() for path in (tmp_path / "m").glob("manager.db*"))
    assert hash_secret(secrets["operator"]).encode() in stored
    for secret in secrets.values():
        assert secret.encode() not in stored
        assert secret.removeprefix("corral_").encode() not in stored
    async with acl_stack(tmp_path / "m2") as fresh:
        assert fresh.tokens.authenticate(secrets["reader"]) is None  # another cluster
    reopened = open_tokens(tmp_path / "m")
    try:
        principal = reopened.authenticate(secrets["operator"])
        assert principal is not None and principal.role is Role.OPERATOR
    finally:
        reopened.close()


async def test_an_upgrade_imports_the_old_acl_file_once(tmp_path: Path) -> None:
    # The previous release kept each manager's tokens in <data-dir>/acl.json.
    data_dir = tmp_path / "m"
    data_dir.mkdir()
    old = {
        "bootstrapped": True,
        "tokens": [
            {"name": "old-admin", "role": "admin", "namespace": "",
             "sha256": hash_secret("corral_old-admin"), "created_at": 1.0},
        ],
        "nodes": {"n-old": "token:old-node"},
    }  # fmt: skip
    (data_dir / ACL_FILE).write_text(json.dumps(old))
    for _ in range(2):  # the second start finds the file imported and the tokens stored
        config = ManagerConfig(listen="127.0.0.1:0", data_dir=data_dir, acl=True)
        manager = await serve(config)
        try:
            target = f"127.0.0.1:{manager.port}"
            async with Client(target, token="corral_old-admin", retries=0) as admin:
                assert [t.name for t in await admin.list_tokens()] == ["old-admin"]
            async with Client(target, retries=0) as anonymous:
                with pytest.raises(FailedPrecondition, match="already"):
                    await anonymous.acl_bootstrap()
            assert manager.tokens is not None and manager.tokens.nodes == {
                "n-old": "token:old-node"
            }
        finally:
            await manager.stop(0)
        assert not (data_dir / ACL_FILE).exists()
        assert (data_dir / (ACL_FILE + IMPORTED_SUFFIX)).exists()


async def test_a_token_write_waiting_on_the_database_holds_up_nothing_else(
    stack: AclStack, tmp_path: Path
) -> None:
    """Token writes run on a thread: while one waits for the database, calls still answer."""
    blocker = sqlite3.connect(tmp_path / "m" / "manager.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    async with stack.client("admin") as admin:
        try:
            creating = asyncio.create_task(admin.create_token("later", "reader"))
            # Served from the cache on the event loop: it answers although the write waits.
            names = [t.name for t in await asyncio.wait_for(admin.list_tokens(), 3)]
            assert "later" not in names and not creating.done()
            revoking = asyncio.create_task(admin.revoke_token("reader"))
            await asyncio.wait_for(admin.list_tokens(), 3)
            assert not revoking.done()
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert (await creating).name == "later"
        await revoking
        names = [t.name for t in await admin.list_tokens()]
    assert "later" in names and "reader" not in names
    with pytest.raises(Unauthenticated):
        async with stack.client("reader") as gone:
            await gone.list_nodes()


async def test_rest_answers_401_without_a_token_and_403_without_the_role(stack: AclStack) -> None:
    async with stack.http(None) as anonymous:
        reply = await anonymous.get("/v1/tasks")
        assert reply.status_code == 401, reply.text
        assert "token" in reply.json()["message"]
    async with stack.http("reader") as reader:
        assert (await reader.get("/v1/tasks")).status_code == 200
        reply = await reader.post("/v1/tasks", json={"spec": {"name": "x", "runtime": "fake"}})
        assert reply.status_code == 403, reply.text
    async with stack.http("submitter") as submitter:
        reply = await submitter.post("/v1/tasks", json={"spec": {"name": "x", "runtime": "fake"}})
        assert reply.status_code == 200, reply.text


async def test_every_event_names_its_actor(stack: AclStack, tmp_path: Path) -> None:
    node_secret = stack.make("node-e", Role.NODE)
    worker = await worker_server.serve(
        WorkerConfig(
            manager=stack.target,
            listen="127.0.0.1:0",
            data_dir=tmp_path / "w",
            runtimes=("fake",),
            token=node_secret,
            capacity=Resources(cpu=2, memory_bytes=1 << 30, disk_bytes=1 << 30),
        )
    )
    try:
        async with stack.client("submitter") as submitter:
            task = await submitter.submit(TaskSpec(name="acted", runtime="fake"))
            await submitter.wait(task.id, timeout=30)
        async with stack.client("operator") as operator:
            await operator.drain_node(worker.node_id)
        async with stack.client("reader") as reader:
            # Replayed from the store: the actor is stored with each event.
            events = reader.watch_events(from_index=1)
            actors: dict[str, set[str]] = {}
            async with asyncio.timeout(10):
                async for event in events:
                    actors.setdefault(event.kind, set()).add(event.actor)
                    if event.kind == "node.draining":
                        break
        assert actors["task.submitted"] == {"token:submitter"}
        assert f"node:{worker.node_id}" in actors["task.state"]
        assert actors["node.draining"] == {"token:operator"}
    finally:
        await worker.stop()
