"""No SSRF from the http runtime: refusals happen before any connection is attempted.

Every connect goes through a recording backend: a refused call must leave it
empty. No test sends traffic anywhere but 127.0.0.1 (link-local addresses are
only ever refused, and names resolve through a fake resolver).
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import httpcore
import pytest
from aiohttp import web

from corral.errors import ValidationError
from corral.model import HttpCall, HttpResult
from worker.config import WorkerConfig
from worker.runtimes import http
from worker.runtimes.egress import EgressPolicy, GuardedBackend, SocketOption, parse_networks


class Recording(httpcore.AsyncNetworkBackend):
    """The real backend, with every connection attempt written down."""

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        assert ipaddress.ip_address(host).is_loopback, f"a test tried to reach {host}"
        return await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class FakeDns:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(f"no such host {host}")
        return self.answers[host]


async def call(
    url: str, *, policy: EgressPolicy | None = None, dns: FakeDns | None = None
) -> tuple[HttpResult, Recording]:
    recording = Recording()
    policy = policy or EgressPolicy()
    backend = GuardedBackend(policy, inner=recording, resolve=dns or FakeDns({}))
    runtime = http.HttpRuntime(egress=policy, backend=backend)
    try:
        result = await runtime.call(HttpCall(url=url, timeout=5.0))
    finally:
        await runtime.close()
    return result, recording


@asynccontextmanager
async def local_server() -> AsyncIterator[int]:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="fine")

    async def hop(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/hop", hop)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.0.1:8080/",
        "http://[fe80::1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.google.internal./",
        "http://instance-data/",
    ],
)
async def test_link_local_and_metadata_are_refused_before_connecting(url: str) -> None:
    dns = FakeDns({})
    result, recording = await call(url, dns=dns)
    assert "refused" in result.error, result.error
    assert recording.connects == []
    assert dns.asked == []  # metadata names are refused without even a lookup


@pytest.mark.parametrize(
    "answers", [["169.254.169.254"], ["127.0.0.1", "169.254.169.254"], ["fe80::1%eth0"]]
)
async def test_a_name_is_checked_on_every_address_it_resolves_to(answers: list[str]) -> None:
    dns = FakeDns({"innocent.test": answers})
    result, recording = await call("http://innocent.test/", dns=dns)
    assert "refused" in result.error and "innocent.test" in result.error
    assert dns.asked == ["innocent.test"]
    assert recording.connects == []


async def test_the_checked_address_is_the_one_connected_to() -> None:
    async with local_server() as port:
        dns = FakeDns({"fine.test": ["127.0.0.1"]})
        result, recording = await call(f"http://fine.test:{port}/ok", dns=dns)
    assert result.status_code == 200 and result.body == b"fine"
    # The connection went to the address checked, not to the name resolved again.
    assert recording.connects == [("127.0.0.1", port)]


async def test_corral_ports_on_this_host_are_refused() -> None:
    async with local_server() as port:
        policy = EgressPolicy(own_ports={port})
        for host in ("127.0.0.1", "[::1]", "localhost"):
            dns = FakeDns({"localhost": ["127.0.0.1"]})
            result, recording = await call(f"http://{host}:{port}/ok", policy=policy, dns=dns)
            assert "Corral's own servers" in result.error, result.error
            assert recording.connects == []


async def test_a_redirect_to_link_local_is_returned_not_followed() -> None:
    async with local_server() as port:
        result, recording = await call(f"http://127.0.0.1:{port}/hop")
    assert result.status_code == 302
    assert recording.connects == [("127.0.0.1", port)]


async def test_http_deny_refuses_and_http_allow_lets_through() -> None:
    async with local_server() as port:
        policy = EgressPolicy(deny=parse_networks(["127.0.0.0/8"], "http_deny"))
        result, recording = await call(f"http://127.0.0.1:{port}/ok", policy=policy)
        assert "--http-deny" in result.error and recording.connects == []
    allow = EgressPolicy(allow=parse_networks(["169.254.169.254/32"], "http_allow"))
    assert allow.refuse(ipaddress.ip_address("169.254.169.254"), 80) is None
    assert allow.refuse(ipaddress.ip_address("169.254.169.253"), 80) is not None
    both = EgressPolicy(
        allow=parse_networks(["169.254.0.0/16"], "http_allow"),
        deny=parse_networks(["169.254.169.254/32"], "http_deny"),
    )
    assert both.refuse(ipaddress.ip_address("169.254.169.254"), 80) is not None


def test_the_worker_flags_build_the_policy_and_name_bad_cidrs() -> None:
    runtime = http.create(
        WorkerConfig(manager="127.0.0.1:50051", listen="127.0.0.1:50052", http_deny=("10.0.0.0/8",))
    )
    assert runtime.egress.own_ports == {50051, 50052}
    assert runtime.egress.deny == (ipaddress.ip_network("10.0.0.0/8"),)
    for bad in ("10.0.0.0/8\n", "nope", "10.0.0.300/8"):
        with pytest.raises(ValidationError) as raised:
            http.create(WorkerConfig(http_allow=("127.0.0.0/8", bad)))
        assert raised.value.field == "http_allow[1]"
