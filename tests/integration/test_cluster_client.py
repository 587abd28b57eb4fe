"""corral.Client and the CLI against a real in-process manager with simulated
workers (the fast variant of the subprocess cluster tests)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from corral.cli import main
from corral.client import Client
from corral.errors import AlreadyExists, NotFound, ValidationError
from corral.model import NodeStatus, Resources, TaskSpec, TaskState
from manager.config import ManagerConfig
from manager.server import RunningManager, serve
from tests.simworker import SimWorker

CORE_MODULES = ("corral.cli.servers", "corral.cli.tasks", "corral.cli.nodes")


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[RunningManager]:
    config = ManagerConfig(
        listen="127.0.0.1:0", data_dir=tmp_path / "m", heartbeat_interval=0.1, ttl=0.6
    )
    running = await serve(config, extension_modules=())
    yield running
    await running.stop(0)


@pytest.fixture
async def worker(manager: RunningManager) -> AsyncIterator[SimWorker]:
    sim = SimWorker(f"127.0.0.1:{manager.port}", "sim-1")
    await sim.connect()
    yield sim
    await sim.close()


@pytest.fixture
async def client(manager: RunningManager) -> AsyncIterator[Client]:
    async with Client(f"127.0.0.1:{manager.port}", timeout=5.0) as c:
        yield c


async def running(client: Client, task_id: str) -> None:
    task = await client.wait(task_id, running=True, timeout=10)
    assert task.status.state is TaskState.RUNNING, task.status


async def test_client_against_the_real_manager(client: Client, worker: SimWorker) -> None:
    task = await client.submit(TaskSpec(name="web", command=("sleep", "9")))
    await running(client, task.id)
    assert (await client.find_task("web")).id == task.id
    assert [t.id for t in await client.list_tasks(states=[TaskState.RUNNING])] == [task.id]
    with pytest.raises(AlreadyExists):
        await client.submit(TaskSpec(name="web", command=("true",)))
    stopped = await client.stop_task(task.id, "enough")
    await worker.next("stop")
    assert stopped.id == task.id
    events = [e async for e in _first(client.watch_events(1), 3)]
    assert [e.index for e in events] == sorted(e.index for e in events)
    [node] = await client.list_nodes()
    assert node.id == "sim-1"
    assert (await client.drain_node("sim-1")).status is NodeStatus.DRAINING


async def test_real_validation_errors_keep_the_field(client: Client) -> None:
    with pytest.raises(ValidationError) as caught:
        await client.submit(TaskSpec(name="empty", command=()))
    assert caught.value.field == "spec.command"
    with pytest.raises(ValidationError) as caught:
        await client.submit_many([TaskSpec(name="ok", command=("true",)), TaskSpec(name="B@d")])
    assert caught.value.field.startswith("tasks[1].spec.name")
    assert await client.list_tasks() == []
    with pytest.raises(NotFound):
        await client.get_task("nothing-here")


async def test_cli_run_wait_against_the_real_manager(
    manager: RunningManager, worker: SimWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main, "COMMAND_MODULES", CORE_MODULES)
    monkeypatch.setenv("CORRAL_MANAGER", f"127.0.0.1:{manager.port}")
    app = main.build()

    def cli(*args: str) -> Any:
        return CliRunner().invoke(app, list(args))

    ok = await asyncio.to_thread(cli, "run", "--name", "ok", "--wait", "--", "sleep", "9")
    assert ok.exit_code == 0, ok.output
    assert "running on sim-1" in ok.stdout

    huge = await asyncio.to_thread(
        cli, "run", "--name", "huge", "--cpu", "64", "--wait", "--timeout", "0.5", "--", "true"
    )
    assert huge.exit_code == 2, huge.output
    assert "cannot be placed" in huge.stderr

    listed = json.loads((await asyncio.to_thread(cli, "task", "ls", "-o", "json")).stdout)
    assert {t["spec"]["name"] for t in listed} == {"ok", "huge"}
    assert worker.capacity == Resources(4.0, 8 << 30, 100 << 30)


async def _first(stream: AsyncIterator[Any], n: int) -> AsyncIterator[Any]:
    count = 0
    async for item in stream:
        yield item
        count += 1
        if count == n:
            return
