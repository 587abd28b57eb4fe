"""A manager, a worker and the gateway in this process, with /metrics on each.

Real gRPC servers and streams on 127.0.0.1 port 0 (each reports the port it
got), the process runtime, short heartbeats. ``stack`` yields them with an
HTTP client on the gateway and a ``corral.Client`` on the manager.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from corral.client import Client
from corral.model import NodeStatus
from gateway.server import RunningGateway
from gateway.server import serve as serve_gateway
from manager.config import ManagerConfig
from manager.server import RunningManager
from manager.server import serve as serve_manager
from worker.config import WorkerConfig
from worker.server import RunningWorker
from worker.server import serve as serve_worker


@dataclass
class Stack:
    manager: RunningManager
    worker: RunningWorker
    gateway: RunningGateway
    http: httpx.AsyncClient
    client: Client

    async def scrape(
        self, port: int | None
    ) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample at ``127.0.0.1:port/metrics``, by name and sorted labels."""
        assert port is not None, "metrics are off"
        reply = await self.http.get(f"http://127.0.0.1:{port}/metrics")
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"].startswith("text/plain")
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(reply.text)
            for s in family.samples
        }


def sample(
    samples: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """One sample's value; KeyError naming what is there when it is missing."""
    key = (name, tuple(sorted(labels.items())))
    if key not in samples:
        near = sorted(k for k in samples if k[0] == name)
        raise KeyError(f"{key} not exposed; {name} has {near}")
    return samples[key]


@asynccontextmanager
async def stack(
    tmp_path: Path,
    *,
    labels: Mapping[str, str] | None = None,
    runtimes: tuple[str, ...] = (),
    extensions: tuple[str, ...] = ("manager.jobs",),
) -> AsyncIterator[Stack]:
    manager = await serve_manager(
        ManagerConfig(
            listen="127.0.0.1:0",
            data_dir=tmp_path / "manager",
            heartbeat_interval=0.2,
            ttl=2.0,
            metrics_listen="127.0.0.1:0",
        ),
        extension_modules=list(extensions),
    )
    target = f"127.0.0.1:{manager.port}"
    worker = await serve_worker(
        WorkerConfig(
            manager=target,
            listen="127.0.0.1:0",
            data_dir=tmp_path / "worker",
            name="w1",
            labels=dict(labels or {}),
            runtimes=runtimes or ("process",),
            metrics_listen="127.0.0.1:0",
        )
    )
    gateway = await serve_gateway(target, "127.0.0.1:0", metrics_listen="127.0.0.1:0")
    try:
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=30) as http,
            Client(target) as client,
        ):
            await ready(client)
            yield Stack(manager, worker, gateway, http, client)
    finally:
        await gateway.stop()
        await worker.stop()
        await manager.stop()


async def ready(client: Client) -> None:
    """Until the worker's node is READY: the manager's events say when it registers."""
    async for _ in client.watch_events(1, kinds=("node.",)):
        if any(n.status is NodeStatus.READY for n in await client.list_nodes()):
            return
