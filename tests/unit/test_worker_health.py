"""Health probes (http, tcp, exec) and the verdicts ``watch`` reports.

The http probe runs against a tiny local server on 127.0.0.1 whose answer the
test flips between healthy and failing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from waiting import eventually

from corral.model import ExecProbe, HealthCheck, HttpProbe, PortMapping, TaskId, TaskSpec, TcpProbe
from worker import health
from worker.logfiles import LogStore
from worker.runtimes.base import Assignment, AttemptRef
from worker.runtimes.process import ProcessRuntime


class FlippingServer:
    """Answers GET with ``self.status``; counts connections, requests and their paths."""

    def __init__(self) -> None:
        self.status = 200
        self.paths: list[str] = []
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            request = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:  # a TCP probe connects and hangs up
            writer.close()
            return
        self.paths.append(request.split(b" ")[1].decode())
        reason = {200: "OK", 302: "Found", 503: "Unavailable"}.get(self.status, "X")
        writer.write(
            f"HTTP/1.1 {self.status} {reason}\r\nContent-Length: 0\r\n"
            "Location: /elsewhere\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def web() -> FlippingServer:
    server = FlippingServer()
    await server.start()
    yield server  # type: ignore[misc]
    await server.stop()


async def test_http_probe_accepts_2xx_and_3xx_only(web: FlippingServer) -> None:
    target = health.Target("127.0.0.1")
    check = HttpProbe(path="/healthz", port=web.port)
    assert await health.probe(check, target, 2) is None
    web.status = 302
    assert await health.probe(check, target, 2) is None
    web.status = 503
    reason = await health.probe(check, target, 2)
    assert reason == f"GET http://127.0.0.1:{web.port}/healthz returned 503"
    assert web.paths == ["/healthz"] * 3


async def test_http_probe_uses_the_published_host_port(
    web: FlippingServer, closed_port: int
) -> None:
    target = health.Target("127.0.0.1", ports=(PortMapping(80, web.port),))
    assert await health.probe(HttpProbe(path="/", port=80), target, 2) is None
    closed = closed_port
    reason = await health.probe(HttpProbe(port=closed), health.Target("127.0.0.1"), 2)
    assert reason is not None and reason.startswith(f"GET http://127.0.0.1:{closed}/: ConnectError")


async def test_tcp_probe(web: FlippingServer, closed_port: int) -> None:
    target = health.Target("127.0.0.1")
    assert await health.probe(TcpProbe(web.port), target, 2) is None
    closed = closed_port
    reason = await health.probe(TcpProbe(closed), target, 2)
    assert reason is not None and reason.startswith(f"tcp 127.0.0.1:{closed}: ")


async def test_exec_probe_runs_beside_the_attempt(tmp_path: Path) -> None:
    rt = ProcessRuntime(tmp_path / "p", LogStore(tmp_path / "logs", 1 << 20))
    ref = AttemptRef(TaskId("t"), 1)
    flag = tmp_path / "ready"
    await rt.start(Assignment(ref, TaskSpec(name="t", command=("sleep", "30")), "n"))  # type: ignore[arg-type]

    async def run(argv: tuple[str, ...], timeout: float) -> int:
        return await rt.exec(ref, argv, timeout)

    target = health.Target("127.0.0.1", exec=run)
    check = ExecProbe(("test", "-e", str(flag)))
    assert await health.probe(check, target, 2) == f"exec test -e {flag} exited 1"
    flag.touch()
    assert await health.probe(check, target, 2) is None
    slow = await health.probe(ExecProbe(("sleep", "10")), target, 0.3)
    assert slow is not None and ("timed out" in slow or "exited 124" in slow)
    assert await health.probe(check, health.Target("127.0.0.1"), 2) == (
        "exec probes are not supported by this runtime"
    )
    await rt.stop(ref, 2)
    await rt.close()


async def test_watch_reports_changes_of_verdict_only(web: FlippingServer) -> None:
    verdicts: list[tuple[bool, str]] = []
    changed = asyncio.Event()

    async def report(healthy: bool, reason: str) -> None:
        verdicts.append((healthy, reason))
        changed.set()

    check = HealthCheck(HttpProbe(port=web.port), interval=0.02, timeout=1, failure_threshold=3)
    watching = asyncio.ensure_future(health.watch(check, health.Target("127.0.0.1"), report))

    async def next_verdict() -> tuple[bool, str]:
        await asyncio.wait_for(changed.wait(), 10)
        changed.clear()
        return verdicts[-1]

    assert await next_verdict() == (True, "")
    web.status = 500
    requests_before = len(web.paths)
    healthy, reason = await next_verdict()
    assert not healthy and reason.endswith("returned 500")
    # Only after failure_threshold consecutive failures.
    assert len(web.paths) - requests_before >= 3
    web.status = 200
    assert await next_verdict() == (True, "")
    # Steady: more probes, no more verdicts.
    seen = len(web.paths)
    await eventually(lambda: len(web.paths) >= seen + 5)
    assert len(verdicts) == 3
    watching.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watching


async def test_initial_delay_holds_the_first_probe(web: FlippingServer) -> None:
    reports: list[bool] = []

    async def report(healthy: bool, reason: str) -> None:
        reports.append(healthy)

    check = HealthCheck(HttpProbe(port=web.port), interval=0.01, initial_delay=0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    watching = asyncio.ensure_future(health.watch(check, health.Target("127.0.0.1"), report))
    await eventually(lambda: web.paths)
    # A lower bound only: a loaded machine makes the first probe later, never earlier.
    assert loop.time() - started >= 0.5
    await eventually(lambda: reports)
    watching.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watching


async def test_one_client_serves_all_probes_of_a_watch(
    web: FlippingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[object] = []
    real = health.http_client

    def counting() -> object:
        made.append(real())
        return made[-1]

    monkeypatch.setattr(health, "http_client", counting)

    async def report(ok: bool, reason: str) -> None:
        pass

    check = HealthCheck(HttpProbe("/health", web.port), interval=0.02, failure_threshold=1)
    watching = asyncio.ensure_future(health.watch(check, health.Target("127.0.0.1"), report))
    try:
        await eventually(lambda: len(web.paths) >= 5)
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
    assert len(made) == 1  # building one costs ~19 ms of CPU: never per probe
    tcp = HealthCheck(TcpProbe(web.port), interval=0.02)
    connected = web.connections
    watching = asyncio.ensure_future(health.watch(tcp, health.Target("127.0.0.1"), report))
    await eventually(lambda: web.connections >= connected + 3)  # three TCP probes
    watching.cancel()
    await asyncio.gather(watching, return_exceptions=True)
    assert len(made) == 1  # and tcp watches make none
