"""One attempt as the runtime tracks it: the objects it made and what the watches saw."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from corral.model import TaskSpec
from worker.runtimes import kubeobjects as ko
from worker.runtimes.base import AttemptRef, Exit
from worker.runtimes.kubernetes.cluster import ObjectRef


@dataclass(eq=False)
class KubeAttempt:
    ref: AttemptRef
    spec: TaskSpec | None
    objects: list[ObjectRef]
    is_job: bool
    done: asyncio.Future[Exit]
    available: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False
    stuck: str = ""
    concluding: bool = False
    # Set once every object exists (adopted attempts: at once).
    created: bool = False
    pod_exit: ko.PodOutcome | None = None
    logged_pods: set[str] = field(default_factory=set)
    copier: asyncio.Future[None] | None = None

    @property
    def namespace(self) -> str:
        return self.objects[0].namespace

    def finish(self, exit_: Exit) -> None:
        if not self.done.done():
            self.done.set_result(exit_)
