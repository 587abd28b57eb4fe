"""``DockerRuntime``: start, watch, stop, exec and adopt one container per attempt.

The pieces it stands on are modules of their own: ``engine`` (clients, thread
pools, pulls), ``events`` (the die/oom feed), ``logs`` (copying a finished
container's output) and ``usage`` (node stats); ``containerspecs`` builds the
container from an assignment.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections.abc import AsyncIterator, Mapping
from typing import Any

import docker.errors

from corral.model import TaskId
from worker.config import WorkerConfig
from worker.logfiles import LogStore
from worker.runtimes.base import Adopted, Assignment, AttemptRef, Exit, Fence, Started, StartError
from worker.runtimes.containerspecs import (
    LABEL_GENERATION,
    LABEL_TASK,
    LABEL_WORKER,
    container_name,
    container_options,
    exit_from,
    host_started,
    started_from,
)
from worker.runtimes.docker import reaping
from worker.runtimes.docker.engine import Engine, EngineErrors, engine_reason
from worker.runtimes.docker.events import EXIT_POLL, ContainerAttempt, EventFeed
from worker.runtimes.docker.logs import ContainerLogs
from worker.runtimes.docker.usage import UsageSampler

log = logging.getLogger(__name__)

# How long an exit by SIGKILL under a memory limit waits for a trailing "oom" event.
OOM_GRACE = 1.0
EXEC_TIMEOUT_CODE = 124
EXEC_ERROR_CODE = 125


class DockerRuntime:
    name = "docker"

    def __init__(self, config: WorkerConfig) -> None:
        self._config = config
        self._owner = str(config.data_dir.resolve())
        self._engine = Engine(config)
        self._feed = EventFeed(self._engine, self._owner, self._wake_all)
        self._logs = ContainerLogs(
            self._engine, LogStore(config.data_dir / "logs", config.log_max_bytes)
        )
        self._usage = UsageSampler(self._engine, self._running)
        self._attempts: dict[str, ContainerAttempt] = {}
        self._starting: dict[str, asyncio.Task[Started]] = {}
        self._fence: Fence | None = None
        self._reaper_started = False

    def fence_with(self, fence: Fence) -> None:
        """Containers outlive the worker: a reaper stops them when it stays gone."""
        self._fence = fence

    def _ensure_reaper(self) -> None:
        if self._fence is not None and not self._reaper_started:
            reaping.ensure(self._fence.beacon, self._owner, self._config.docker_host)
            self._reaper_started = True

    async def available(self) -> bool:
        return await self._engine.available()

    # -- start ------------------------------------------------------------

    async def start(self, assignment: Assignment) -> Started:
        ref = assignment.ref
        self._ensure_reaper()
        known = self._attempts.get(ref.key)
        if known is not None:  # assignments arrive at least once
            return known.started
        if ref.key in self._starting:  # ... and may arrive again while the first one starts
            return await asyncio.shield(self._starting[ref.key])
        starting = self._starting[ref.key] = asyncio.create_task(self._start(assignment))
        starting.add_done_callback(lambda task: self._started(ref.key, task))
        return await asyncio.shield(starting)

    def _started(self, key: str, task: asyncio.Task[Started]) -> None:
        self._starting.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: the callers (if any are left) got it

    async def _start(self, assignment: Assignment) -> Started:
        ref = assignment.ref
        spec = assignment.spec
        network = spec.network or self._config.docker_network or "bridge"
        options = container_options(assignment, network=network, owner=self._owner)
        try:
            client, _ = await self._engine.clients()
            await self._feed.ensure()
            container_id = await self._create(client, ref, options)
            await self._engine.run(client.api.start, container_id)
            if network == "host":
                started = host_started(spec.ports)
            else:
                # Engine-chosen host ports and the container's address are known only now.
                attrs = await self._engine.run(client.api.inspect_container, container_id)
                started = started_from(attrs, spec.ports)
        except StartError:
            raise
        except EngineErrors as err:
            await self._discard(ref)
            raise StartError(f"docker: {engine_reason(err)}") from err
        started = dataclasses.replace(started, message=f"container {container_id[:12]}")
        self._track(ref, container_id, started, fresh=True)
        return started

    async def _create(self, client: Any, ref: AttemptRef, options: dict[str, Any]) -> str:
        """Create the container (pulling its image first if missing); its id."""
        api = client.api
        kwargs = {**options, "host_config": api.create_host_config(**options["host_config"])}
        try:
            try:
                return str((await self._engine.run(api.create_container, **kwargs))["Id"])
            except docker.errors.ImageNotFound:
                # Like `docker run`: try the local image first, pull only when it is missing.
                await self._engine.pull(options["image"])
                return str((await self._engine.run(api.create_container, **kwargs))["Id"])
        except docker.errors.APIError as err:
            if err.status_code != 409:
                raise
            # The name is taken: a redelivered assignment whose container already exists.
            attrs = await self._engine.run(api.inspect_container, options["name"])
            labels = (attrs.get("Config") or {}).get("Labels") or {}
            same = labels.get(LABEL_TASK) == ref.task_id and labels.get(LABEL_GENERATION) == str(
                ref.generation
            )
            if not same:
                raise
            return str(attrs["Id"])

    async def _discard(self, ref: AttemptRef) -> None:
        """Remove what a failed start left behind: nothing half-made stays."""
        client, _ = await self._engine.clients()
        with contextlib.suppress(*EngineErrors):
            name = container_name(ref, self._owner)
            container = await self._engine.run(client.containers.get, name)
            if container.labels.get(LABEL_WORKER) == self._owner:
                await self._engine.run(container.remove, force=True)

    def _track(
        self, ref: AttemptRef, container_id: str, started: Started, *, fresh: bool
    ) -> ContainerAttempt:
        done = asyncio.get_running_loop().create_future()
        attempt = ContainerAttempt(ref, container_id, started, done)
        self._attempts[ref.key] = attempt
        self._feed.claim(attempt)
        watch = self._watch(attempt, fresh=fresh)
        attempt.watcher = asyncio.create_task(watch, name=f"docker-{ref.key}")
        return attempt

    # -- exits ------------------------------------------------------------

    def _wake_all(self) -> None:
        for attempt in self._attempts.values():
            attempt.died.set()

    async def _watch(self, attempt: ContainerAttempt, *, fresh: bool) -> None:
        """Wait for the container to end, keep its logs, remove it, resolve ``done``.

        A container this runtime just started is known to run, and the event feed was
        subscribed before it was created: its first inspect waits for its death (or the
        slow poll), keeping an engine call off the path to RUNNING.
        """
        client, _ = await self._engine.clients()
        if fresh:
            await self._until_died(attempt)
        while True:
            attempt.died.clear()
            try:
                attrs = await self._engine.run(client.api.inspect_container, attempt.container_id)
            except docker.errors.NotFound:
                outcome = Exit(exit_code=None, message="container removed outside Corral")
                break
            except EngineErrors as err:
                log.warning("inspect %s: %s", attempt.ref.key, engine_reason(err))
            else:
                state = attrs.get("State") or {}
                if not state.get("Running") and state.get("Status") not in ("created", "running"):
                    outcome = await self._exit(attempt, attrs)
                    await self._logs.harvest(attempt.ref, attempt.container_id)
                    break
            await self._until_died(attempt)
        if not attempt.done.done():
            attempt.done.set_result(outcome)

    @staticmethod
    async def _exit(attempt: ContainerAttempt, attrs: Mapping[str, Any]) -> Exit:
        """How it ended; a SIGKILL under a memory limit waits briefly for a trailing OOM event."""
        outcome = exit_from(attrs.get("State") or {})
        limited = bool((attrs.get("HostConfig") or {}).get("Memory"))
        if outcome.oom_killed or outcome.exit_code != 137 or not limited or attempt.stopping:
            return outcome
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(OOM_GRACE):
                await attempt.oom.wait()
        if attempt.oom.is_set():
            return Exit(exit_code=outcome.exit_code, message="OOM-killed", oom_killed=True)
        return outcome

    @staticmethod
    async def _until_died(attempt: ContainerAttempt) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(EXIT_POLL):
                await attempt.died.wait()

    async def wait(self, ref: AttemptRef) -> Exit:
        attempt = self._attempts.get(ref.key)
        if attempt is None:
            return Exit(exit_code=None, message="unknown attempt: not started on this worker")
        return await asyncio.shield(attempt.done)

    # -- stop, exec, logs ---------------------------------------------------

    def _target(self, ref: AttemptRef) -> str:
        attempt = self._attempts.get(ref.key)
        return attempt.container_id if attempt else container_name(ref, self._owner)

    async def stop(self, ref: AttemptRef, grace: float) -> None:
        _, stream_client = await self._engine.clients()
        attempt = self._attempts.get(ref.key)
        target = self._target(ref)
        if attempt is not None:
            attempt.stopping = True
        try:
            # The engine sends the stop signal, waits ``t`` seconds, then kills.
            timeout = math.ceil(max(grace, 0.0))
            await self._engine.run_long(stream_client.api.stop, target, timeout=timeout)
        except docker.errors.NotFound:
            return
        except EngineErrors as err:
            log.warning("stop %s: %s", ref.key, engine_reason(err))
            with contextlib.suppress(*EngineErrors):
                await self._engine.run_long(stream_client.api.kill, target)

    async def exec(self, ref: AttemptRef, argv: tuple[str, ...], timeout: float) -> int:
        attempt = self._attempts.get(ref.key)
        if attempt is None:
            return EXEC_ERROR_CODE
        _, stream_client = await self._engine.clients()
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the caller's
            # cancellation, which left cancelled health watchers probing forever.
            async with asyncio.timeout(timeout):
                return await self._engine.run_long(
                    self._exec, stream_client, attempt.container_id, argv
                )
        except TimeoutError:
            return EXEC_TIMEOUT_CODE
        except EngineErrors as err:
            log.debug("exec in %s: %s", ref.key, engine_reason(err))
            return EXEC_ERROR_CODE

    @staticmethod
    def _exec(client: Any, container_id: str, argv: tuple[str, ...]) -> int:
        exec_id = client.api.exec_create(container_id, list(argv), stdout=True, stderr=True)["Id"]
        client.api.exec_start(exec_id)
        code = client.api.exec_inspect(exec_id).get("ExitCode")
        return EXEC_ERROR_CODE if code is None else int(code)

    async def logs(
        self, ref: AttemptRef, *, tail: int = 0, follow: bool = False
    ) -> AsyncIterator[bytes]:
        async for chunk in self._logs.read(ref, self._target(ref), tail=tail, follow=follow):
            yield chunk

    # -- adopt, usage, close ----------------------------------------------

    async def adopt(self) -> list[Adopted]:
        """This worker's containers, found by label after a restart, watched again."""
        self._ensure_reaper()
        client, _ = await self._engine.clients()
        await self._feed.ensure()
        found = await self._engine.run(
            client.api.containers, all=True, filters={"label": f"{LABEL_WORKER}={self._owner}"}
        )
        adopted: list[Adopted] = []
        for summary in found:
            labels = summary.get("Labels") or {}
            try:
                ref = AttemptRef(TaskId(labels[LABEL_TASK]), int(labels[LABEL_GENERATION]))
            except (KeyError, ValueError):
                continue
            if ref.key in self._attempts:
                continue
            try:
                attrs = await self._engine.run(client.api.inspect_container, summary["Id"])
            except docker.errors.NotFound:
                continue
            if (attrs.get("State") or {}).get("Status") == "created":
                # The last worker stopped between create and start: it never ran.
                with contextlib.suppress(*EngineErrors):
                    await self._engine.run(client.api.remove_container, summary["Id"], force=True)
                never = Exit(None, "never started: the worker stopped while starting it")
                adopted.append(Adopted(ref=ref, spec=None, exit=never))
                continue
            started = started_from(attrs)
            attempt = self._track(ref, summary["Id"], started, fresh=False)
            running = (attrs.get("State") or {}).get("Running", False)
            outcome = None if running else await asyncio.shield(attempt.done)
            adopted.append(Adopted(ref=ref, spec=None, exit=outcome, started=started))
        return adopted

    async def usage(self) -> tuple[float, int]:
        """CPU cores and memory bytes of this worker's running containers (a cached sample)."""
        return self._usage.usage()

    def _running(self) -> list[str]:
        return [a.container_id for a in self._attempts.values() if not a.done.done()]

    async def close(self) -> None:
        """Release clients and threads; containers keep running for the next worker to adopt."""
        self._engine.closed = True
        for attempt in self._attempts.values():
            if attempt.watcher is not None:
                attempt.watcher.cancel()
        watchers = [a.watcher for a in self._attempts.values() if a.watcher is not None]
        refresh = self._usage.cancel()
        if refresh is not None:
            watchers.append(refresh)
        await asyncio.gather(*watchers, return_exceptions=True)
        self._feed.close()
        self._engine.close()
