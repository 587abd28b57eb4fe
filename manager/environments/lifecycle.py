"""Environment operations over the manager core: start, stop, get, list.

Nothing is stored apart from the tasks: an environment IS its newest task
labelled ``corral.environment=<replId>``. Start is idempotent (an active
environment is returned as it is) and waits, bounded, until the task runs or
fails, so the caller learns about a backend failure (a forbidden Ingress, an
image that cannot be pulled) with its reason. A failed start is stopped, so
nothing half-made keeps restarting behind a 500.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping

from corral.environments import Environment
from corral.errors import AlreadyExists, CorralError, DeadlineExceeded, NotFound, ValidationError
from corral.model import Task, TaskState
from corral.validation import check_name
from manager import namespaces
from manager.config import ManagerConfig
from manager.control import NewTask, TaskControl, TaskQuery
from manager.environments.specs import (
    ENV_LABEL,
    KIND,
    KIND_LABEL,
    LANGUAGE_LABEL,
    TENANT_LABEL,
    environment_spec,
    placement,
)
from manager.environments.templates import Template

START_TIMEOUT = 60.0
_MAX_PAGES = 100


class StartFailed(CorralError):
    """The backend could not start the environment (INTERNAL: HTTP 500 with the reason)."""


def _running_or_done(task: Task) -> bool:
    s = task.status
    return s.state is TaskState.RUNNING or s.state.final or s.restart_count > 0


class Environments:
    def __init__(
        self,
        tasks: TaskControl,
        config: ManagerConfig,
        templates: Mapping[str, Template],
        *,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.tasks = tasks
        self.config = config
        self.templates = templates
        self.start_timeout = start_timeout
        self._locks: dict[str, asyncio.Lock] = {}

    def _check(self, repl_id: str, language: str, tenant: str) -> Template:
        """Every user value is checked here, before any template sees it."""
        check_name(repl_id, "repl_id")
        if tenant:
            check_name(tenant, "tenant")
        if not language:
            raise ValidationError("language", "is required")
        template = self.templates.get(language)
        if template is None:
            known = ", ".join(sorted(self.templates))
            raise ValidationError("language", f"unknown language {language!r} (one of {known})")
        return template

    async def start(
        self, repl_id: str, language: str, tenant: str = ""
    ) -> tuple[Environment, bool]:
        """The environment of ``repl_id``, started unless it runs; True when created."""
        template = self._check(repl_id, language, tenant)
        lock = self._locks.setdefault(repl_id, asyncio.Lock())
        async with lock:
            current = await self._active(repl_id)
            if current is not None:
                if current.spec.labels.get(LANGUAGE_LABEL) != language:
                    theirs = current.spec.labels.get(LANGUAGE_LABEL, "")
                    raise AlreadyExists(f"repl_id: {repl_id!r} already runs {theirs}")
                existing = True
            else:
                spec = environment_spec(
                    template, repl_id=repl_id, tenant=tenant, config=self.config
                )
                # A token scoped to a namespace starts its environments there.
                spec = dataclasses.replace(spec, namespace=namespaces.scoped(""))
                (current,) = await self.tasks.submit([NewTask(spec)])
                existing = False
        if existing:
            return self._environment(await self._until_running(current)), False
        task = await self._until_started(current)
        return self._environment(task), True

    async def _until_running(self, task: Task) -> Task:
        """An existing environment: wait (bounded) while it (re)starts; never stop it."""
        if task.status.state is TaskState.RUNNING:
            return task
        try:
            task = await self.tasks.wait(
                task.id,
                lambda t: t.status.state is TaskState.RUNNING or t.status.state.final,
                self.start_timeout,
            )
        except DeadlineExceeded:
            task = await self.tasks.get(task.id)
        if task.status.state is not TaskState.RUNNING:
            why = task.status.message or task.status.state.value
            raise StartFailed(f"environment {task.spec.name!r} is not running: {why}")
        return task

    async def _until_started(self, task: Task) -> Task:
        try:
            task = await self.tasks.wait(task.id, _running_or_done, self.start_timeout)
        except DeadlineExceeded:
            task = await self.tasks.get(task.id)
            await self.tasks.stop(task.id, "environment did not start in time")
            why = task.status.message or f"still {task.status.state.value}"
            raise StartFailed(
                f"environment {task.spec.name!r} did not start in {self.start_timeout:g}s: {why}"
            ) from None
        if task.status.state is TaskState.RUNNING:
            return task
        if not task.status.state.final:
            await self.tasks.stop(task.id, "environment failed to start")
        raise StartFailed(
            f"environment {task.spec.name!r} failed to start: {task.status.message or 'failed'}"
        )

    async def stop(self, repl_id: str) -> Environment:
        check_name(repl_id, "repl_id")
        current = await self._active(repl_id)
        if current is None:
            raise NotFound(f"environment {repl_id!r} not found")
        # Recorded at once; the worker that runs it deletes what it made as soon
        # as the Stop reaches it (or on its next Reconcile, if it is away).
        task = await self.tasks.stop(current.id, "environment stopped")
        return self._environment(task)

    async def get(self, repl_id: str) -> Environment:
        check_name(repl_id, "repl_id")
        tasks = await self._tasks({ENV_LABEL: repl_id})
        if not tasks:
            raise NotFound(f"environment {repl_id!r} not found")
        return self._environment(tasks[0])

    async def list_all(self) -> list[Environment]:
        """The newest task of each replId, leaving out stopped environments."""
        newest: dict[str, Task] = {}
        for task in await self._tasks({KIND_LABEL: KIND}):
            newest.setdefault(task.spec.labels.get(ENV_LABEL, ""), task)
        return [
            self._environment(t) for t in newest.values() if t.status.state is not TaskState.STOPPED
        ]

    async def _active(self, repl_id: str) -> Task | None:
        for task in await self._tasks({ENV_LABEL: repl_id}):
            if not task.status.state.final:
                return task
        return None

    async def _tasks(self, labels: dict[str, str]) -> list[Task]:
        out: list[Task] = []
        token = ""
        for _ in range(_MAX_PAGES):
            query = TaskQuery(labels=labels, page_size=1000, page_token=token)
            page, token = await self.tasks.list_tasks(query)
            # Another namespace's environments are answered as absent (manager.namespaces).
            out.extend(
                t for t in page if t.spec.labels.get(KIND_LABEL) == KIND and namespaces.visible(t)
            )
            if not token:
                break
        out.sort(key=lambda t: t.status.created_at or 0.0, reverse=True)
        return out

    def _environment(self, task: Task) -> Environment:
        labels = task.spec.labels
        repl_id = labels.get(ENV_LABEL, task.spec.name)
        where = placement(repl_id, labels.get(TENANT_LABEL, ""), self.config)
        namespace = task.spec.kubernetes.namespace if task.spec.kubernetes else ""
        status = task.status
        return Environment(
            repl_id=repl_id,
            language=labels.get(LANGUAGE_LABEL, ""),
            runtime=task.spec.runtime,
            task_id=task.id,
            state=status.state,
            message=status.message,
            host=where.host,
            ports=status.ports,
            created_at=status.created_at,
            namespace=namespace,
        )
