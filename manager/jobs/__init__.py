"""Jobs: ad-hoc shell commands run to completion, as the Kubernetes Job API offered them.

A manager extension over ``TaskControl``: ``lifecycle`` (run, get, list, logs
and the batch/v1 status derived from a job's task), ``servicer`` (JobService).
"""

from __future__ import annotations

import grpc

from manager.config import ManagerConfig
from manager.control import Extension, TaskControl
from manager.jobs import servicer
from manager.jobs.lifecycle import Jobs

__all__ = ["Jobs", "JobsExtension", "install"]


class JobsExtension:
    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs

    def register(self, server: grpc.aio.Server) -> str:
        return servicer.register(self.jobs, server)

    async def start(self) -> None:
        """Jobs have no background loop: the manager core runs their tasks."""

    async def close(self) -> None:
        """Nothing to release."""


def install(tasks: TaskControl, config: ManagerConfig) -> Extension:
    return JobsExtension(Jobs(tasks, config))
