"""The ``http`` runtime: one HTTP call per attempt, reported as the task's result.

The call's status, latency and the first ``BODY_LIMIT`` bytes of its body
become an ``HttpResult``; the attempt succeeds when ``HttpCall.accepts`` the
status. A refused connection, a bad address or a timeout is a failed attempt
with the error recorded, never an exception out of the runtime. The whole call
(connect, send, headers and body) is bounded by ``spec.http.timeout``, so an
endpoint that trickles bytes is cut as surely as one that never answers.
Environment proxies are ignored: a schedule calls exactly the URL it names.
Every connection is checked first by ``worker.runtimes.egress`` (no
link-local addresses, no Corral ports: no SSRF), and redirects are returned,
not followed. An attempt's "logs" are a short text summary of its call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator

import httpcore
import httpx

from corral.model import HttpCall, HttpResult
from worker.config import WorkerConfig
from worker.runtimes.base import Adopted, Assignment, AttemptRef, Exit, Started, StartError
from worker.runtimes.egress import EgressPolicy, GuardedBackend, parse_networks

BODY_LIMIT = 64 * 1024
# Calls in flight at once per worker (httpx's default of 100 would queue a big run's calls).
MAX_CALLS = 1000
# Summaries kept for `logs` after the attempt ended (oldest dropped first).
KEPT_SUMMARIES = 4096


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose every connect is checked."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        # httpx takes no network backend, so its pool is replaced by one that has ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


class HttpRuntime:
    name = "http"

    def __init__(
        self,
        *,
        body_limit: int = BODY_LIMIT,
        egress: EgressPolicy | None = None,
        backend: GuardedBackend | None = None,
    ) -> None:
        self.egress = egress or EgressPolicy()
        self.backend = backend or GuardedBackend(self.egress)
        limits = httpx.Limits(max_connections=MAX_CALLS)
        self._client = httpx.AsyncClient(
            trust_env=False,
            follow_redirects=False,
            transport=GuardedTransport(self.backend, limits),
        )
        self._body_limit = body_limit
        self._calls: dict[str, asyncio.Task[Exit]] = {}
        self._summaries: OrderedDict[str, str] = OrderedDict()

    async def available(self) -> bool:
        return True

    async def start(self, assignment: Assignment) -> Started:
        call = assignment.spec.http
        if call is None:
            raise StartError("an http task needs spec.http")
        key = assignment.ref.key
        if key not in self._calls:
            self._calls[key] = asyncio.create_task(self._perform(key, call), name=f"http-{key}")
        return Started()

    async def wait(self, ref: AttemptRef) -> Exit:
        job = self._calls.get(ref.key)
        if job is None:
            return Exit(exit_code=None, message="unknown attempt", succeeded=False)
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            if job.cancelled():
                return Exit(exit_code=None, message="stopped", succeeded=False)
            raise

    async def stop(self, ref: AttemptRef, grace: float) -> None:
        job = self._calls.get(ref.key)
        if job is not None and not job.done():
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job

    async def logs(
        self, ref: AttemptRef, *, tail: int = 0, follow: bool = False
    ) -> AsyncIterator[bytes]:
        job = self._calls.get(ref.key)
        if follow and job is not None and not job.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(job)
        text = self._summaries.get(ref.key, "")
        if text:
            lines = text.splitlines(keepends=True)
            yield "".join(lines[-tail:] if tail else lines).encode()

    async def adopt(self) -> list[Adopted]:
        # A call does not survive the worker; the manager reschedules or fails the task.
        return []

    async def exec(self, ref: AttemptRef, argv: tuple[str, ...], timeout: float) -> int:
        return 1  # nothing runs beside a call

    async def usage(self) -> tuple[float, int]:
        return 0.0, 0

    async def close(self) -> None:
        for job in self._calls.values():
            job.cancel()
        await asyncio.gather(*self._calls.values(), return_exceptions=True)
        await self._client.aclose()

    async def _perform(self, key: str, call: HttpCall) -> Exit:
        result = await self.call(call)
        ok = not result.error and call.accepts(result.status_code)
        summary = describe(call, result, ok)
        self._summaries[key] = summary
        while len(self._summaries) > KEPT_SUMMARIES:
            self._summaries.popitem(last=False)
        # Finished attempts are forgotten once their summary is all that is asked for.
        while len(self._calls) > KEPT_SUMMARIES:
            oldest = next(iter(self._calls))
            if not self._calls[oldest].done():
                break
            del self._calls[oldest]
        return Exit(
            exit_code=0 if ok else 1,
            message=summary.strip(),
            result=result,
            succeeded=ok,
        )

    async def call(self, call: HttpCall) -> HttpResult:
        """Make the call; every failure becomes a result with ``error`` set."""
        started = time.perf_counter()
        status, body, truncated = 0, b"", False
        try:
            async with asyncio.timeout(call.timeout):
                request = self._client.build_request(
                    call.method,
                    call.url,
                    headers=dict(call.headers),
                    content=call.body or None,
                    timeout=httpx.Timeout(call.timeout),
                )
                response = await self._client.send(request, stream=True)
                try:
                    status = response.status_code
                    body, truncated = await self._read(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            return _failed(started, status, body, f"timed out after {call.timeout:g}s")
        except httpx.TimeoutException:
            return _failed(started, status, body, f"timed out after {call.timeout:g}s")
        except httpx.HTTPError as err:
            return _failed(started, status, body, f"{type(err).__name__}: {err}".rstrip(": "))
        except (OSError, ValueError) as err:
            return _failed(started, status, body, f"{type(err).__name__}: {err}")
        latency = (time.perf_counter() - started) * 1000
        return HttpResult(
            status_code=status, latency_ms=latency, body=body, body_truncated=truncated
        )

    async def _read(self, response: httpx.Response) -> tuple[bytes, bool]:
        kept = bytearray()
        async for chunk in response.aiter_bytes():
            room = self._body_limit - len(kept)
            kept += chunk[:room]
            if len(chunk) > room:
                return bytes(kept), True
        return bytes(kept), False


def _failed(started: float, status: int, body: bytes, error: str) -> HttpResult:
    latency = (time.perf_counter() - started) * 1000
    return HttpResult(status_code=status, latency_ms=latency, body=body, error=error)


def describe(call: HttpCall, result: HttpResult, ok: bool) -> str:
    """One line per call, for `corral logs`."""
    verdict = "ok" if ok else "failed"
    if result.error:
        took = f"{result.latency_ms:.1f} ms"
        return f"{call.method} {call.url} -> {result.error} after {took} ({verdict})\n"
    cut = " (truncated)" if result.body_truncated else ""
    return (
        f"{call.method} {call.url} -> {result.status_code} in {result.latency_ms:.1f} ms, "
        f"{len(result.body)} bytes{cut} ({verdict})\n"
    )


def create(config: WorkerConfig) -> HttpRuntime:
    policy = EgressPolicy(
        allow=parse_networks(config.http_allow, "http_allow"),
        deny=parse_networks(config.http_deny, "http_deny"),
        own_ports=own_ports(config),
    )
    return HttpRuntime(egress=policy)


def own_ports(config: WorkerConfig) -> set[int]:
    """The manager's ports and the worker's own (when fixed; else added once bound)."""
    ports = set()
    for address in [*config.manager.split(","), config.listen]:
        _, _, port = address.strip().rpartition(":")
        if port.isascii() and port.isdigit() and int(port):
            ports.add(int(port))
    return ports
