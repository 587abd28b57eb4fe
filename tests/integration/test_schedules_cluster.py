"""Schedules on a real manager and a real worker (in-process, real gRPC streams): each
endpoint becomes an http task placed on the worker, whose http runtime makes the call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from schedules_fakes import Endpoints
from waiting import eventually

from corral.client import Client
from corral.model import TaskState
from corral.schedules import RunOutcome
from gateway.server import serve as serve_gateway
from manager.config import ManagerConfig
from manager.server import serve as serve_manager
from worker.config import WorkerConfig
from worker.server import serve as serve_worker


@dataclass
class Cluster:
    client: Client
    http: httpx.AsyncClient
    ep: Endpoints


@pytest.fixture
async def cluster(tmp_path: Path, closed_port: int) -> AsyncIterator[Cluster]:
    async with Endpoints() as ep:
        schedules = tmp_path / "schedules.yaml"
        schedules.write_text(
            f"""
interval: 1s
host: 127.0.0.1
port: {ep.port}
endpoints:
  - {{name: one, path: /one}}
  - {{name: broken, path: /fail}}
  - {{name: slow, path: /hang, timeout: 300ms}}
  - {{name: refused, url: "http://127.0.0.1:{closed_port}/x"}}
"""
        )
        config = ManagerConfig(
            listen="127.0.0.1:0",
            data_dir=tmp_path / "manager",
            heartbeat_interval=0.2,
            ttl=2.0,
            schedules_file=(schedules,),
            schedules_autostart=False,
        )
        manager = await serve_manager(config, extension_modules=["manager.schedules"])
        target = f"127.0.0.1:{manager.port}"
        worker = await serve_worker(
            WorkerConfig(
                manager=target,
                listen="127.0.0.1:0",
                data_dir=tmp_path / "worker",
                runtimes=("http",),
            )
        )
        gw = await serve_gateway(target, "127.0.0.1:0", compat_modules=["gateway.compat.cronjob"])
        try:
            async with (
                Client(target) as client,
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.port}", timeout=30) as http,
            ):
                await eventually(client.list_nodes, what="the worker registered")
                yield Cluster(client, http, ep)
        finally:
            await gw.stop()
            await worker.stop()
            await manager.stop()


async def test_run_once_calls_every_endpoint_through_a_worker(cluster: Cluster) -> None:
    r = await cluster.http.get("/api/cronjob/run-once")
    assert (r.status_code, r.json()) == (200, {"message": "Job executed successfully"})
    (run,) = await cluster.client.list_runs("default")
    assert run.outcome is RunOutcome.PARTIALLY_FAILED
    by = {x.name: x for x in run.results}
    one = by["one"].result
    assert by["one"].ok and one.status_code == 200 and one.body == b"hello from one"
    assert one.latency_ms > 0
    assert not by["broken"].ok and by["broken"].result.status_code == 500
    assert by["slow"].result.error == "timed out after 0.3s"
    refused = by["refused"].result
    assert refused.status_code == 0 and "ConnectError" in refused.error
    assert by["one"].task_id is not None
    task = await cluster.client.get_task(by["one"].task_id)
    assert task.spec.runtime == "http" and task.status.state is TaskState.COMPLETED
    assert task.status.node_id


async def test_the_loop_fires_on_its_interval_until_stopped(cluster: Cluster) -> None:
    assert (await cluster.http.get("/api/cronjob/start")).status_code == 200
    await eventually(lambda: cluster.ep.hits.get("one", 0) >= 2, timeout=20)
    assert (await cluster.http.get("/api/cronjob/stop")).status_code == 200
    r = await cluster.http.get("/api/cronjob/status")
    assert r.json() == {"status": "Stopped"}
    runs = await cluster.client.list_runs("default")
    assert len(runs) >= 2
    assert {r.trigger for r in runs} == {"schedule"}
