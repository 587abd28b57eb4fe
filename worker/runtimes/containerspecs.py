"""What a task spec becomes on a container engine, and what the engine says back.

Plain functions over domain types and the engine's JSON (no Docker client):
the arguments of the create call, the ports and address a started container
offers to health probes, and how an inspected container ended. The docker
runtime does the talking; these are testable without an engine.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from corral.model import PortMapping
from worker.runtimes.base import Assignment, AttemptRef, Exit, Started

LABEL_TASK = "corral.task-id"
LABEL_GENERATION = "corral.generation"
LABEL_NODE = "corral.node-id"
# The worker's data dir: tells apart the containers of workers sharing one engine.
LABEL_WORKER = "corral.worker"


def container_name(ref: AttemptRef, owner: str) -> str:
    """Readable, unique per worker (two workers may share one engine), valid for Docker."""
    task = re.sub(r"[^A-Za-z0-9_.-]", "_", ref.task_id)[:96]
    suffix = hashlib.sha256(owner.encode()).hexdigest()[:6]
    return f"corral-{task}-{ref.generation}-{suffix}"


def container_options(assignment: Assignment, *, network: str, owner: str) -> dict[str, Any]:
    """Arguments of the engine's create call for one attempt (no engine needed).

    ``host_config`` holds the keyword arguments of ``create_host_config``.
    """
    spec = assignment.spec
    labels = {
        **spec.labels,
        LABEL_TASK: assignment.ref.task_id,
        LABEL_GENERATION: str(assignment.ref.generation),
        LABEL_NODE: assignment.node_id,
        LABEL_WORKER: owner,
    }
    host_config: dict[str, Any] = {"network_mode": network}
    options: dict[str, Any] = {
        "image": spec.image,
        "command": list(spec.command) or None,
        "environment": {**spec.env, **spec.secret_env},
        "labels": labels,
        "name": container_name(assignment.ref, owner),
        "detach": True,
        "host_config": host_config,
    }
    if spec.working_dir:
        options["working_dir"] = spec.working_dir
    if network != "host" and spec.ports:
        keys = [(p.container_port, p.protocol or "tcp") for p in spec.ports]
        options["ports"] = keys
        # An empty host port asks the engine for a free one; Started.ports reports it.
        host_config["port_bindings"] = {
            f"{number}/{protocol}": (p.host_ip, p.host_port or None)
            if p.host_ip
            else p.host_port or None
            for (number, protocol), p in zip(keys, spec.ports, strict=True)
        }
    if spec.resources.cpu > 0:
        host_config["nano_cpus"] = round(spec.resources.cpu * 1e9)
    if spec.resources.memory_bytes > 0:
        # Swap equal to the limit means no swap: over the limit is an OOM kill, not a slow crawl.
        host_config["mem_limit"] = spec.resources.memory_bytes
        host_config["memswap_limit"] = spec.resources.memory_bytes
    return options


def host_started(spec_ports: tuple[PortMapping, ...]) -> Started:
    """On host networking the container's ports are the host's own ports."""
    ports = tuple(PortMapping(p.container_port, p.container_port, p.protocol) for p in spec_ports)
    return Started(ports=ports, host="127.0.0.1")


def started_from(attrs: Mapping[str, Any], spec_ports: tuple[PortMapping, ...] = ()) -> Started:
    """Ports as the engine bound them, and the address health probes should use."""
    host_config = attrs.get("HostConfig") or {}
    settings = attrs.get("NetworkSettings") or {}
    if host_config.get("NetworkMode") == "host":
        return host_started(spec_ports)
    bound = settings.get("Ports") or {}
    declared = host_config.get("PortBindings") or {}
    ports_list: list[PortMapping] = []
    for key in sorted(set(declared) | set(bound)):
        number, _, protocol = key.partition("/")
        host_port = 0
        for binding in bound.get(key) or declared.get(key) or []:
            if binding.get("HostPort"):
                host_port = int(binding["HostPort"])
                break
        ports_list.append(PortMapping(int(number), host_port, protocol or "tcp"))
    if any(p.host_port for p in ports_list):
        return Started(ports=tuple(ports_list), host="127.0.0.1")
    address = settings.get("IPAddress") or ""
    return Started(ports=tuple(ports_list), host=address or "127.0.0.1")


def exit_from(state: Mapping[str, Any]) -> Exit:
    """How a container ended, from its inspected State."""
    code = state.get("ExitCode")
    if state.get("OOMKilled"):
        return Exit(exit_code=code, message="OOM-killed", oom_killed=True)
    error = state.get("Error") or ""
    if code == 0 and not error:
        return Exit(exit_code=0)
    message = f"exited with code {code}"
    return Exit(exit_code=code, message=f"{message}: {error}" if error else message)
