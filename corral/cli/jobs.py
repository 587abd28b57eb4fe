"""``corral job run|ls|status|logs``: ad-hoc shell commands run to completion.

A job is ``sh -c CMD`` on the manager's jobs runtime (``--jobs-runtime``),
named by a fresh UUID unless ``--name`` is given; its output is kept after it
ends. ``-o json`` prints the JobService's proto3 JSON, as the gateway's
``/v1/jobs`` routes and grpcurl do.
"""

from __future__ import annotations

import sys
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
from corral.client import DEFAULT_TARGET, Client
from corral.jobs import Job

NameArgument = Annotated[str, typer.Argument(help="The job's name.")]


def _when(t: float | None) -> str:
    return "-" if t is None else output.ago(t)


def _state(job: Job) -> str:
    return output.state(job.state)


def job_run(
    cmd: Annotated[
        str | None, typer.Argument(help="Shell command (default: echo launched; sleep 10; ...).")
    ] = None,
    name: Annotated[str, typer.Option(help="Job name (default: a fresh UUID).")] = "",
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Stream its output until it ends.")
    ] = False,
    manager: ManagerOption = DEFAULT_TARGET,
    out: OutputOption = "table",
) -> None:
    """Run a shell command to completion as a job."""
    parse_or_exit(lambda: check_output(out))

    async def go(client: Client) -> Job:
        job = await client.run_job(cmd, name=name)
        if not follow:
            return job
        if out == "table":
            console.print(f"job {escape(job.name)} created")
        async for chunk in client.job_logs(job.name, follow=True):
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
        return await client.get_job(job.name)

    job = with_client(manager, go)
    if out == "json":
        console.print_json(output.dumps(job))
    elif not follow:
        console.print(f"job {escape(job.name)} created")
    if follow and job.status.failed:
        raise typer.Exit(1)


def job_ls(manager: ManagerOption = DEFAULT_TARGET, out: OutputOption = "table") -> None:
    """List jobs, newest first."""
    parse_or_exit(lambda: check_output(out))

    jobs = with_client(manager, lambda client: client.list_jobs())
    if out == "json":
        console.print_json(output.dumps(jobs))
        return
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "STATE", "ACTIVE", "SUCCEEDED", "FAILED", "CREATED", "COMMAND"):
        table.add_column(column)
    for j in jobs:
        s = j.status
        table.add_row(
            j.name,
            _state(j),
            str(s.active),
            str(s.succeeded),
            str(s.failed),
            _when(j.created_at),
            escape(j.cmd),
        )
    console.print(table)


def job_status(
    name: NameArgument, manager: ManagerOption = DEFAULT_TARGET, out: OutputOption = "table"
) -> None:
    """Show a job's status (batch/v1 shape: active, succeeded, failed, conditions)."""
    parse_or_exit(lambda: check_output(out))

    job = with_client(manager, lambda client: client.get_job(name))
    if out == "json":
        console.print_json(output.dumps(job))
        return
    s = job.status
    table = Table(box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("name", escape(job.name)),
        ("command", escape(job.cmd)),
        ("runtime", job.runtime + (f" ({job.image})" if job.image else "")),
        ("state", _state(job)),
        ("active", str(s.active)),
        ("succeeded", str(s.succeeded)),
        ("failed", str(s.failed)),
        ("started", _when(s.start_time)),
        ("completed", _when(s.completion_time)),
    ]
    rows += [
        ("condition", escape(" ".join(filter(None, (c.type, c.reason, c.message)))))
        for c in s.conditions
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


def job_logs(
    name: NameArgument,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep following.")] = False,
    tail: Annotated[int, typer.Option(help="Only the last N lines (0 = all).", min=0)] = 0,
    manager: ManagerOption = DEFAULT_TARGET,
) -> None:
    """Print a job's output (kept after it ends)."""

    async def go(client: Client) -> None:
        async for chunk in client.job_logs(name, tail=tail, follow=follow):
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()

    with_client(manager, go)


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        rich_markup_mode=None, help="Run ad-hoc shell commands to completion.", no_args_is_help=True
    )
    group.command("run")(job_run)
    group.command("ls")(job_ls)
    group.command("status")(job_status)
    group.command("logs")(job_logs)
    app.add_typer(group, name="job")
