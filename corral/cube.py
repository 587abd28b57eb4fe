"""Cube's JSON (*Build an Orchestrator in Go*) and gokube's, to and from Corral's domain types.

Two dialects of one shape: Cube's ``task.Task`` (``ContainerID``, ``Cpu``,
``ExposedPorts``) and gokube's (``ContainerId``, ``ExposedPort`` singular,
``HostPorts``, integer ``Memory`` and ``Disk``, no ``Cpu``); each decodes
with unknown fields disallowed, so each dialect refuses the other's fields
as its own server does, and answers errors with its own key
(``HTTPStatusCode`` / ``HttpStatusCode``).

In (this module): a TaskEvent, read as Go's ``encoding/json`` reads it into
Cube's structs (field names matched case-insensitively, unknown fields refused
as the book's ``DisallowUnknownFields`` decoder does, Go's own error texts).
Out (``corral.cube_shapes``): Task, Node and Stats with Cube's field names and
Go's encodings (zero times as ``0001-01-01T00:00:00Z``, nil maps as null, 2.0
as 2).

Translation choices (the wire shapes stay Cube's):
- The task ID the client sends is Corral's task id (a missing Task.ID falls
  back to the event ID, then to a fresh UUID). A Cube task has an Image, so it
  runs on the ``docker`` runtime.
- Cube names need not be RFC 1123 labels ("Task 1"); the Corral name is the
  name normalised (lowercase, runs of other characters become '-', at most 63),
  and the name as sent is kept in the label ``cube.name`` and answered back.
- Task Memory and Disk are bytes, Cpu is cores. Node Memory and
  MemoryAllocated are kB (the book fills them from /proc/meminfo's MemTotal),
  Disk and DiskAllocated bytes; Stats follow goprocinfo's JSON (kB for memory,
  bytes for disk; CpuStats scaled so Cube's ``CpuUsage()`` gives the node's
  busy fraction).
- RestartPolicy: "" or "no" never restarts, "always" and "unless-stopped"
  always, "on-failure" on failure. HealthCheck is an HTTP path probed on the
  first exposed port.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from corral.model import (
    HealthCheck,
    HttpProbe,
    PortMapping,
    Resources,
    RestartMode,
    RestartPolicy,
    TaskSpec,
    TaskState,
)

NAME_LABEL = "cube.name"
ZERO_TIME = "0001-01-01T00:00:00Z"
_ZERO_UUID = "00000000-0000-0000-0000-000000000000"
_EVENT_FIELDS = ("ID", "State", "Timestamp", "Task")
_TASK_FIELDS = (
    "ID", "ContainerID", "Name", "State", "Image", "Cpu", "Memory", "Disk", "ExposedPorts",
    "HostPorts", "PortBindings", "RestartPolicy", "StartTime", "FinishTime", "HealthCheck",
    "RestartCount",
)  # fmt: skip
_GOKUBE_FIELDS = (
    "ID", "ContainerId", "Name", "State", "Image", "Memory", "Disk", "ExposedPort", "HostPorts",
    "PortBindings", "RestartPolicy", "StartTime", "FinishTime", "HealthCheck", "RestartCount",
)  # fmt: skip


@dataclass(frozen=True)
class Dialect:
    """Field names and error shape of one project's Task JSON."""

    name: str
    task_fields: tuple[str, ...]
    container_id: str
    exposed: str
    int_type: str  # Go's type of Memory and Disk, named in decode errors
    status_key: str  # the error body's status field
    decode_prefix: str  # what the handler puts before the decoder's error


CUBE = Dialect(
    name="cube",
    task_fields=_TASK_FIELDS,
    container_id="ContainerID",
    exposed="ExposedPorts",
    int_type="int64",
    status_key="HTTPStatusCode",
    decode_prefix="",
)
GOKUBE = Dialect(
    name="gokube",
    task_fields=_GOKUBE_FIELDS,
    container_id="ContainerId",
    exposed="ExposedPort",
    int_type="int",
    status_key="HttpStatusCode",
    decode_prefix="Error unmarshalling body: ",
)
DIALECTS = (CUBE, GOKUBE)


def dialect_of(event: Any) -> Dialect:
    """gokube's dialect when the Task uses its ``ExposedPort``; Cube's otherwise.

    Go matches keys case-insensitively and the rest of gokube's fields are
    Cube's too, so that one field is what tells them apart.
    """
    task = event.get("Task", event) if isinstance(event, dict) else None
    if isinstance(task, dict) and "exposedport" in {str(k).lower() for k in task}:
        return GOKUBE
    return CUBE


_RESTART = {
    "": RestartMode.NEVER,
    "no": RestartMode.NEVER,
    "always": RestartMode.ALWAYS,
    "unless-stopped": RestartMode.ALWAYS,
    "on-failure": RestartMode.ON_FAILURE,
}
RESTART_NAMES = {
    RestartMode.NEVER: "",
    RestartMode.ALWAYS: "always",
    RestartMode.ON_FAILURE: "on-failure",
}


class CubeError(Exception):
    """A body Cube would refuse, with the status and message to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# -- TaskEvent in ---------------------------------------------------------------------


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {value}"
    return {str: "string", list: "array", dict: "object", type(None): "null"}[type(value)]


def _mismatch(value: Any, field: str, go_type: str) -> CubeError:
    return CubeError(
        400,
        f"json: cannot unmarshal {_go_type(value)} into Go struct field {field} of type {go_type}",
    )


def _fields(data: Any, known: tuple[str, ...], where: str, go_type: str) -> dict[str, Any]:
    """Keys matched case-insensitively (as Go does); unknown keys refused."""
    if not isinstance(data, dict):
        raise _mismatch(data, where, go_type)
    by_lower = {name.lower(): name for name in known}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = by_lower.get(key.lower())
        if name is None:
            raise CubeError(400, f'json: unknown field "{key}"')
        out[name] = value
    return out


def _string(fields: Mapping[str, Any], name: str, where: str) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _mismatch(value, f"{where}.{name}", "string")
    return value


def _number(
    fields: Mapping[str, Any], name: str, where: str, *, integer: bool, int_type: str = "int64"
) -> Any:
    value = fields.get(name)
    if value is None:
        return 0 if integer else 0.0
    go_type = int_type if integer else "float64"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _mismatch(value, f"{where}.{name}", go_type)
    if integer and (isinstance(value, float) and not value.is_integer()):
        raise _mismatch(value, f"{where}.{name}", go_type)
    return int(value) if integer else float(value)


def _uuid(value: str, field: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise CubeError(400, f"{field}: {value!r} is not a UUID") from None


def _state(fields: Mapping[str, Any], where: str) -> None:
    value = fields.get("State")
    if value is None:
        return
    number = _number(fields, "State", where, integer=True)
    try:
        TaskState.from_cube(number)
    except ValueError as err:
        raise CubeError(400, f"{where}.State: {err}") from None


def _port_key(key: str, field: str) -> tuple[int, str]:
    match = re.fullmatch(r"(\d{1,5})(?:/(tcp|udp))?", key.strip())
    if match is None or not 1 <= int(match.group(1)) <= 65535:
        raise CubeError(400, f'{field}: {key!r} is not a port such as "80/tcp"')
    return int(match.group(1)), match.group(2) or "tcp"


def _ports(fields: Mapping[str, Any], dialect: Dialect) -> tuple[PortMapping, ...]:
    exposed = fields.get(dialect.exposed) or {}
    bindings = fields.get("PortBindings") or {}
    if not isinstance(exposed, dict):
        raise _mismatch(exposed, f"Task.Task.{dialect.exposed}", "nat.PortSet")
    if not isinstance(bindings, dict):
        raise _mismatch(bindings, "Task.Task.PortBindings", "map[string]string")
    ports: dict[tuple[int, str], int] = {}
    for key in exposed:
        ports[_port_key(key, f"Task.{dialect.exposed}")] = 0
    for key, host in bindings.items():
        if not isinstance(host, str) or not (
            host.isascii() and host.isdigit() and 0 <= int(host) <= 65535
        ):
            raise CubeError(400, f"Task.PortBindings[{key!r}]: {host!r} is not a host port")
        ports[_port_key(key, "Task.PortBindings")] = int(host)
    for key, host in _host_ports(fields.get("HostPorts")).items():
        ports[_port_key(key, "Task.HostPorts")] = host
    return tuple(PortMapping(port, host, proto) for (port, proto), host in ports.items())


def _host_ports(value: Any) -> dict[str, int]:
    """nat.PortMap: {"7777/tcp": [{"HostIp": "", "HostPort": "7777"}]}; the first binding counts."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _mismatch(value, "Task.Task.HostPorts", "nat.PortMap")
    out: dict[str, int] = {}
    for key, bound in value.items():
        if bound is None:
            continue
        if not isinstance(bound, list) or not all(isinstance(b, dict) for b in bound):
            raise _mismatch(bound, "Task.Task.HostPorts", "[]nat.PortBinding")
        for binding in bound[:1]:
            port = str(binding.get("HostPort") or "0")
            if not (port.isascii() and port.isdigit() and int(port) <= 65535):
                raise CubeError(400, f"Task.HostPorts[{key!r}]: {port!r} is not a host port")
            out[key] = int(port)
    return out


def normalise_name(name: str) -> str:
    """A Cube name as an RFC 1123 label: "Task 1" -> "task-1"."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63].strip("-")


def parse_event(data: Any, dialect: Dialect = CUBE) -> tuple[str, TaskSpec]:
    """A Cube (or gokube) TaskEvent -> (task id, spec); CubeError(400) names what is wrong."""
    event = _fields(data, _EVENT_FIELDS, "TaskEvent", "task.TaskEvent")
    _state(event, "TaskEvent")
    stamp = _string(event, "Timestamp", "TaskEvent")
    if stamp:
        try:
            dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            raise CubeError(
                400, f"TaskEvent.Timestamp: {stamp!r} is not an RFC 3339 time"
            ) from None
    if event.get("Task") is None:
        raise CubeError(400, "Task: is required")
    task = _fields(event["Task"], dialect.task_fields, "TaskEvent.Task", "task.Task")
    where = "Task.Task"
    _state(task, where)
    for name in (dialect.container_id, "StartTime", "FinishTime"):
        _string(task, name, where)
    _number(task, "RestartCount", where, integer=True)
    task_id = _string(task, "ID", where) or _string(event, "ID", "TaskEvent")
    given = task_id and task_id != _ZERO_UUID
    task_id = _uuid(task_id, "Task.ID") if given else str(uuid.uuid4())
    raw_name = _string(task, "Name", where)
    if len(raw_name) > 63:
        raise CubeError(400, "Task.Name: must be at most 63 characters")
    name = normalise_name(raw_name) or f"task-{task_id[:8]}"
    restart = _string(task, "RestartPolicy", where)
    if restart not in _RESTART:
        raise CubeError(400, f"Task.RestartPolicy: must be one of {sorted(_RESTART)}")
    ports = _ports(task, dialect)
    health = _string(task, "HealthCheck", where)
    check = None
    if health:
        if not ports:
            raise CubeError(
                400, f"Task.HealthCheck: needs a port in Task.{dialect.exposed} to probe"
            )
        check = HealthCheck(HttpProbe(path=health, port=ports[0].container_port))
    spec = TaskSpec(
        name=name,
        runtime="docker",
        image=_string(task, "Image", where),
        resources=Resources(
            cpu=_number(task, "Cpu", where, integer=False),
            memory_bytes=_number(task, "Memory", where, integer=True, int_type=dialect.int_type),
            disk_bytes=_number(task, "Disk", where, integer=True, int_type=dialect.int_type),
        ),
        ports=ports,
        restart_policy=RestartPolicy(mode=_RESTART[restart]),
        health_check=check,
        labels={NAME_LABEL: raw_name} if raw_name and raw_name != name else {},
    )
    return task_id, spec
