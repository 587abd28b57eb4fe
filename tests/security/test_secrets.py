"""Secrets are write-only, and tasks start clean.

One task gets a ``secret_env`` value through the client and another through
REST. The value must reach the task (it prints only a hash of it), and must
appear nowhere else: not in any gRPC reply or event (searched in their
serialized bytes), any gateway response, the CLI's JSON, a Corral log line,
the manager's database or the worker's files. The task's environment lacks a
variable set in the worker's own, and on a root worker the task runs as
``nobody``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from corral.cli.main import build
from corral.client import Client
from corral.errors import ValidationError
from corral.model import Resources, TaskSpec, TaskState
from corral.serving import channel
from corral.v1 import manager_pb2, manager_pb2_grpc, types_pb2
from gateway import server as gateway_server
from manager.config import ManagerConfig
from manager.server import RunningManager, serve
from worker import server as worker_server
from worker.config import WorkerConfig
from worker.runtimes.taskenv import PATH

SECRET = "sk-live-0123456789abcdef-SECRET"
REST_SECRET = "rest-secret-fedcba9876543210"
MARKER = "CORRAL_TEST_WORKER_MARKER"
SCRIPT = (
    'printf %s "$API_KEY" | sha256sum; '
    'echo "path=$PATH"; echo "home=$HOME"; echo "uid=$(id -u)"; '
    "env | cut -d= -f1 | sort | tr '\\n' ' '"
)


@pytest.fixture
async def cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[RunningManager, gateway_server.RunningGateway]]:
    monkeypatch.setenv(MARKER, "the-worker-s-own")
    manager = await serve(
        ManagerConfig(
            listen="127.0.0.1:0", data_dir=tmp_path / "m", heartbeat_interval=0.1, ttl=10.0
        )
    )
    target = f"127.0.0.1:{manager.port}"
    worker = await worker_server.serve(
        WorkerConfig(
            manager=target,
            listen="127.0.0.1:0",
            data_dir=tmp_path / "w",
            runtimes=("process",),
            capacity=Resources(cpu=4, memory_bytes=1 << 30, disk_bytes=1 << 30),
        )
    )
    gateway = await gateway_server.serve(target, "127.0.0.1:0")
    try:
        yield manager, gateway
    finally:
        await gateway.stop()
        await worker.stop()
        await manager.stop(0)


def cli(target: str, *args: str) -> str:
    result = CliRunner().invoke(build(), list(args), env={"CORRAL_MANAGER": target})
    assert result.exit_code == 0, result.output
    return result.output


async def test_a_secret_reaches_its_task_and_nothing_else(
    cluster: tuple[RunningManager, gateway_server.RunningGateway],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    manager, gateway = cluster
    target = f"127.0.0.1:{manager.port}"
    seen: list[bytes] = []  # everything Corral answered, serialized
    spec = TaskSpec(
        name="keeper",
        runtime="process",
        command=("sh", "-c", SCRIPT),
        env={"PLAIN": "visible"},
        secret_env={"API_KEY": SECRET},
    )
    async with Client(target) as client:
        task = await client.submit(spec)
        done = await client.wait(task.id, timeout=30)
        assert done.status.state is TaskState.COMPLETED, done.status.message
        output = b"".join([c async for c in client.logs(task.id)]).decode()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}") as http:
        reply = await http.post(
            "/v1/tasks",
            json={"spec": {"name": "rest", "runtime": "fake", "secretEnv": {"TOKEN": REST_SECRET}}},
        )
        assert reply.status_code == 200, reply.text
        seen.append(reply.content)
        rest_id = reply.json()["id"]
        for path in ("/v1/tasks", f"/v1/tasks/{task.id}", f"/v1/tasks/{rest_id}", "/tasks"):
            answer = await http.get(path)
            assert answer.status_code == 200, answer.text
            seen.append(answer.content)
        # The event stream replays every event since index 1, then follows: read it a while.
        with contextlib.suppress(TimeoutError):
            async with (
                asyncio.timeout(2.0),
                http.stream("GET", "/v1/events?fromIndex=1", timeout=None) as events,
            ):
                async for chunk in events.aiter_bytes():
                    seen.append(chunk)
        assert b"task.submitted" in b"".join(seen)
    async with channel(target) as ch:
        stub = manager_pb2_grpc.ManagerServiceStub(ch)
        for ref in (task.id, rest_id):
            got = await stub.GetTask(manager_pb2.GetTaskRequest(id=ref), timeout=5)
            seen.append(got.SerializeToString())
        listed = await stub.ListTasks(manager_pb2.ListTasksRequest(), timeout=5)
        seen.append(listed.SerializeToString())
        call = stub.WatchEvents(manager_pb2.WatchEventsRequest(from_index=1), timeout=2)
        with pytest.raises(Exception):  # noqa: B017 -- the deadline ends the replay
            async for event in call:
                seen.append(event.SerializeToString())
        resubmit = await stub.SubmitTask(
            manager_pb2.SubmitTaskRequest(
                spec=types_pb2.TaskSpec(name="again", runtime="fake", secret_env={"K": SECRET})
            ),
            timeout=5,
        )
        seen.append(resubmit.SerializeToString())
    for args in (("task", "get", task.id, "-o", "json"), ("task", "ls", "-o", "json")):
        seen.append((await asyncio.to_thread(cli, target, *args)).encode())
    seen.append(
        (
            await asyncio.to_thread(
                cli, target, "run", "--name", "cli", "--runtime", "fake",
                "--secret-env", f"K={SECRET}", "-o", "json",
            )
        ).encode()
    )  # fmt: skip

    # The task got it (a hash proves it without printing it), and a clean environment.
    assert hashlib.sha256(SECRET.encode()).hexdigest() in output
    assert SECRET not in output
    names = output.rsplit("\n", 1)[-1].split()
    assert "API_KEY" in names and "PLAIN" in names and "CORRAL_TASK_ID" in names
    assert MARKER not in names and MARKER in os.environ
    assert f"path={PATH}" in output
    if os.geteuid() == 0:
        assert "uid=65534" in output  # nobody

    # ... and nothing Corral said, wrote or logged holds it.
    assert len(seen) > 12
    for blob in seen:
        assert SECRET.encode() not in blob and REST_SECRET.encode() not in blob
    for record in caplog.records:
        line = record.getMessage() + repr(record.__dict__)
        assert SECRET not in line and REST_SECRET not in line
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data, path
            assert REST_SECRET.encode() not in data, path


def test_a_secret_env_key_cannot_also_be_plain_and_errors_do_not_echo_values() -> None:
    from corral.validation import validate_task_spec

    with pytest.raises(ValidationError) as raised:
        validate_task_spec(
            TaskSpec(name="x", command=("true",), env={"K": "a"}, secret_env={"K": SECRET})
        )
    assert raised.value.field == "spec.secret_env['K']" and SECRET not in str(raised.value)
    result = CliRunner().invoke(
        build(), ["run", "--name", "x", "--secret-env", SECRET, "--", "true"]
    )
    assert result.exit_code == 1 and "spec.secret_env[0]" in result.output
    assert SECRET not in result.output


async def test_secrets_survive_a_manager_restart_encrypted(tmp_path: Path) -> None:
    config = ManagerConfig(listen="127.0.0.1:0", data_dir=tmp_path / "m")
    manager = await serve(config, extension_modules=())
    async with Client(f"127.0.0.1:{manager.port}") as client:
        task = await client.submit(TaskSpec(name="later", runtime="fake", secret_env={"K": SECRET}))
    await manager.stop(0)
    for path in (tmp_path / "m").iterdir():
        assert SECRET.encode() not in path.read_bytes(), path
    restarted = await serve(config, extension_modules=())
    try:
        spec = restarted.core.spec_of(task.id)
        assert dict(spec.secret_env) == {"K": SECRET}
    finally:
        await restarted.stop(0)
