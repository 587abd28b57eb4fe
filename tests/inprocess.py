"""A manager and a worker served in the test's own process (``serve``, not subprocesses).

``manager_and_worker(root)`` keeps the manager's state in ``root / "manager"``, so a
test that stops it can start it again over the same store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from waiting import eventually

from corral.client import Client
from manager.config import ManagerConfig
from manager.server import serve as serve_manager
from worker.config import WorkerConfig
from worker.server import serve as serve_worker


@asynccontextmanager
async def manager(root: Path) -> AsyncIterator[str]:
    """A manager (no extensions, a fast heartbeat) on a free port: its address."""
    config = ManagerConfig(
        listen="127.0.0.1:0", data_dir=root / "manager", heartbeat_interval=0.2, ttl=2.0
    )
    running = await serve_manager(config, extension_modules=())
    try:
        yield f"127.0.0.1:{running.port}"
    finally:
        await running.stop()


@asynccontextmanager
async def manager_and_worker(root: Path) -> AsyncIterator[str]:
    """``manager`` with one worker that has said Hello: the manager's address."""
    async with manager(root) as address:
        worker = await serve_worker(
            WorkerConfig(manager=address, listen="127.0.0.1:0", data_dir=root / "worker")
        )
        try:
            async with Client(address) as client:
                await eventually(client.list_nodes)
            yield address
        finally:
            await worker.stop()
