"""``corral tls init``: a CA and certificates for a quick start with mutual TLS."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from corral import tls
from corral.cli.options import console, parse_or_exit


def init(
    dir: Annotated[Path, typer.Option("--dir", help="Where to write the PEM files.")],
    hosts: Annotated[
        str,
        typer.Option(help="Names and IPs of the servers, comma-separated (loopback is added)."),
    ] = "",
) -> None:
    """Make a CA, a server certificate (for manager, workers, gateway) and a client one."""
    names = [h.strip() for h in hosts.split(",") if h.strip()]
    paths = parse_or_exit(lambda: tls.init(dir, names))
    console.print(f"wrote {', '.join(str(p) for p in paths.values())}")
    console.print(
        "Start servers with --tls-cert {server} --tls-key {server_key} --tls-ca {ca};\n"
        "clients with --tls-cert {client} --tls-key {client_key} --tls-ca {ca}"
        " (or CORRAL_TLS_CERT, CORRAL_TLS_KEY, CORRAL_TLS_CA).".format(**paths),
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Certificates for mutual TLS.", no_args_is_help=True)
    group.command("init")(init)
    app.add_typer(group, name="tls")
