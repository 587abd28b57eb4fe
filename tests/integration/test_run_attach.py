"""``corral run --attach`` against a real manager and worker running processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from inprocess import manager_and_worker
from typer.testing import CliRunner

from corral.cli import main


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[str]:
    async with manager_and_worker(tmp_path) as address:
        yield address


def _run(target: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main.build(), ["run", "--manager", target, *args])
    return result.exit_code, result.stdout


async def test_attach_streams_the_output_and_exits_with_the_tasks_code(target: str) -> None:
    script = "echo one; sleep 0.3; echo two >&2; exit 3"
    code, out = await asyncio.to_thread(
        _run, target, "--name", "attached", "--attach", "--", "sh", "-c", script
    )
    assert code == 3
    assert out == "one\ntwo\n"


async def test_attach_follows_every_attempt(target: str) -> None:
    args = ("--name", "twice", "--restart", "on-failure", "--max-attempts", "2", "--attach")
    code, out = await asyncio.to_thread(
        _run, target, *args, "--", "sh", "-c", "echo attempt; exit 5"
    )
    assert code == 5
    assert out == "attempt\nattempt\n"


async def test_attach_a_success_exits_zero(target: str) -> None:
    code, out = await asyncio.to_thread(
        _run, target, "--name", "hi", "--attach", "--", "echo", "hello"
    )
    assert (code, out) == (0, "hello\n")
