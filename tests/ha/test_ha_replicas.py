"""Managers in one process sharing a PostgreSQL: one serves, standbys refuse and point at it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pg import pg_cluster, pg_url

from corral.client import Client
from corral.errors import ValidationError
from corral.leaders import LEADER_METADATA
from corral.model import TaskSpec
from corral.serving import channel
from corral.v1 import jobs_pb2, jobs_pb2_grpc, manager_pb2, manager_pb2_grpc
from manager.config import ManagerConfig
from manager.failover import Replica
from manager.server import serve

LEASE = 1.0

# PostgreSQL fixtures (tests/pg.py); no conftest.py here, which would shadow the root one.
__all__ = ["pg_cluster", "pg_url"]


def config(tmp_path: Path, url: str, name: str) -> ManagerConfig:
    return ManagerConfig(
        listen="127.0.0.1:0",
        data_dir=tmp_path / name,
        store=url,
        lease_duration=LEASE,
        heartbeat_interval=0.2,
        ttl=1.0,
    )


async def start(tmp_path: Path, url: str, name: str) -> Replica:
    replica = await serve(config(tmp_path, url, name), extension_modules=["manager.jobs"])
    assert isinstance(replica, Replica)
    return replica


@pytest.fixture
async def pair(tmp_path: Path, pg_url: str) -> AsyncIterator[tuple[Replica, Replica]]:
    first = await start(tmp_path, pg_url, "a")
    async with asyncio.timeout(10):
        await first.led.wait()
    second = await start(tmp_path, pg_url, "b")
    try:
        yield first, second
    finally:
        await second.stop(0)
        await first.stop(0)


def address(replica: Replica) -> str:
    return f"127.0.0.1:{replica.port}"


async def health(replica: Replica) -> int:
    async with channel(address(replica)) as ch:
        reply = await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    return int(reply.status)


async def test_a_standby_is_not_serving_and_names_the_leader(
    pair: tuple[Replica, Replica],
) -> None:
    leader, standby = pair
    assert await health(leader) == health_pb2.HealthCheckResponse.SERVING
    assert await health(standby) == health_pb2.HealthCheckResponse.NOT_SERVING
    async with channel(address(standby)) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await manager_pb2_grpc.ManagerServiceStub(ch).ListTasks(
                manager_pb2.ListTasksRequest(), timeout=5
            )
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        assert (LEADER_METADATA, address(leader)) in tuple(caught.value.trailing_metadata())
        # Feature services and streams are refused the same way.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await jobs_pb2_grpc.JobServiceStub(ch).ListJobs(jobs_pb2.ListJobsRequest(), timeout=5)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        call = manager_pb2_grpc.ManagerServiceStub(ch).WatchEvents(
            manager_pb2.WatchEventsRequest(), timeout=5
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
        assert (LEADER_METADATA, address(leader)) in tuple(caught.value.trailing_metadata())


async def test_a_client_given_the_standby_first_reaches_the_leader(
    pair: tuple[Replica, Replica],
) -> None:
    leader, standby = pair
    async with Client(f"{address(standby)},{address(leader)}") as client:
        task = await client.submit(TaskSpec(name="followed", command=("true",)))
        assert (await client.get_task(task.id)).spec.name == "followed"
        events = client.watch_events(1)
        first = await anext(aiter(events))
        assert first.kind.startswith("task.")
        await events.aclose()
    assert leader.core is not None and standby.core is None
    # A single address of a standby is enough: its hint leads to the leader.
    async with Client(address(standby)) as client:
        assert [t.id for t in await client.list_tasks()] == [task.id]


async def test_the_standby_takes_over_with_the_state(pair: tuple[Replica, Replica]) -> None:
    leader, standby = pair
    targets = f"{address(leader)},{address(standby)}"
    async with Client(targets) as client:
        kept = await client.submit(TaskSpec(name="kept", command=("true",)), id="kept-1")
        await leader.stop(0)
        async with asyncio.timeout(10):
            await standby.led.wait()
        assert await health(standby) == health_pb2.HealthCheckResponse.SERVING
        assert (await client.get_task("kept-1")).id == kept.id
        after = await client.submit(TaskSpec(name="after", command=("true",)), id="after-1")
        assert after.id == "after-1"


async def test_a_bad_store_url_names_the_flag() -> None:
    with pytest.raises(ValidationError) as caught:
        ManagerConfig(store="mysql://x@y/z")
    assert caught.value.field == "store"
    with pytest.raises(ValidationError) as caught:
        ManagerConfig(store="postgresql://x@y/z", advertise="nohost")
    assert caught.value.field == "advertise"


async def test_a_replica_with_acls_refuses_strangers_seals_secrets_and_has_metrics(
    tmp_path: Path, pg_url: str
) -> None:
    # The HA path serves the same ACLs and secret sealing as a single manager.
    settings = dataclasses.replace(
        config(tmp_path, pg_url, "acl"), acl=True, metrics_listen="127.0.0.1:0"
    )
    replica = await serve(settings, extension_modules=[])
    assert isinstance(replica, Replica)
    try:
        async with asyncio.timeout(10):
            await replica.led.wait()
        async with channel(address(replica)) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await manager_pb2_grpc.ManagerServiceStub(ch).ListTasks(
                    manager_pb2.ListTasksRequest(), timeout=5
                )
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        async with Client(address(replica), timeout=5) as anonymous:
            admin_secret = (await anonymous.acl_bootstrap()).secret
        async with Client(address(replica), timeout=5, token=admin_secret) as admin:
            spec = TaskSpec(name="sealed", command=("true",), secret_env={"API_KEY": "sk-marker"})
            await admin.submit(spec)
        async with await psycopg.AsyncConnection.connect(pg_url) as db:
            rows = await (await db.execute("SELECT spec FROM specs")).fetchall()
        assert rows and all(b"sk-marker" not in bytes(row[0]) for row in rows)
        # The leader serves /metrics for its term.
        assert replica.metrics_port is not None
        async with httpx.AsyncClient(timeout=5) as http:
            scraped = await http.get(f"http://127.0.0.1:{replica.metrics_port}/metrics")
        assert "corral_tasks_submitted_total 1.0" in scraped.text, scraped.text[:2000]
    finally:
        await replica.stop(0)
