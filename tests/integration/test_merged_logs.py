"""Merged logs of tasks started at different times, through gRPC, REST and the CLI."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from inprocess import manager_and_worker
from typer.testing import CliRunner
from waiting import eventually

from corral.cli import main
from corral.client import Client
from corral.model import RestartMode, RestartPolicy, TaskSpec, TaskState
from gateway.server import serve as serve_gateway

WEB = {"app": "web"}


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[str]:
    async with manager_and_worker(tmp_path) as address:
        yield address


def task(name: str, script: str, labels: dict[str, str] = WEB, **kw: object) -> TaskSpec:
    return TaskSpec(name=name, command=("sh", "-c", script), labels=labels, **kw)  # type: ignore[arg-type]


async def _running(client: Client, task_id: str) -> bool:
    return (await client.get_task(task_id)).status.state is TaskState.RUNNING


async def _wrote(client: Client, task_id: str, text: bytes) -> bool:
    return text in b"".join([chunk async for chunk in client.logs(task_id)])


async def test_follow_interleaves_every_matching_task(target: str) -> None:
    async with Client(target) as client:
        # Started before anyone follows; its earlier lines come with the tail.
        first = await client.submit(task("web-1", "echo early; echo ready; exec sleep 60"))
        await client.submit(task("db", "echo not-web; exec sleep 60", labels={"app": "db"}))
        await eventually(lambda: _running(client, first.id))
        await eventually(lambda: _wrote(client, first.id, b"ready\n"))
        seen: list[str] = []

        async def follow() -> None:
            async for chunk in client.merged_logs("app=web", tail=1, follow=True):
                seen.extend(chunk.decode().splitlines())

        follower = asyncio.create_task(follow())
        try:
            await eventually(lambda: "web-1 | ready" in seen)
            # Started later: they join the stream.
            await client.submit(task("web-2", "echo two-a; sleep 0.2; echo two-b; sleep 60"))
            await eventually(lambda: "web-2 | two-b" in seen)
            restart = RestartPolicy(mode=RestartMode.ON_FAILURE, max_attempts=2, backoff=0.1)
            await client.submit(task("web-3", "echo try; exit 1", restart_policy=restart))
            await eventually(lambda: "web-3 | try" in seen and "web-3#2 | try" in seen)
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        assert "web-1 | early" not in seen  # --tail 1 per task
        assert not any("not-web" in line for line in seen)
        assert all(" | " in line for line in seen)


async def test_rest_and_cli_read_the_merged_output(target: str) -> None:
    async with Client(target) as client:
        for i in (1, 2):
            t = await client.submit(task(f"api-{i}", f"echo one-{i}; echo two-{i}"))
            await client.wait(t.id)
    gateway = await serve_gateway(target, "127.0.0.1:0", compat_modules=[])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}") as http:
            r = await http.get("/v1/logs?selector=app%3Dweb")
            assert r.status_code == 200, r.text
            assert r.text.splitlines() == [
                "api-1 | one-1", "api-1 | two-1", "api-2 | one-2", "api-2 | two-2"
            ]  # fmt: skip
            r = await http.get("/v1/logs?selector=nonsense")
            assert r.status_code == 400 and "selector" in r.text
    finally:
        await gateway.stop()
    result = await asyncio.to_thread(
        CliRunner().invoke,
        main.build(),
        ["logs", "-l", "app=web", "--tail", "1", "--manager", target],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["api-1 | two-1", "api-2 | two-2"]
    result = await asyncio.to_thread(
        CliRunner().invoke, main.build(), ["logs", "--manager", target]
    )
    assert result.exit_code == 1 and "selector" in result.output


async def test_rest_follow_streams_tasks_that_start_later(target: str) -> None:
    gateway = await serve_gateway(target, "127.0.0.1:0", compat_modules=[])
    try:
        async with (
            Client(target) as client,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=30) as http,
        ):
            first = await client.submit(task("svc-1", "echo one; exec sleep 60"))
            await eventually(lambda: _wrote(client, first.id, b"one\n"))
            url = "/v1/logs?selector=app%3Dweb&follow=true"
            async with http.stream("GET", url) as r:
                assert r.status_code == 200
                lines = r.aiter_lines()
                assert await asyncio.wait_for(anext(lines), 10) == "svc-1 | one"
                await client.submit(task("svc-2", "echo two; exec sleep 60"))
                assert await asyncio.wait_for(anext(lines), 30) == "svc-2 | two"
    finally:
        await gateway.stop()
