"""``corral health``: exit 0 when a server answers SERVING, 1 otherwise.

The image's HEALTHCHECK runs it; without flags it asks the manager on
127.0.0.1:50051 (``CORRAL_HEALTH_ADDR`` for a worker, ``CORRAL_HEALTH_URL`` for
the gateway's ``/health``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from corral import probing
from corral.cli.options import console, errors


def health(
    addr: Annotated[
        str,
        typer.Option("--addr", envvar="CORRAL_HEALTH_ADDR", help="gRPC server (HOST:PORT)."),
    ] = "127.0.0.1:50051",
    url: Annotated[
        str,
        typer.Option(
            "--url", envvar="CORRAL_HEALTH_URL", help="HTTP URL to check instead (the gateway)."
        ),
    ] = "",
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait.")] = 3.0,
) -> None:
    """Check a server with the gRPC health protocol (or an HTTP URL); exit 1 unless SERVING."""
    if timeout <= 0:
        errors.print("timeout: must be more than 0 seconds")
        raise typer.Exit(2)
    status = (
        probing.http_status(url, timeout=timeout)
        if url
        else probing.grpc_status(addr, timeout=timeout)
    )
    (console if status == "SERVING" else errors).print(f"{url or addr}: {status}")
    raise typer.Exit(0 if status == "SERVING" else 1)


def register(app: typer.Typer) -> None:
    app.command("health")(health)
