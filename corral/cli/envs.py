"""``corral env start|stop|ls|get``: per-project environments from language templates.

``start`` waits until the environment runs (or reports why it could not) and
is idempotent; ``stop`` removes what the environment made (on Kubernetes its
Deployment, Service and Ingress). Every command takes ``-o json`` (the proto3
JSON of ``corral.v1.Environment``, as ``/v1/environments`` returns it).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from corral import output
from corral.cli.options import (
    ManagerOption,
    OutputOption,
    check_output,
    console,
    parse_or_exit,
    with_client,
)
from corral.client import DEFAULT_TARGET
from corral.environments import Environment

ReplIdArgument = Annotated[str, typer.Argument(help="Project id (a DNS label).")]


def _state(env: Environment) -> str:
    state = env.state.value
    style = {"running": "green", "failed": "red", "stopped": "magenta"}.get(state, "yellow")
    return f"[{style}]{state}[/]"


def _ports(env: Environment) -> str:
    return ", ".join(f"{p.host_port}->{p.container_port}" for p in env.ports) or "-"


def _created(env: Environment) -> str:
    when = env.created_at
    return "-" if when is None else datetime.fromtimestamp(when).strftime("%m-%d %H:%M:%S")


def environments_table(envs: list[Environment]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("REPL ID", "LANGUAGE", "RUNTIME", "STATE", "HOST", "PORTS", "CREATED"):
        table.add_column(column)
    for env in envs:
        table.add_row(
            escape(env.repl_id),
            escape(env.language),
            env.runtime,
            _state(env),
            escape(env.host),
            _ports(env),
            _created(env),
        )
    return table


def _details(env: Environment) -> None:
    console.print(f"[bold]{escape(env.repl_id)}[/] ({escape(env.language)}) {_state(env)}")
    console.print(f"  runtime   {env.runtime}   task {escape(env.task_id)}")
    console.print(f"  host      {escape(env.host)}")
    if env.namespace:
        console.print(f"  namespace {escape(env.namespace)}")
    console.print(f"  ports     {_ports(env)}")
    if env.message:
        console.print(f"  message   {escape(env.message)}")


def env_start(
    repl_id: ReplIdArgument,
    language: Annotated[str, typer.Option("--language", "-l", help="Template language.")],
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant (its own namespace).")] = "",
    manager: ManagerOption = DEFAULT_TARGET,
    out: OutputOption = "table",
) -> None:
    """Start the environment of a project (idempotent); waits until it runs."""
    parse_or_exit(lambda: check_output(out))

    env, created = with_client(
        manager, lambda client: client.start_environment(repl_id, language, tenant=tenant)
    )
    if out == "json":
        console.print_json(output.dumps(env))
        return
    verb = "started" if created else "already running"
    console.print(f"environment {escape(repl_id)} {verb}")
    _details(env)


def env_stop(
    repl_id: ReplIdArgument, manager: ManagerOption = DEFAULT_TARGET, out: OutputOption = "table"
) -> None:
    """Stop an environment and remove what it made."""
    parse_or_exit(lambda: check_output(out))

    with_client(manager, lambda client: client.stop_environment(repl_id))
    if out == "json":
        console.print_json(json.dumps({"replId": repl_id, "stopped": True}))
    else:
        console.print(f"environment {escape(repl_id)} stopped")


def env_ls(manager: ManagerOption = DEFAULT_TARGET, out: OutputOption = "table") -> None:
    """List environments (stopped ones left out)."""
    parse_or_exit(lambda: check_output(out))

    envs = with_client(manager, lambda client: client.list_environments())
    if out == "json":
        # The ListEnvironmentsResponse's JSON, as grpcurl prints it.
        listed = {"environments": [output.to_json(e) for e in envs]} if envs else {}
        console.print_json(json.dumps(listed))
    else:
        console.print(environments_table(envs))


def env_get(
    repl_id: ReplIdArgument, manager: ManagerOption = DEFAULT_TARGET, out: OutputOption = "table"
) -> None:
    """Show one environment."""
    parse_or_exit(lambda: check_output(out))

    env = with_client(manager, lambda client: client.get_environment(repl_id))
    if out == "json":
        console.print_json(output.dumps(env))
    else:
        _details(env)


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        rich_markup_mode=None,
        help="Per-project environments (Deployment+Service+Ingress, container or process).",
        no_args_is_help=True,
    )
    group.command("start")(env_start)
    group.command("stop")(env_stop)
    group.command("ls")(env_ls)
    group.command("get")(env_get)
    app.add_typer(group, name="env")
