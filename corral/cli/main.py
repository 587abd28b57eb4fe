"""Entry point of the ``corral`` command.

Each command module exposes ``register(app: typer.Typer) -> None`` and adds
its commands or sub-groups; this module only assembles them.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib import metadata
from typing import Annotated

import typer

from corral.cli import connection

COMMAND_MODULES = (
    "corral.cli.servers",  # manager, worker, gateway, up
    "corral.cli.tasks",  # run, task ls|get|stop, logs, events
    "corral.cli.nodes",  # node ls|get|drain|undrain
    "corral.cli.jobs",  # job run|ls|status|logs
    "corral.cli.schedules",  # schedule create|ls|get|start|stop|run-once|runs|rm
    "corral.cli.envs",  # env start|stop|ls|get
    "corral.cli.health",  # health (the image's HEALTHCHECK)
    "corral.cli.tls",  # tls init
    "corral.cli.acl",  # acl bootstrap, acl token create|ls|revoke
)
# Servers take their own TLS flags; `tls init` dials nothing; `health` reads CORRAL_TLS_*.
SERVER_COMMANDS = frozenset({"manager", "worker", "gateway", "up", "tls", "health"})


def _version(value: bool) -> None:
    """``corral --version``: the installed distribution's version, from its metadata."""
    if value:
        typer.echo(f"corral {metadata.version('corral')}")
        raise typer.Exit()


def build() -> typer.Typer:
    app = typer.Typer(
        name="corral",
        help="Corral: a small, fast container and task orchestrator.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        # Help texts are plain text: "[HOST:]PORT[/PROTO]" is a usage pattern, not rich markup.
        rich_markup_mode=None,
    )

    @app.callback()
    def root(
        version: Annotated[
            bool,
            typer.Option(
                "--version", callback=_version, is_eager=True, help="Print the version and exit."
            ),
        ] = False,
    ) -> None:
        """Corral: a small, fast container and task orchestrator."""

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
    connection.add_to_commands(app, skip=SERVER_COMMANDS)
    return app


def main() -> None:
    try:
        build()()
    except Exception as err:
        # Every expected failure exits with a message naming the field; reaching here
        # is a bug, but the user still gets one line, not a traceback.
        if os.environ.get("CORRAL_DEBUG"):
            raise
        print(
            f"error: unexpected {type(err).__name__}: {str(err)[:500]}"
            " (a bug; CORRAL_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
