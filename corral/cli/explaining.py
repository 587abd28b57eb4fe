"""``corral task explain ID``: why a task waits, node by node (a dry run of placement)."""

from __future__ import annotations

from typing import Annotated

import typer
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
from corral.client import DEFAULT_TARGET, Client
from corral.explanations import Explanation


def task_explain(
    ref: Annotated[str, typer.Argument(help="Task id or name.")],
    manager: ManagerOption = DEFAULT_TARGET,
    out: OutputOption = "table",
) -> None:
    """Show, per node, whether the task fits and why not, and where it would go now."""
    parse_or_exit(lambda: check_output(out))

    async def go(client: Client) -> Explanation:
        task = await client.find_task(ref)
        return await client.explain_task(task.id)

    found = with_client(manager, go)
    if out == "json":
        console.print_json(output.explanation_json(found))
        return
    console.print(
        f"task {found.task_id} is {output.state(found.state)}: {found.message}\n{found.summary}",
        highlight=False,
    )
    console.print(nodes_table(found))


def nodes_table(found: Explanation) -> Table:
    table = Table("NODE", "STATUS", "FITS", "FREE (cpu, memory)", "WHY NOT")
    for node in found.nodes:
        chosen = " (chosen)" if node.node_id == found.chosen_node_id else ""
        free = f"{node.free.cpu:g}, {output.size(node.free.memory_bytes)}"
        why = "; ".join(r.message for r in node.reasons)
        fits = "[green]yes[/]" if node.fits else "[red]no[/]"
        table.add_row(node.node_name + chosen, node.status.value, fits, free, why)
    return table
