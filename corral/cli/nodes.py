"""``corral node ls|get|drain|undrain``: the workers the manager knows. Nodes are
addressed by id or by name."""

from __future__ import annotations

from typing import Annotated

import typer

from corral import output
from corral.cli.options import (
    ManagerOption,
    OutputOption,
    check_output,
    console,
    parse_or_exit,
    with_client,
)
from corral.client import DEFAULT_TARGET, Client
from corral.model import Node


def node_ls(manager: ManagerOption = DEFAULT_TARGET, out: OutputOption = "table") -> None:
    """List nodes with their status, allocation and runtimes."""
    parse_or_exit(lambda: check_output(out))
    output.print_any(console, with_client(manager, lambda c: c.list_nodes()), out)


def node_get(
    ref: Annotated[str, typer.Argument(help="Node id or name.")],
    manager: ManagerOption = DEFAULT_TARGET,
    out: OutputOption = "table",
) -> None:
    """Show one node, with live stats."""
    parse_or_exit(lambda: check_output(out))
    output.print_any(console, with_client(manager, lambda c: c.find_node(ref)), out)


def node_drain(
    ref: Annotated[str, typer.Argument(help="Node id or name.")],
    manager: ManagerOption = DEFAULT_TARGET,
    out: OutputOption = "table",
) -> None:
    """Stop placing tasks on a node and move its tasks elsewhere."""
    parse_or_exit(lambda: check_output(out))

    async def go(client: Client) -> Node:
        node = await client.find_node(ref)
        return await client.drain_node(node.id)

    node = with_client(manager, go)
    if out == "json":
        console.print_json(output.dumps(node))
    else:
        console.print(f"node {node.id} ({node.name}) {node.status.value}")


def node_undrain(
    ref: Annotated[str, typer.Argument(help="Node id or name.")],
    manager: ManagerOption = DEFAULT_TARGET,
    out: OutputOption = "table",
) -> None:
    """Let a drained node take new tasks again (tasks moved off it stay where they are)."""
    parse_or_exit(lambda: check_output(out))

    async def go(client: Client) -> Node:
        node = await client.find_node(ref)
        return await client.undrain_node(node.id)

    node = with_client(manager, go)
    if out == "json":
        console.print_json(output.dumps(node))
    else:
        console.print(f"node {node.id} ({node.name}) {node.status.value}")


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        rich_markup_mode=None, help="Inspect, drain and undrain nodes.", no_args_is_help=True
    )
    group.command("ls")(node_ls)
    group.command("get")(node_get)
    group.command("drain")(node_drain)
    group.command("undrain")(node_undrain)
    app.add_typer(group, name="node")
