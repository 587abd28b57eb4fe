"""``corral run``, ``corral task ls|get|stop``, ``corral logs``, ``corral events``.

Tasks are addressed by id, by name (the newest task of that name) or by a
unique id prefix of 8+ characters. ``run --attach`` streams the output and
exits with the task's exit code (``corral.cli.attaching``). ``run
--wait`` exits 0 once the task runs or completes, 2 when it cannot be placed
(still PENDING after ``--timeout``, or FAILED before it ever ran), 1 on any
other error, so scripts can tell "no room" from "bad input".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from corral import output, specfiles
from corral.cli import attaching, explaining, specflags
from corral.cli.options import (
    ManagerOption,
    OutputOption,
    check_output,
    console,
    errors,
    parse_or_exit,
    with_client,
)
from corral.cli.specflags import RunFlags, build_spec
from corral.client import DEFAULT_TARGET, Client
from corral.errors import ValidationError
from corral.model import Dependency, Task, TaskSpec, TaskState

EXIT_PLACEMENT = 2
_POLL = 0.1


# -- waiting ------------------------------------------------------------------


async def wait_for(client: Client, task: Task, *, timeout: float, show: bool) -> tuple[Task, int]:
    """Poll until the task runs or ends; returns it with the exit code ``run`` should use."""
    deadline = time.monotonic() + timeout
    progress = console.status(f"{task.spec.name}: submitted") if show else None
    with progress or contextlib.nullcontext():
        while True:
            task = await client.get_task(task.id)
            s = task.status
            if progress is not None:
                progress.update(escape(f"{task.spec.name}: {s.state.value}  {s.message}"))
            code = _outcome(task)
            if code is not None:
                return task, code
            if time.monotonic() >= deadline:
                return task, EXIT_PLACEMENT if s.state is TaskState.PENDING else 1
            await asyncio.sleep(_POLL)


def _outcome(task: Task) -> int | None:
    s = task.status
    if s.state in (TaskState.RUNNING, TaskState.COMPLETED):
        return 0
    if s.state is TaskState.FAILED:
        return EXIT_PLACEMENT if s.started_at is None else 1
    if s.state is TaskState.STOPPED:
        return 1
    return None


def _report(task: Task, code: int) -> None:
    s = task.status
    where = f" on {s.node_id}" if s.node_id else ""
    line = escape(f"task {task.id} ({task.spec.name}) {s.state.value}{where}")
    if code == 0:
        console.print(line)
        return
    reason = escape(s.message or "no reason given")
    if code == EXIT_PLACEMENT:
        errors.print(f"[red]error:[/] {line}: cannot be placed: {reason}")
    else:
        errors.print(f"[red]error:[/] {line}: {reason}")


# -- commands -----------------------------------------------------------------


def run(
    command: Annotated[list[str] | None, typer.Argument(help="The argv, after --.")] = None,
    *,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="A TaskSpec as JSON or YAML.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Task name (RFC 1123 label).")] = None,
    id: Annotated[str | None, typer.Option("--id", help="Choose the task id.")] = None,
    runtime: Annotated[str | None, typer.Option(help="process|docker|kubernetes|http|fake")] = None,
    image: Annotated[str | None, typer.Option(help="Container image.")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="K=V, repeatable.")] = None,
    secret_env: Annotated[
        list[str] | None,
        typer.Option(
            "--secret-env", help="K=V, repeatable: delivered to the task, never shown again."
        ),
    ] = None,
    namespace: Annotated[
        str | None, typer.Option(help="Namespace of the task (default: default).")
    ] = None,
    workdir: Annotated[str | None, typer.Option(help="Working directory.")] = None,
    cpu: Annotated[float | None, typer.Option(help="CPU cores.")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory: 512Mi, 1G.")] = None,
    disk: Annotated[str | None, typer.Option(help="Disk: 1Gi.")] = None,
    port: Annotated[
        list[str] | None, typer.Option("--port", "-p", help="[HOST:]PORT[/PROTO].")
    ] = None,
    restart: Annotated[str | None, typer.Option(help="never|on-failure|always")] = None,
    max_attempts: Annotated[
        int | None, typer.Option(min=0, help="Attempts in all (0 = no limit).")
    ] = None,
    label: Annotated[list[str] | None, typer.Option("--label", "-l", help="K=V.")] = None,
    constraint: Annotated[list[str] | None, typer.Option(help="Node label K=V.")] = None,
    health_http: Annotated[str | None, typer.Option(help="HTTP probe PORT[/PATH].")] = None,
    health_tcp: Annotated[int | None, typer.Option(help="TCP probe PORT.")] = None,
    health_cmd: Annotated[str | None, typer.Option(help="Exec probe command.")] = None,
    health_interval: Annotated[float | None, typer.Option(help="Probe interval (s).")] = None,
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Wait until it runs.")] = False,
    attach: Annotated[
        bool,
        typer.Option("--attach", "-a", help="Stream its output; exit with its exit code."),
    ] = False,
    after: Annotated[
        list[str] | None,
        typer.Option(
            "--after",
            help="Run after this task (id, prefix, name) succeeded; ID=finished: ended.",
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="How long --wait waits (s).")] = 60.0,
    manager: ManagerOption = DEFAULT_TARGET,
    out: OutputOption = "table",
) -> None:
    """Submit a task: `corral run --name hello --wait -- echo hello`."""
    flags = RunFlags(
        name=name,
        runtime=runtime,
        image=image,
        env=env,
        secret_env=secret_env,
        namespace=namespace,
        workdir=workdir,
        cpu=cpu,
        memory=memory,
        disk=disk,
        port=port,
        restart=restart,
        max_attempts=max_attempts,
        label=label,
        constraint=constraint,
        health_http=health_http,
        health_tcp=health_tcp,
        health_cmd=health_cmd,
        health_interval=health_interval,
        command=command,
    )

    if file is not None and _is_workflow(file):
        _run_workflow(file, manager, out)
        return

    def parse() -> tuple[TaskSpec, str, list[Dependency]]:
        check_output(out)
        base, file_id = specfiles.load(file) if file is not None else (None, "")
        waits = [specflags.after(a, i) for i, a in enumerate(after or ())]
        return build_spec(flags, base), id or file_id, waits

    spec, task_id, waits = parse_or_exit(parse)

    async def go(client: Client) -> tuple[Task, int]:
        deps = [replace(w, task_id=(await client.find_task(w.task_id)).id) for w in waits]
        full = replace(spec, depends_on=spec.depends_on + tuple(deps))
        task = await client.submit(full, id=task_id or None)
        if attach:
            return await attaching.attach(client, task)
        if not wait:
            return task, 0
        return await wait_for(client, task, timeout=timeout, show=out == "table")

    task, code = with_client(manager, go)
    if attach:
        if code == attaching.EXIT_PLACEMENT:
            _report(task, code)
        raise typer.Exit(code)
    if out == "json":
        console.print_json(output.dumps(task))
    elif wait:
        _report(task, code)
    else:
        console.print(task.id)
    raise typer.Exit(code)


def _is_workflow(file: Path) -> bool:
    return parse_or_exit(lambda: specfiles.is_workflow(file))


def _run_workflow(file: Path, manager: str, out: str) -> None:
    """A workflow file: every task in one SubmitTasks batch (all stored, or none)."""
    items = parse_or_exit(lambda: (check_output(out), specfiles.load_all(file))[1])
    tasks = with_client(manager, lambda client: client.submit_many(items))
    output.print_any(console, tasks, out)


def task_ls(
    state: Annotated[list[str] | None, typer.Option("--state", help="Filter by state.")] = None,
    node: Annotated[str, typer.Option(help="Only tasks on this node id.")] = "",
    selector: Annotated[str, typer.Option("--selector", "-l", help="Label selector k=v.")] = "",
    manager: ManagerOption = DEFAULT_TARGET,
    out: OutputOption = "table",
) -> None:
    """List tasks."""

    def parse() -> list[TaskState]:
        check_output(out)
        try:
            return [TaskState(s.lower()) for s in state or ()]
        except ValueError:
            names = ", ".join(s.value for s in TaskState)
            raise ValidationError("states", f"must be among {names}") from None

    states = parse_or_exit(parse)
    tasks = with_client(
        manager, lambda c: c.list_tasks(states=states, node_id=node, label_selector=selector)
    )
    output.print_any(console, tasks, out)


def task_get(
    ref: Annotated[str, typer.Argument(help="Task id or name.")],
    manager: ManagerOption = DEFAULT_TARGET,
    out: OutputOption = "table",
) -> None:
    """Show one task."""
    parse_or_exit(lambda: check_output(out))
    output.print_any(console, with_client(manager, lambda c: c.find_task(ref)), out)


def task_stop(
    ref: Annotated[str, typer.Argument(help="Task id or name.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the status).")] = "",
    manager: ManagerOption = DEFAULT_TARGET,
    out: OutputOption = "table",
) -> None:
    """Stop a task (its restart policy no longer applies)."""
    parse_or_exit(lambda: check_output(out))

    async def go(client: Client) -> Task:
        task = await client.find_task(ref)
        return await client.stop_task(task.id, reason)

    task = with_client(manager, go)
    if out == "json":
        console.print_json(output.dumps(task))
    else:
        console.print(f"task {task.id} ({task.spec.name}) {task.status.state.value}")


def logs(
    ref: Annotated[str, typer.Argument(help="Task id or name.")] = "",
    selector: Annotated[
        str,
        typer.Option(
            "--selector", "-l", help="Every task with these labels (k=v,...), lines prefixed."
        ),
    ] = "",
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep following.")] = False,
    tail: Annotated[
        int, typer.Option(help="Only the last N lines (0 = all), per task with -l.", min=0)
    ] = 0,
    manager: ManagerOption = DEFAULT_TARGET,
) -> None:
    """Print a task's output, or with -l every matching task's, merged (like stern)."""
    if bool(ref) == bool(selector):
        parse_or_exit(_one_of_ref_or_selector)

    async def go(client: Client) -> None:
        sink = sys.stdout.buffer
        if selector:
            chunks = client.merged_logs(selector, tail=tail, follow=follow)
        else:
            task = await client.find_task(ref)
            chunks = client.logs(task.id, tail=tail, follow=follow)
        async for chunk in chunks:
            sink.write(chunk)
            sink.flush()

    with_client(manager, go)


def _one_of_ref_or_selector() -> None:
    raise ValidationError("selector", "give either a task (id or name) or --selector/-l")


def events(
    from_index: Annotated[
        int, typer.Option("--from", min=0, help="Replay from this index (0 = only new ones).")
    ] = 0,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="Only these kinds.")] = None,
    manager: ManagerOption = DEFAULT_TARGET,
    out: OutputOption = "table",
) -> None:
    """Follow the event stream (one line per event; JSON lines with -o json)."""
    parse_or_exit(lambda: check_output(out))

    async def go(client: Client) -> None:
        async for event in client.watch_events(from_index, kinds=kind or ()):
            if out == "json":
                print(json.dumps(output.to_json(event)), flush=True)
            else:
                print(output.event_line(event), flush=True)

    with_client(manager, go)


def register(app: typer.Typer) -> None:
    app.command(context_settings={"allow_interspersed_args": False})(run)
    group = typer.Typer(rich_markup_mode=None, help="Inspect and stop tasks.", no_args_is_help=True)
    group.command("ls")(task_ls)
    group.command("get")(task_get)
    group.command("stop")(task_stop)
    group.command("explain")(explaining.task_explain)
    app.add_typer(group, name="task")
    app.command()(logs)
    app.command()(events)
