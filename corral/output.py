"""How the CLI shows things: rich tables for people, proto3 JSON for programs.

``-o json`` prints the same JSON the gateway returns and grpcurl prints
(camelCase proto3 JSON of the ``corral.v1`` messages), so a script written
against one interface reads the others' output unchanged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table

from corral import convert
from corral.convert.environments import environment_to
from corral.convert.jobs import job_to
from corral.convert.schedules import run_to, schedule_to
from corral.environments import Environment
from corral.explanations import Explanation
from corral.jobs import Job
from corral.model import Event, Node, Task, TaskState
from corral.schedules import Run, Schedule

OUTPUTS = ("table", "json")

# What ``-o json`` can print: each domain type with the message it is on the wire.
Printable = Task | Node | Event | Job | Environment | Schedule | Run
_WIRE: dict[type[Any], Callable[[Any], Message]] = {
    Task: convert.task_to,
    Node: convert.node_to,
    Event: convert.event_to,
    Job: job_to,
    Environment: environment_to,
    Schedule: schedule_to,
    Run: run_to,
}

_STATE_STYLE = {
    TaskState.PENDING: "yellow",
    TaskState.SCHEDULED: "cyan",
    TaskState.RUNNING: "green",
    TaskState.COMPLETED: "bold green",
    TaskState.FAILED: "bold red",
    TaskState.STOPPED: "magenta",
    TaskState.LOST: "red",
    TaskState.SKIPPED: "dim",
}


def to_json(obj: Printable) -> dict[str, Any]:
    """One domain object as proto3 JSON (what the gateway returns and grpcurl prints)."""
    return dict(json_format.MessageToDict(_WIRE[type(obj)](obj)))


def dumps(value: Printable | Sequence[Printable]) -> str:
    if isinstance(value, Sequence):
        return json.dumps([to_json(v) for v in value], indent=2)
    return json.dumps(to_json(value), indent=2)


def size(n: int) -> str:
    """Bytes the way people read them: 512Mi, 1.5Gi."""
    value = float(n)
    for unit in ("", "Ki", "Mi", "Gi", "Ti"):
        if abs(value) < 1024 or unit == "Ti":
            return f"{value:.0f}{unit}" if value == int(value) else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def ago(when: float | None, now: float | None = None) -> str:
    """How long ago, coarsely: 42s, 5m, 3h, 2d."""
    if when is None:
        return "-"
    seconds = int(max(0.0, (now if now is not None else time.time()) - when))
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{seconds // length}{unit} ago"
    return f"{seconds}s ago"


def state(s: TaskState) -> str:
    return f"[{_STATE_STYLE[s]}]{s.value}[/]"


SHORT_ID = 8


def short_ids(ids: Sequence[str]) -> dict[str, str]:
    """Each id cut to 8 characters, or longer where 8 would not tell two apart.

    The manager resolves any unique prefix of 8 or more characters, so what a
    table shows can be pasted into the next command.
    """
    unique = set(ids)
    length = SHORT_ID
    while length < max(map(len, unique), default=0):
        if len({i[:length] for i in unique}) == len(unique):
            break
        length += 4
    return {i: i[:length] for i in unique}


def _whole(table: Table, column: str, values: Sequence[str]) -> None:
    # Copied into the next command or read at a glance: never cut.
    table.add_column(column, no_wrap=True, min_width=max(map(len, values), default=2))


def tasks_table(tasks: Sequence[Task]) -> Table:
    table = Table(box=None, header_style="bold")
    short = short_ids([t.id for t in tasks])
    _whole(table, "ID", [short[t.id] for t in tasks])
    _whole(table, "NAME", [t.spec.name for t in tasks])
    _whole(table, "STATE", [t.status.state.value for t in tasks])
    for column in ("NODE", "RUNTIME", "EXIT", "CREATED", "MESSAGE"):
        # Only the free text folds; short columns stay whole.
        table.add_column(
            column,
            no_wrap=column != "MESSAGE",
            overflow="fold",
            ratio=1 if column == "MESSAGE" else None,
            min_width=20 if column == "MESSAGE" else None,
        )
    nodes = short_ids([t.status.node_id for t in tasks if t.status.node_id])
    for t in tasks:
        s = t.status
        table.add_row(
            short[t.id],
            t.spec.name,
            state(s.state),
            nodes.get(s.node_id, "-"),
            t.spec.runtime,
            "-" if s.exit_code is None else str(s.exit_code),
            ago(s.created_at),
            s.message,
        )
    return table


def task_details(t: Task) -> Table:
    s, spec = t.status, t.spec
    rows = [
        ("id", t.id),
        ("name", spec.name),
        ("state", state(s.state)),
        ("message", s.message or "-"),
        ("node", s.node_id or "-"),
        ("runtime", spec.runtime),
        ("image", spec.image or "-"),
        ("command", " ".join(spec.command) or "-"),
        ("resources", _resources(spec.resources.cpu, spec.resources.memory_bytes)),
        ("restart", f"{spec.restart_policy.mode.value} (restarts: {s.restart_count})"),
        ("attempts", f"{s.attempts} (generation {s.generation})"),
        ("exit code", "-" if s.exit_code is None else str(s.exit_code)),
        ("health", s.health.value),
        ("labels", _pairs(spec.labels)),
        ("created", ago(s.created_at)),
        ("started", ago(s.started_at)),
        ("finished", ago(s.finished_at)),
    ]
    return _pairs_table(rows)


def nodes_table(nodes: Sequence[Node]) -> Table:
    table = Table(box=None, header_style="bold")
    short = short_ids([n.id for n in nodes])
    _whole(table, "ID", [short[n.id] for n in nodes])
    _whole(table, "NAME", [n.name for n in nodes])
    for column in ("STATUS", "ADDRESS", "CPU", "MEMORY", "TASKS", "RUNTIMES"):
        # Only the free text folds; short columns stay whole.
        table.add_column(column, no_wrap=column != "MESSAGE", overflow="fold")
    for n in nodes:
        table.add_row(
            short[n.id],
            n.name,
            n.status.value,
            n.address or "-",
            f"{n.allocated.cpu:g}/{n.capacity.cpu:g}",
            f"{size(n.allocated.memory_bytes)}/{size(n.capacity.memory_bytes)}",
            str(n.task_count),
            ",".join(n.runtimes),
        )
    return table


def node_details(n: Node) -> Table:
    rows = [
        ("id", n.id),
        ("name", n.name),
        ("status", n.status.value),
        ("address", n.address or "-"),
        ("labels", _pairs(n.labels)),
        ("capacity", _resources(n.capacity.cpu, n.capacity.memory_bytes, n.capacity.disk_bytes)),
        (
            "allocated",
            _resources(n.allocated.cpu, n.allocated.memory_bytes, n.allocated.disk_bytes),
        ),
        ("cpu used", f"{n.stats.cpu_percent:.1f}%"),
        ("load", f"{n.stats.load1:.2f} {n.stats.load5:.2f} {n.stats.load15:.2f}"),
        ("tasks", str(n.task_count)),
        ("runtimes", ",".join(n.runtimes)),
        ("last heartbeat", ago(n.last_heartbeat)),
    ]
    return _pairs_table(rows)


def event_line(e: Event) -> str:
    subject = ""
    if e.task is not None:
        subject = f" task={e.task.id} name={e.task.spec.name} state={e.task.status.state.value}"
    elif e.node is not None:
        subject = f" node={e.node.id} name={e.node.name} status={e.node.status.value}"
    stamp = time.strftime("%H:%M:%S", time.localtime(e.time))
    message = f" {e.message}" if e.message else ""
    return f"{e.index:>6} {stamp} {e.kind}{subject}{message}"


def print_any(console: Console, value: Any, output: str) -> None:
    """Print a table (or any rich renderable) or, with ``-o json``, its JSON twin."""
    if output == "json":
        console.print_json(dumps(value))
        return
    if isinstance(value, Task):
        console.print(task_details(value))
    elif isinstance(value, Node):
        console.print(node_details(value))
    elif value and isinstance(value[0], Node):
        console.print(nodes_table(value))
    else:
        console.print(tasks_table(value))


def _resources(cpu: float, memory: int, disk: int | None = None) -> str:
    out = f"cpu {cpu:g}, memory {size(memory)}"
    return out if disk is None else f"{out}, disk {size(disk)}"


def _pairs(mapping: Any) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(mapping.items())) or "-"


def _pairs_table(rows: list[tuple[str, str]]) -> Table:
    table = Table(box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    return table


def explanation_json(e: Explanation) -> str:
    """ExplainTask's answer as grpcurl prints it, fields at their zero value included."""
    message = convert.explanation_to(e)
    return str(json_format.MessageToJson(message, always_print_fields_with_no_presence=True))
