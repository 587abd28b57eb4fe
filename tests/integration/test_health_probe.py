"""``corral health``: SERVING from a live manager (exit 0), UNREACHABLE from a
closed port (exit 1), and the gateway checked by URL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corral import probing
from corral.cli.main import build
from manager.config import ManagerConfig
from manager.server import RunningManager, serve


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[RunningManager]:
    running = await serve(
        ManagerConfig(listen="127.0.0.1:0", data_dir=tmp_path / "m"), extension_modules=()
    )
    yield running
    await running.stop(0)


async def test_health_of_a_live_manager(manager: RunningManager) -> None:
    target = f"127.0.0.1:{manager.port}"
    assert await asyncio.to_thread(probing.grpc_status, target) == "SERVING"
    result = await asyncio.to_thread(CliRunner().invoke, build(), ["health", "--addr", target])
    assert result.exit_code == 0, result.output
    assert f"{target}: SERVING" in result.output


def test_health_of_nothing_fails(closed_port: int) -> None:
    target = f"127.0.0.1:{closed_port}"
    assert probing.grpc_status(target, timeout=1).startswith("UNREACHABLE")
    result = CliRunner().invoke(build(), ["health", "--addr", target, "--timeout", "1"])
    assert result.exit_code == 1
    assert probing.http_status(f"http://{target}/health", timeout=1).startswith("UNREACHABLE")


def test_health_refuses_a_non_positive_timeout() -> None:
    result = CliRunner().invoke(build(), ["health", "--timeout", "0"])
    assert result.exit_code == 2
    assert "timeout" in result.output
