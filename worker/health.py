"""Health checks the worker runs against its attempts.

A probe answers one question, "is it healthy right now?", as ``None`` (yes)
or a short reason (no). ``watch`` turns probes into verdicts the way
Kubernetes and Nomad do: wait ``initial_delay``, probe every ``interval``
with ``timeout``, and call the attempt unhealthy after ``failure_threshold``
consecutive failures; one success makes it healthy again. Verdicts are
reported only when they change, so a steady attempt costs no updates.

Probes connect to the address the runtime reported (``Started.host``) and to
the host port published for the probe's container port, or the port itself
when it is not published (processes share the node's network).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from corral.model import ExecProbe, HealthCheck, HttpProbe, PortMapping, Probe, TcpProbe

# Called with (healthy, reason); reason is empty when healthy.
Verdict = Callable[[bool, str], Awaitable[None]]
Exec = Callable[[tuple[str, ...], float], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Target:
    """Where probes of one attempt go."""

    host: str
    ports: tuple[PortMapping, ...] = ()
    exec: Exec | None = None
    # Told every probe's kind and outcome (the worker's metrics count them).
    observe: Callable[[str, bool], None] | None = None

    def port_for(self, port: int) -> int:
        """The host port published for ``port``; the first published one when 0."""
        for mapping in self.ports:
            if (port in (0, mapping.container_port)) and mapping.host_port:
                return mapping.host_port
        if port == 0 and self.ports:
            return self.ports[0].container_port
        return port


def http_client() -> httpx.AsyncClient:
    """A client for one attempt's probes.

    Made once per watched attempt, not per probe: building a client costs about
    19 ms of CPU (httpx loads an SSL context), which at one probe every 10 s on
    hundreds of attempts would take a whole core. No keep-alive, so every probe
    still opens its own connection, as Kubernetes' and Nomad's probes do.
    """
    return httpx.AsyncClient(
        follow_redirects=False, limits=httpx.Limits(max_keepalive_connections=0)
    )


async def probe(
    check: Probe, target: Target, timeout: float, http: httpx.AsyncClient | None = None
) -> str | None:
    """Run one probe; None when healthy, else why not."""
    try:
        # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
        async with asyncio.timeout(timeout):
            if isinstance(check, HttpProbe) and http is None:
                async with http_client() as client:
                    return await _probe(check, target, timeout, client)
            return await _probe(check, target, timeout, http)
    except TimeoutError:
        return f"timed out after {timeout:g}s"


async def _probe(
    check: Probe, target: Target, timeout: float, http: httpx.AsyncClient | None
) -> str | None:
    if isinstance(check, HttpProbe):
        assert http is not None
        return await _http(check, target, timeout, http)
    if isinstance(check, TcpProbe):
        return await _tcp(target.host, target.port_for(check.port))
    return await _exec(check, target, timeout)


async def _http(
    check: HttpProbe, target: Target, timeout: float, client: httpx.AsyncClient
) -> str | None:
    port = target.port_for(check.port)
    if not port:
        return "http probe has no port"
    host = f"[{target.host}]" if ":" in target.host else target.host
    path = check.path if check.path.startswith("/") else f"/{check.path}"
    url = f"http://{host}:{port}{path}"
    try:
        response = await client.get(url, timeout=timeout)
    except httpx.HTTPError as err:
        return f"GET {url}: {type(err).__name__} {err}".rstrip()
    if 200 <= response.status_code < 400:
        return None
    return f"GET {url} returned {response.status_code}"


async def _tcp(host: str, port: int) -> str | None:
    if not port:
        return "tcp probe has no port"
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError as err:
        return f"tcp {host}:{port}: {err.strerror or err}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


async def _exec(check: ExecProbe, target: Target, timeout: float) -> str | None:
    if target.exec is None:
        return "exec probes are not supported by this runtime"
    try:
        code = await target.exec(check.command, timeout)
    except Exception as err:  # the runtime's own failure is the probe's failure
        return f"exec {check.command[0] if check.command else ''}: {err}"
    return None if code == 0 else f"exec {' '.join(check.command)} exited {code}"


_KINDS: dict[type, str] = {HttpProbe: "http", TcpProbe: "tcp", ExecProbe: "exec"}


async def watch(check: HealthCheck, target: Target, report: Verdict) -> None:
    """Probe until cancelled, reporting each change of verdict."""
    await asyncio.sleep(check.initial_delay)
    if not isinstance(check.probe, HttpProbe):
        await _watch(check, target, report, None)
        return
    async with http_client() as http:
        await _watch(check, target, report, http)


async def _watch(
    check: HealthCheck, target: Target, report: Verdict, http: httpx.AsyncClient | None
) -> None:
    failures, healthy = 0, None
    loop = asyncio.get_running_loop()
    while True:
        began = loop.time()
        reason = await probe(check.probe, target, check.timeout, http)
        if target.observe is not None:
            target.observe(_KINDS.get(type(check.probe), "probe"), reason is None)
        if reason is None:
            failures = 0
            if healthy is not True:
                healthy = True
                await report(True, "")
        else:
            failures += 1
            if failures >= max(1, check.failure_threshold) and healthy is not False:
                healthy = False
                await report(False, reason)
        await asyncio.sleep(max(0.0, check.interval - (loop.time() - began)))
