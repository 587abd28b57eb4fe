"""Environments: one long-running service per project, from a per-language template.

The environment orchestrator created a Deployment + Service + Ingress per
project with ``POST /start``; Corral does the same on Kubernetes and, on
Docker or plain processes, runs a container or a supervised process. Every
environment is a long-running task (``specs``), so placement, health checks,
restarts, reconciliation and logs are the manager's own. The manager never
talks to a cluster: it renders the template into plain dicts (``templates``)
and the worker's ``kubernetes`` runtime creates them.

Modules: ``templates`` (load and render, structurally), ``specs`` (the task of
an environment on each runtime), ``lifecycle`` (start/stop/get/list over
``TaskControl``), ``servicer`` (EnvironmentService).
"""

from __future__ import annotations

import grpc

from corral.environments import Environment
from manager.config import ManagerConfig
from manager.control import Extension, TaskControl
from manager.environments import servicer
from manager.environments.lifecycle import Environments, StartFailed
from manager.environments.templates import load_templates

__all__ = ["Environment", "Environments", "EnvironmentsExtension", "StartFailed", "install"]


class EnvironmentsExtension:
    def __init__(self, environments: Environments) -> None:
        self.environments = environments

    def register(self, server: grpc.aio.Server) -> str:
        return servicer.register(self.environments, server)

    async def start(self) -> None:
        """No loop of its own: orphans are the worker's (adopt, Reconcile, sweep)."""

    async def close(self) -> None:
        """Nothing to release."""


def install(tasks: TaskControl, config: ManagerConfig) -> Extension:
    # Loaded (and checked) at start-up: a broken templates file stops the manager here.
    templates = load_templates(config.environment_templates)
    return EnvironmentsExtension(Environments(tasks, config, templates))
