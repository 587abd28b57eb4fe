"""``corral schedule create|ls|get|start|stop|run-once|runs|rm``: durable cron/interval
schedules that call HTTP endpoints (or run a task) and keep each run's responses.

``create`` reads the same file format as the manager's ``--schedules`` (YAML,
JSON, or the .NET orchestrator's ``appsettings.json``); the file is parsed and
checked here first, so a typo is reported with its key before any call.
Every read command takes ``-o json`` (the proto3 JSON of ``corral.v1``, as the
gateway's ``/v1/schedules`` routes return it).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
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
from corral.schedule_validation import validate_schedule
from corral.schedulefiles import load_file
from corral.schedules import (
    CronTrigger,
    HttpAction,
    Run,
    RunOutcome,
    Schedule,
    ScheduleState,
)

# Exit codes of run-once: 0 when every endpoint met its expectation (1 stays "could not ask").
RUN_EXIT_CODES = {RunOutcome.PARTIALLY_FAILED: 3, RunOutcome.FAILED: 4, RunOutcome.CANCELLED: 4}

NameArgument = Annotated[str, typer.Argument(help="Schedule name.")]

_STATE_STYLE = {
    ScheduleState.IDLE: "yellow",
    ScheduleState.RUNNING: "green",
    ScheduleState.STOPPED: "magenta",
}
_OUTCOME_STYLE = {
    RunOutcome.RUNNING: "cyan",
    RunOutcome.SUCCEEDED: "bold green",
    RunOutcome.PARTIALLY_FAILED: "yellow",
    RunOutcome.FAILED: "bold red",
    RunOutcome.CANCELLED: "magenta",
}


def _when(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t).strftime("%m-%d %H:%M:%S")


def _outcome(o: RunOutcome | None) -> str:
    return "-" if o is None else f"[{_OUTCOME_STYLE[o]}]{o.value}[/]"


def _trigger(s: Schedule) -> str:
    t = s.spec.trigger
    if isinstance(t, CronTrigger):
        return f"cron {t.expression}" + (f" ({t.time_zone})" if t.time_zone else "")
    return f"every {t.seconds:g}s"


def _window(s: Schedule) -> str:
    w = s.spec.window
    return "-" if w is None else f"{w.start_hour:02d}-{w.end_hour:02d}h {w.time_zone}".strip()


def _action(s: Schedule) -> str:
    a = s.spec.action
    if isinstance(a, HttpAction):
        return f"{len(a.endpoints)} endpoint(s)"
    return f"task {a.template.name} ({a.template.runtime})"


def schedules_table(schedules: list[Schedule]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "STATE", "TRIGGER", "WINDOW", "POLICY", "ACTION", "LAST RUN", "NEXT"):
        table.add_column(column)
    for s in schedules:
        st = s.status
        table.add_row(
            s.name,
            f"[{_STATE_STYLE[st.state]}]{st.state.value}[/]",
            escape(_trigger(s)),
            _window(s),
            s.spec.concurrency_policy.value,
            escape(_action(s)),
            f"{_when(st.last_run_at)} {_outcome(st.last_outcome)}" if st.last_run_at else "-",
            _when(st.next_run_at),
        )
    return table


def runs_table(runs: list[Run]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("RUN", "TRIGGER", "SCHEDULED", "TOOK", "OUTCOME", "OK"):
        table.add_column(column, no_wrap=True)
    for r in runs:
        took = f"{r.finished_at - r.started_at:.2f}s" if r.finished_at else "-"
        ok = sum(1 for x in r.results if x.ok)
        table.add_row(
            r.id,
            r.trigger,
            _when(r.scheduled_at),
            took,
            _outcome(r.outcome),
            f"{ok}/{len(r.results)}",
        )
    return table


def results_table(run: Run) -> Table:
    table = Table(box=None, header_style="bold", title=f"run {run.id}: {run.outcome.value}")
    for column in ("ENDPOINT", "OK", "STATUS", "LATENCY", "BODY / ERROR", "TASK"):
        table.add_column(column)
    for r in run.results:
        res = r.result
        text = res.error or res.body[:80].decode(errors="replace").replace("\n", " ")
        table.add_row(
            escape(r.name),
            "[green]yes[/]" if r.ok else "[red]no[/]",
            str(res.status_code or "-"),
            f"{res.latency_ms:.1f} ms" if res.latency_ms else "-",
            escape(text + (" ..." if res.body_truncated else "")),
            r.task_id or "-",
        )
    return table


def _details(s: Schedule) -> None:
    console.print(schedules_table([s]))
    a = s.spec.action
    if isinstance(a, HttpAction):
        table = Table(box=None, header_style="bold")
        for column in ("ENDPOINT", "METHOD", "URL", "TIMEOUT", "EXPECT"):
            table.add_column(column)
        for e in a.endpoints:
            expect = ",".join(map(str, e.expected_status)) or "2xx"
            table.add_row(escape(e.name), e.method, escape(e.target), f"{e.timeout:g}s", expect)
        console.print(table)


# -- commands -----------------------------------------------------------------------


def schedule_create(
    file: Annotated[Path, typer.Argument(help="YAML/JSON file (or appsettings.json).")],
    name: Annotated[str, typer.Option("--name", help="Name (overrides the file's).")] = "",
    start: Annotated[bool, typer.Option("--start", help="Start its loop at once.")] = False,
    manager: ManagerOption = DEFAULT_TARGET,
    out: OutputOption = "table",
) -> None:
    """Create a schedule from a file describing its trigger and endpoints."""
    parse_or_exit(lambda: check_output(out))
    spec = parse_or_exit(lambda: validate_schedule(load_file(file, name=name)))

    async def go(client: Client) -> Schedule:
        created = await client.create_schedule(spec)
        return await client.start_schedule(spec.name) if start else created

    schedule = with_client(manager, go)
    if out == "json":
        console.print_json(output.dumps(schedule))
    else:
        console.print(f"schedule {spec.name} created" + (" and started" if start else ""))


def schedule_ls(manager: ManagerOption = DEFAULT_TARGET, out: OutputOption = "table") -> None:
    """List schedules with their state, trigger, last and next run."""
    parse_or_exit(lambda: check_output(out))

    schedules = with_client(manager, lambda client: client.list_schedules())
    if out == "json":
        console.print_json(output.dumps(schedules))
    else:
        console.print(schedules_table(schedules))


def schedule_get(
    name: NameArgument, manager: ManagerOption = DEFAULT_TARGET, out: OutputOption = "table"
) -> None:
    """Show one schedule and its endpoints."""
    parse_or_exit(lambda: check_output(out))

    schedule = with_client(manager, lambda client: client.get_schedule(name))
    if out == "json":
        console.print_json(output.dumps(schedule))
    else:
        _details(schedule)


def schedule_start(
    name: NameArgument, manager: ManagerOption = DEFAULT_TARGET, out: OutputOption = "table"
) -> None:
    """Start a schedule's loop."""
    parse_or_exit(lambda: check_output(out))

    schedule = with_client(manager, lambda client: client.start_schedule(name))
    if out == "json":
        console.print_json(output.dumps(schedule))
    else:
        console.print(f"schedule {name} started (next run {_when(schedule.status.next_run_at)})")


def schedule_stop(
    name: NameArgument, manager: ManagerOption = DEFAULT_TARGET, out: OutputOption = "table"
) -> None:
    """Stop a schedule's loop and cancel its run in progress."""
    parse_or_exit(lambda: check_output(out))

    schedule = with_client(manager, lambda client: client.stop_schedule(name))
    if out == "json":
        console.print_json(output.dumps(schedule))
    else:
        console.print(f"schedule {name} stopped")


def schedule_run_once(
    name: NameArgument, manager: ManagerOption = DEFAULT_TARGET, out: OutputOption = "table"
) -> None:
    """Run a (not running) schedule's action now and show every response.

    Exits 0 when every endpoint succeeded, 3 when some failed, 4 when all failed.
    """
    parse_or_exit(lambda: check_output(out))

    run = with_client(manager, lambda client: client.run_schedule_once(name))
    if out == "json":
        console.print_json(output.dumps(run))
    else:
        console.print(results_table(run))
    if run.outcome is not RunOutcome.SUCCEEDED:
        raise typer.Exit(RUN_EXIT_CODES.get(run.outcome, 4))


def schedule_runs(
    name: NameArgument,
    run_id: Annotated[str, typer.Argument(help="A run id: show its results.")] = "",
    manager: ManagerOption = DEFAULT_TARGET,
    out: OutputOption = "table",
) -> None:
    """List a schedule's kept runs (newest first), or one run's results."""
    parse_or_exit(lambda: check_output(out))

    if run_id:
        run = with_client(manager, lambda client: client.get_run(name, run_id))
        if out == "json":
            console.print_json(output.dumps(run))
        else:
            console.print(results_table(run))
        return
    runs = with_client(manager, lambda client: client.list_runs(name))
    if out == "json":
        console.print_json(output.dumps(runs))
    else:
        console.print(runs_table(runs))


def schedule_rm(name: NameArgument, manager: ManagerOption = DEFAULT_TARGET) -> None:
    """Delete a schedule and its runs (its loop and run in progress are stopped)."""

    with_client(manager, lambda client: client.delete_schedule(name))
    console.print(f"schedule {name} deleted")


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        rich_markup_mode=None,
        help="Cron/interval schedules that call HTTP endpoints.",
        no_args_is_help=True,
    )
    group.command("create")(schedule_create)
    group.command("ls")(schedule_ls)
    group.command("get")(schedule_get)
    group.command("start")(schedule_start)
    group.command("stop")(schedule_stop)
    group.command("run-once")(schedule_run_once)
    group.command("runs")(schedule_runs)
    group.command("rm")(schedule_rm)
    app.add_typer(group, name="schedule")
