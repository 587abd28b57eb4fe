"""Environments as users see them: a long-running per-project service from a language template.

An environment IS its newest task labelled with its ``repl_id``: its state,
message, ports and creation time are that task's; ``host`` is where it is
reached (an Ingress host, or the published address).
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.model import PortMapping, TaskId, TaskState


@dataclass(frozen=True, slots=True)
class Environment:
    repl_id: str
    language: str
    runtime: str
    task_id: TaskId
    state: TaskState = TaskState.PENDING
    message: str = ""
    host: str = ""
    ports: tuple[PortMapping, ...] = ()
    created_at: float | None = None
    namespace: str = ""
