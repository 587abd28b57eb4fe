"""Serving Prometheus metrics: one small HTTP endpoint per process, on the event loop.

Every Corral server (manager, worker, gateway) keeps its metrics in a
``CollectorRegistry`` of its own rather than prometheus-client's global one,
so several servers in one process (tests, benchmarks) never mix their
figures. ``serve`` answers ``GET /metrics`` on ``--metrics-listen HOST:PORT``
with the text exposition format.

The endpoint runs on the server's own event loop (``asyncio.start_server``)
instead of prometheus-client's thread: the collectors that read the manager's
and worker's in-memory state at scrape time then never race the loop that
changes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from corral.errors import ValidationError

log = logging.getLogger(__name__)

PREFIX = "corral_"
READ_TIMEOUT = 5.0
MAX_REQUEST_BYTES = 16 * 1024


@dataclass
class MetricsServer:
    """A running ``/metrics`` endpoint; ``port`` is the bound one (listen may ask for 0)."""

    server: asyncio.Server
    port: int

    async def stop(self) -> None:
        self.server.close()
        with contextlib.suppress(Exception):
            await self.server.wait_closed()


def split_listen(listen: str, field: str = "metrics_listen") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as host and port; bad input names the field."""
    host, sep, port = listen.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValidationError(field, f"{listen!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


async def serve(listen: str, registry: CollectorRegistry) -> MetricsServer:
    """Answer ``GET /metrics`` (and ``/``) on ``listen`` with ``registry``'s metrics."""
    host, port = split_listen(listen)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            status, body, kind = _answer(head, registry)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a client that sends no request gets none
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, host, port, limit=MAX_REQUEST_BYTES)
    bound = int(server.sockets[0].getsockname()[1])
    log.info("metrics listening", extra={"listen": f"{host}:{bound}"})
    return MetricsServer(server, bound)


def _answer(head: bytes, registry: CollectorRegistry) -> tuple[str, bytes, str]:
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    if len(parts) != 3:
        return "400 Bad Request", b"bad request line\n", "text/plain"
    method, target, _ = parts
    path = target.split("?", 1)[0]
    if path not in ("/metrics", "/"):
        return "404 Not Found", b"metrics are at /metrics\n", "text/plain"
    if method not in ("GET", "HEAD"):
        return "405 Method Not Allowed", b"use GET\n", "text/plain"
    body = generate_latest(registry)
    return "200 OK", b"" if method == "HEAD" else body, CONTENT_TYPE_LATEST


async def maybe_serve(listen: str, registry: CollectorRegistry) -> MetricsServer | None:
    """``serve`` when ``listen`` is set; metrics are off when it is empty."""
    return await serve(listen, registry) if listen else None
