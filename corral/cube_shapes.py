"""Cube's and gokube's Task, Node and Stats JSON, out of Corral's domain types.

Cube's field names with Go's encodings: zero times as ``0001-01-01T00:00:00Z``,
nil maps as null, 2.0 as 2 (see ``corral.cube`` for the translation choices).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from corral.cube import CUBE, NAME_LABEL, RESTART_NAMES, ZERO_TIME, Dialect
from corral.model import HttpProbe, Node, Task


def go_time(value: float | None) -> str:
    """A time as Go's encoding/json writes it (RFC 3339, nanoseconds trimmed, UTC)."""
    if value is None:
        return ZERO_TIME
    moment = dt.datetime.fromtimestamp(value, dt.UTC)
    frac = f"{moment.microsecond:06d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def _go_float(value: float) -> float | int:
    # Go writes 2.0 as 2.
    return int(value) if float(value).is_integer() else value


def cube_task(task: Task, dialect: Dialect = CUBE) -> dict[str, Any]:
    spec, status = task.spec, task.status
    exposed: dict[str, Any] = {f"{p.container_port}/{p.protocol}": {} for p in spec.ports}
    bound = {
        f"{p.container_port}/{p.protocol}": str(p.host_port) for p in spec.ports if p.host_port
    }
    host_ports = {
        f"{p.container_port}/{p.protocol}": [{"HostIp": "0.0.0.0", "HostPort": str(p.host_port)}]
        for p in status.ports
    }
    probe = spec.health_check.probe if spec.health_check else None
    out: dict[str, Any] = {
        "ID": task.id,
        dialect.container_id: "",
        "Name": spec.labels.get(NAME_LABEL, spec.name),
        "State": status.state.cube,
        "Image": spec.image,
        "Cpu": _go_float(spec.resources.cpu),
        "Memory": spec.resources.memory_bytes,
        "Disk": spec.resources.disk_bytes,
        dialect.exposed: exposed or None,
        "HostPorts": host_ports or None,
        "PortBindings": bound or None,
        "RestartPolicy": RESTART_NAMES[spec.restart_policy.mode],
        "StartTime": go_time(status.started_at),
        "FinishTime": go_time(status.finished_at),
        "HealthCheck": probe.path if isinstance(probe, HttpProbe) else "",
        "RestartCount": status.restart_count,
    }
    # In the order of the dialect's struct, as Go writes it; gokube's Task has no Cpu.
    return {name: out[name] for name in dialect.task_fields}


def cube_stats(
    *, mem_total: int, mem_used: int, disk_total: int, disk_used: int, cpu: float,
    loads: tuple[float, float, float], task_count: int,
) -> dict[str, Any]:  # fmt: skip
    mem_free_kb = max(mem_total - mem_used, 0) // 1024
    return {
        "MemStats": {
            "mem_total": mem_total // 1024,
            "mem_free": mem_free_kb,
            "mem_available": mem_free_kb,
            "buffers": 0,
            "cached": 0,
            "swap_total": 0,
            "swap_free": 0,
        },
        "DiskStats": {
            "all": disk_total,
            "used": disk_used,
            "free": max(disk_total - disk_used, 0),
            "freeInodes": 0,
        },
        "CpuStats": {
            "id": "cpu",
            "user": round(cpu * 100),
            "nice": 0,
            "system": 0,
            "idle": round((100 - cpu) * 100),
            "iowait": 0,
            "irq": 0,
            "softirq": 0,
            "steal": 0,
            "guest": 0,
            "guest_nice": 0,
        },
        "LoadStats": {
            "last1min": loads[0],
            "last5min": loads[1],
            "last15min": loads[2],
            "process_running": 0,
            "process_total": 0,
            "last_pid": 0,
        },
        "TaskCount": task_count,
    }


def cube_node(node: Node) -> dict[str, Any]:
    s = node.stats
    return {
        "Name": node.name,
        "Ip": node.address.rpartition(":")[0].strip("[]"),
        "Api": f"http://{node.address}",
        "Memory": node.capacity.memory_bytes // 1024,
        "MemoryAllocated": node.allocated.memory_bytes // 1024,
        "Disk": node.capacity.disk_bytes,
        "DiskAllocated": node.allocated.disk_bytes,
        "Stats": cube_stats(
            mem_total=s.memory_total_bytes or node.capacity.memory_bytes,
            mem_used=s.memory_used_bytes,
            disk_total=s.disk_total_bytes or node.capacity.disk_bytes,
            disk_used=s.disk_used_bytes,
            cpu=s.cpu_percent,
            loads=(s.load1, s.load5, s.load15),
            task_count=node.task_count,
        ),
        "Role": "worker",
        "TaskCount": node.task_count,
    }
