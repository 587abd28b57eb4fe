"""Environments on the process runtime, driven through the CLI: a supervised
``python3 -m http.server`` per project that answers on its port, then stops."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psutil
import pytest
from typer.testing import CliRunner
from waiting import eventually

from corral.cli.main import build
from corral.client import Client
from manager.config import ManagerConfig
from manager.server import serve as serve_manager
from worker.config import WorkerConfig
from worker.server import serve as serve_worker


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[str]:
    manager = await serve_manager(
        ManagerConfig(
            listen="127.0.0.1:0",
            data_dir=tmp_path / "manager",
            heartbeat_interval=0.2,
            environments_runtime="process",
            stop_grace=0.5,
        )
    )
    address = f"127.0.0.1:{manager.port}"
    worker = await serve_worker(
        WorkerConfig(
            manager=address,
            listen="127.0.0.1:0",
            data_dir=tmp_path / "worker",
            name="pw1",
            runtimes=("process",),
            reconnect_initial=0.05,
        )
    )
    async with Client(address) as client:
        await eventually(client.list_nodes, what="the worker registered")
    try:
        yield address
    finally:
        await worker.stop()
        await manager.stop(0.5)


async def corral(*args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(CliRunner().invoke, build(), list(args))
    return result.exit_code, result.output


async def answers(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=1) as http:
            return (await http.get(f"http://127.0.0.1:{port}/")).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("language", ["python", "nodejs"])
async def test_environment_serves_until_stopped(target: str, language: str) -> None:
    code, out = await corral(
        "env", "start", "py-1", "-l", language, "--manager", target, "-o", "json"
    )
    assert code == 0, out
    env = json.loads(out)
    assert env["replId"] == "py-1" and env["runtime"] == "process"
    assert env["state"] == "TASK_STATE_RUNNING"
    port = int(env["ports"][0]["hostPort"])
    await eventually(lambda: answers(port), what=f"the environment answers on {port}")
    # On the process runtime a project's service listens on loopback only, never 0.0.0.0.
    listening = [
        c.laddr
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    ]
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening

    code, again = await corral("env", "start", "py-1", "-l", language, "--manager", target)
    assert code == 0 and "already running" in again
    code, listing = await corral("env", "ls", "--manager", target, "-o", "json")
    assert [e["replId"] for e in json.loads(listing)["environments"]] == ["py-1"]
    code, shown = await corral("env", "get", "py-1", "--manager", target)
    assert code == 0 and "py-1.corral.localhost" in shown

    code, out = await corral("env", "stop", "py-1", "--manager", target)
    assert code == 0, out

    async def refuses() -> bool:
        return not await answers(port)

    await eventually(refuses, what=f"the environment no longer answers on {port}")
    code, listing = await corral("env", "ls", "--manager", target, "-o", "json")
    assert json.loads(listing).get("environments", []) == []


async def test_cli_names_the_bad_field(target: str) -> None:
    code, out = await corral("env", "start", "../x", "-l", "python", "--manager", target)
    assert code == 1 and "repl_id" in out
    code, out = await corral("env", "start", "ok", "-l", "cobol", "--manager", target)
    assert code == 1 and "language" in out and "cobol" in out
    code, out = await corral("env", "stop", "nothing-here", "--manager", target)
    assert code == 1 and "not found" in out
