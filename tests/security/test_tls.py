"""Mutual TLS on every link: who is refused, and a whole cluster that works over it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
from security_pki import Pki, pki_fixture  # noqa: F401 -- the fixture

from corral.client import Client
from corral.errors import Unavailable, ValidationError
from corral.model import TaskSpec
from corral.tls import check_exposure, is_loopback
from gateway import server as gateway_server
from manager.config import ManagerConfig
from manager.server import RunningManager, serve
from worker import server as worker_server
from worker.config import WorkerConfig


@pytest.fixture
async def manager(tmp_path: Path, pki: Pki) -> AsyncIterator[RunningManager]:
    s = pki.server
    config = ManagerConfig(
        listen="127.0.0.1:0",
        data_dir=tmp_path / "m",
        heartbeat_interval=0.1,
        ttl=10.0,
        tls_cert=s.cert,
        tls_key=s.key,
        tls_ca=s.ca,
    )
    running = await serve(config, extension_modules=())
    yield running
    await running.stop(0)


def target(manager: RunningManager) -> str:
    return f"127.0.0.1:{manager.port}"


async def test_a_client_with_a_certificate_from_the_ca_is_served(
    manager: RunningManager, pki: Pki
) -> None:
    async with Client(target(manager), tls=pki.client, retries=0) as client:
        assert await client.list_nodes() == []


@pytest.mark.parametrize("who", ["no_cert_client", "other_ca_client", "expired_client"])
async def test_a_client_without_a_valid_certificate_is_refused(
    manager: RunningManager, pki: Pki, who: str
) -> None:
    files = getattr(pki, who)
    if who == "no_cert_client":
        assert files.ca is not None
        creds = grpc.ssl_channel_credentials(root_certificates=files.ca.read_bytes())
        async with grpc.aio.secure_channel(target(manager), creds) as ch:
            call = ch.unary_unary("/corral.v1.ManagerService/ListNodes")
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await call(b"", timeout=5)
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        return
    async with Client(target(manager), tls=files, retries=0, timeout=5) as client:
        with pytest.raises(Unavailable):
            await client.list_nodes()


async def test_plaintext_to_a_tls_port_is_refused(manager: RunningManager) -> None:
    async with Client(target(manager), retries=0, timeout=5) as client:
        with pytest.raises(Unavailable):
            await client.list_nodes()


async def test_a_worker_and_the_gateway_work_over_mtls(
    manager: RunningManager, pki: Pki, tmp_path: Path
) -> None:
    s = pki.server
    worker = await worker_server.serve(
        WorkerConfig(
            manager=target(manager),
            listen="127.0.0.1:0",
            data_dir=tmp_path / "w",
            runtimes=("process",),
            tls_cert=s.cert,
            tls_key=s.key,
            tls_ca=s.ca,
        )
    )
    gateway = await gateway_server.serve(target(manager), "127.0.0.1:0", tls=s)
    try:
        async with Client(target(manager), tls=pki.client) as client:
            spec = TaskSpec(name="hello", runtime="process", command=("echo", "over-mtls"))
            task = await client.submit(spec)
            done = await client.wait(task.id, timeout=30)
            assert done.status.exit_code == 0
            # The manager reads the output from the worker over mTLS too.
            output = b"".join([c async for c in client.logs(task.id)])
            assert b"over-mtls" in output
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}") as http:
            reply = await http.get(f"/v1/tasks/{task.id}")
            assert reply.status_code == 200, reply.text
            assert reply.json()["id"] == task.id
    finally:
        await gateway.stop()
        await worker.stop()


def test_loopback_is_told_apart_from_exposed_addresses() -> None:
    for listen in ("127.0.0.1:1", "localhost:1", "[::1]:1", "127.9.9.9:0"):
        assert is_loopback(listen), listen
    for listen in ("0.0.0.0:1", "[::]:1", ":1", "10.1.2.3:1", "192.168.1.1:0"):
        assert not is_loopback(listen), listen


def test_exposure_needs_tls_and_acls_or_insecure(caplog: pytest.LogCaptureFixture) -> None:
    for tls, acl in ((False, False), (True, False), (False, True)):
        with pytest.raises(ValidationError) as raised:
            check_exposure("0.0.0.0:50051", tls=tls, acl=acl, insecure=False, program="m")
        assert raised.value.field == "listen"
        assert "--insecure" in raised.value.problem
    check_exposure("0.0.0.0:50051", tls=True, acl=True, insecure=False, program="m")
    with caplog.at_level(logging.WARNING):
        check_exposure("0.0.0.0:50051", tls=False, acl=False, insecure=True, program="m")
    assert "--insecure" in caplog.text


async def test_servers_refuse_a_non_loopback_listen_before_binding(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="non-loopback"):
        await serve(ManagerConfig(listen="0.0.0.0:0", data_dir=tmp_path / "m"))
    with pytest.raises(ValidationError, match="non-loopback"):
        await worker_server.serve(WorkerConfig(listen="0.0.0.0:0", data_dir=tmp_path / "w"))
    assert not (tmp_path / "m").exists()
