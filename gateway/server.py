"""Running the gateway: in-process for tests and ``corral up``, or as a program.

``serve`` starts uvicorn on the current event loop and returns once it
listens, with the bound port (``listen`` may ask for port 0);
``run`` is the blocking entry point of ``corral gateway``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from corral import loops, tracing
from corral.errors import ValidationError
from corral.serving import write_port_file
from corral.tls import TlsFiles, check_exposure
from gateway.app import create_app
from gateway.gathering import GatheringHttpToolsProtocol

STOP_GRACE = 5.0


@dataclass
class RunningGateway:
    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int
    app: Starlette

    @property
    def metrics_port(self) -> int | None:
        """The bound port of ``/metrics`` (None when ``metrics_listen`` was empty)."""
        running = getattr(self.app.state, "metrics_server", None)
        return None if running is None else int(running.port)

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            async with asyncio.timeout(STOP_GRACE + 1):
                await asyncio.shield(self.task)


@dataclass(frozen=True)
class Https:
    """The gateway's own HTTPS port (``--https-cert``, ``--https-key``)."""

    cert: Path | None = None
    key: Path | None = None

    @property
    def enabled(self) -> bool:
        return self.cert is not None or self.key is not None

    def check(self) -> None:
        for field, path in (("https_cert", self.cert), ("https_key", self.key)):
            if path is None:
                raise ValidationError(field, "--https-cert and --https-key are given together")
            if not path.is_file():
                raise ValidationError(field, f"{path} is not a readable file")


def _config(app: Starlette, listen: str, https: Https | None = None) -> uvicorn.Config:
    host, _, port = listen.rpartition(":")
    cert = key = None
    if https is not None and https.enabled:
        https.check()
        cert, key = str(https.cert), str(https.key)
    return uvicorn.Config(
        app,
        host=host.strip("[]") or "127.0.0.1",
        port=int(port),
        http=GatheringHttpToolsProtocol,  # one send per response (gateway.gathering)
        log_level="warning",
        log_config=None,  # uvicorn's lines go through the root logger: --log-format applies
        lifespan="on",
        timeout_graceful_shutdown=int(STOP_GRACE),
        ssl_certfile=cert,
        ssl_keyfile=key,
    )


async def serve(
    manager: str, listen: str = "127.0.0.1:8080", *, https: Https | None = None, **options: Any
) -> RunningGateway:
    """Start the gateway for the manager at ``manager``; return once it accepts connections.

    ``options`` go to ``create_app`` (tests choose the proto files and compat modules,
    ``tls`` the client certificate to the manager); ``https`` serves HTTPS.
    """
    app = create_app(manager, **options)
    server = uvicorn.Server(_config(app, listen, https))
    task = asyncio.create_task(server.serve())
    # uvicorn offers no start-up event; `started` flips once the socket listens.
    while not server.started:
        if task.done():
            with contextlib.suppress(SystemExit):  # uvicorn exits when it cannot bind
                task.result()
            raise OSError(f"the gateway could not listen on {listen}")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return RunningGateway(server, task, int(port), app)


def run(
    manager: str,
    listen: str = "127.0.0.1:8080",
    port_file: Path | None = None,
    *,
    metrics_listen: str = "",
    tls: TlsFiles | None = None,
    https: Https | None = None,
    insecure: bool = False,
) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn handles both); report the port to ``port_file``.

    Runs on the servers' event loop (``corral.loops``: uvloop unless
    ``CORRAL_EVENT_LOOP`` says otherwise). Traces when the environment asks
    for it (``corral.tracing``). A non-loopback address needs HTTPS and a TLS
    link to the manager (whose ACLs then judge every forwarded token), or
    ``insecure``.
    """
    check_exposure(
        listen,
        tls=https is not None and https.enabled,
        acl=tls is not None and tls.enabled,
        insecure=insecure,
        program="the gateway",
        needs=(
            "HTTPS (--https-cert/--https-key)",
            "TLS to the manager (--tls-cert/--tls-key/--tls-ca)",
        ),
    )

    async def main() -> None:
        gateway = await serve(manager, listen, https=https, metrics_listen=metrics_listen, tls=tls)
        write_port_file(port_file, gateway.port)
        await gateway.task

    tracing.setup("gateway")
    try:
        loops.run(main())
    finally:
        tracing.shutdown()
