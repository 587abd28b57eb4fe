"""The ``docker`` runtime: one container per attempt, on a real engine.

The Docker SDK is blocking, so every call runs in this runtime's own thread
pools, never on the event loop and never in the loop's default executor (a
follow-mode log stream or a ``stop`` with a long grace would otherwise starve
everyone else's ``to_thread``); calls that block for long have a pool of their
own so they never delay a start.

Exits are learned from one engine event stream (``die`` and ``oom`` events
filtered by this worker's label) instead of one blocking ``wait`` call per
container; a slow re-inspect behind it covers a dropped stream. When an attempt ends, its
output is copied to the worker's ``LogStore`` and only then is the container
removed, so ``corral logs`` keeps working on finished tasks.

Everything created carries ``corral.task-id``, ``corral.generation``,
``corral.node-id`` and ``corral.worker`` (this worker's data dir): a
restarted worker adopts its own containers by label and leaves those of
other workers on the same engine alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import docker
import docker.errors
import docker.utils
import requests.exceptions

from corral.model import TaskId
from worker.config import WorkerConfig
from worker.logfiles import LogStore, read_log
from worker.runtimes.base import Adopted, Assignment, AttemptRef, Exit, Started, StartError
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

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
API_TIMEOUT = 30.0
# A pull that cannot finish in this time ends the attempt; big images on slow links need minutes.
PULL_TIMEOUT = 300.0
# A failed pull is not retried for this long: restarts by policy fail at once with the same reason.
PULL_FAILURE_MEMORY = 30.0
# Behind the event stream, a running container is re-inspected this often.
EXIT_POLL = 5.0
# How long a start waits for the event subscription before relying on re-inspects.
FEED_TIMEOUT = 5.0
# Threads for calls that block for long; past this, follows and stops queue.
LONG_CALLS = 256
UNCLAIMED_EVENTS = 1000
# How long an exit by SIGKILL under a memory limit waits for a trailing "oom" event.
OOM_GRACE = 1.0
USAGE_CACHE = 2.0
USAGE_CONCURRENCY = 8
EXEC_TIMEOUT_CODE = 124
EXEC_ERROR_CODE = 125

T = TypeVar("T")
EngineErrors = (docker.errors.DockerException, requests.exceptions.RequestException)


@dataclass(slots=True)
class _Attempt:
    ref: AttemptRef
    container_id: str
    started: Started
    done: asyncio.Future[Exit]
    died: asyncio.Event = field(default_factory=asyncio.Event)
    # The engine's "oom" event: it can trail the exit, so inspect may not say OOMKilled yet.
    oom: asyncio.Event = field(default_factory=asyncio.Event)
    watcher: asyncio.Task[None] | None = None
    # Set by stop(): a SIGKILL after the grace is ours, not the kernel's OOM killer.
    stopping: bool = False


def engine_reason(err: BaseException) -> str:
    """The engine's own words when it gave some, the exception otherwise."""
    explanation = getattr(err, "explanation", None)
    if explanation:
        return str(explanation.decode() if isinstance(explanation, bytes) else explanation)
    return str(err) or type(err).__name__


class DockerRuntime:
    name = "docker"

    def __init__(self, config: WorkerConfig) -> None:
        self._config = config
        self._owner = str(config.data_dir.resolve())
        self._logs = LogStore(config.data_dir / "logs", config.log_max_bytes)
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="corral-docker")
        self._long_pool = ThreadPoolExecutor(
            max_workers=LONG_CALLS, thread_name_prefix="corral-docker-long"
        )
        self._client: Any = None
        # Streams (logs, events), pulls and stops may block for long: no read timeout.
        self._stream_client: Any = None
        self._connect_lock = threading.Lock()
        self._attempts: dict[str, _Attempt] = {}
        self._starting: dict[str, asyncio.Task[Started]] = {}
        self._by_container: dict[str, _Attempt] = {}
        # Events of containers not tracked yet: id -> (when, actions).
        self._unclaimed: dict[str, tuple[float, set[str]]] = {}
        self._failed_pulls: dict[str, tuple[float, str]] = {}
        self._events: Any = None
        self._events_ready: asyncio.Future[None] | None = None
        self._closed = False
        self._usage: tuple[float, tuple[float, int]] = (-USAGE_CACHE, (0.0, 0))
        self._usage_refresh: asyncio.Task[None] | None = None
        self._cpu_samples: dict[str, tuple[float, float]] = {}

    # -- engine plumbing --------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A short engine call (create, start, inspect, remove)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    async def _run_long(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A call that may block for long (follow, stop grace, exec, pull, stats tick).

        Its own pool: a hundred log followers must never delay the next start.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._long_pool, lambda: fn(*args, **kwargs))

    def _environment(self) -> dict[str, str]:
        # The flag wins over DOCKER_HOST; TLS settings still come from the environment.
        env = dict(os.environ)
        if self._config.docker_host:
            env["DOCKER_HOST"] = self._config.docker_host
        return env

    def _connect(self) -> tuple[Any, Any]:
        with self._connect_lock:
            if self._client is None:
                env = self._environment()
                self._client = docker.from_env(timeout=API_TIMEOUT, environment=env)
                self._stream_client = docker.from_env(timeout=None, environment=env)
            return self._client, self._stream_client

    async def _clients(self) -> tuple[Any, Any]:
        if self._client is not None:
            return self._client, self._stream_client
        return await self._run(self._connect)

    async def available(self) -> bool:
        host = self._environment().get("DOCKER_HOST") or DEFAULT_SOCKET
        socket_path = host.removeprefix("unix://") if host.startswith("unix://") else ""
        if socket_path and not await asyncio.to_thread(os.path.exists, socket_path):
            # No socket, no engine. (Asking docker-py anyway would leak the socket of the
            # refused connection, which it never closes.)
            log.info("docker engine unavailable: no socket at %s", host)
            return False
        try:
            client, _ = await self._clients()
            return bool(await self._run(client.ping))
        except EngineErrors as err:
            log.info("docker engine unavailable: %s", engine_reason(err))
            return False

    # -- start ------------------------------------------------------------

    async def start(self, assignment: Assignment) -> Started:
        ref = assignment.ref
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
            client, _ = await self._clients()
            await self._ensure_feed()
            container_id = await self._create(client, ref, options)
            await self._run(client.api.start, container_id)
            if network == "host":
                started = host_started(spec.ports)
            else:
                # Engine-chosen host ports and the container's address are known only now.
                attrs = await self._run(client.api.inspect_container, container_id)
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
                return str((await self._run(api.create_container, **kwargs))["Id"])
            except docker.errors.ImageNotFound:
                # Like `docker run`: try the local image first, pull only when it is missing.
                await self._pull(options["image"])
                return str((await self._run(api.create_container, **kwargs))["Id"])
        except docker.errors.APIError as err:
            if err.status_code != 409:
                raise
            # The name is taken: a redelivered assignment whose container already exists.
            attrs = await self._run(api.inspect_container, options["name"])
            labels = (attrs.get("Config") or {}).get("Labels") or {}
            same = labels.get(LABEL_TASK) == ref.task_id and labels.get(LABEL_GENERATION) == str(
                ref.generation
            )
            if not same:
                raise
            return str(attrs["Id"])

    async def _pull(self, image: str) -> None:
        _, stream_client = await self._clients()
        failed = self._failed_pulls.get(image)
        if failed is not None and time.monotonic() - failed[0] < PULL_FAILURE_MEMORY:
            raise StartError(failed[1])
        try:
            async with asyncio.timeout(PULL_TIMEOUT):
                await self._run_long(_pull, stream_client, image)
        except (*EngineErrors, PullFailed, TimeoutError) as err:
            reason = engine_reason(err) if not isinstance(err, TimeoutError) else "timed out"
            message = f"docker: cannot pull image {image!r}: {reason}"
            self._failed_pulls[image] = (time.monotonic(), message)
            raise StartError(message) from err
        self._failed_pulls.pop(image, None)

    async def _discard(self, ref: AttemptRef) -> None:
        """Remove what a failed start left behind: nothing half-made stays."""
        client, _ = await self._clients()
        with contextlib.suppress(*EngineErrors):
            container = await self._run(client.containers.get, container_name(ref, self._owner))
            if container.labels.get(LABEL_WORKER) == self._owner:
                await self._run(container.remove, force=True)

    def _track(
        self, ref: AttemptRef, container_id: str, started: Started, *, fresh: bool
    ) -> _Attempt:
        attempt = _Attempt(ref, container_id, started, asyncio.get_running_loop().create_future())
        self._attempts[ref.key] = attempt
        self._by_container[container_id] = attempt
        _, early = self._unclaimed.pop(container_id, (0.0, set()))
        if "oom" in early:
            attempt.oom.set()
        if "die" in early:
            attempt.died.set()  # it died before start() returned
        watch = self._watch(attempt, fresh=fresh)
        attempt.watcher = asyncio.create_task(watch, name=f"docker-{ref.key}")
        return attempt

    # -- exits ------------------------------------------------------------

    async def _ensure_feed(self) -> None:
        """Subscribe to this worker's ``die`` and ``oom`` events once; returns when subscribed."""
        if self._events_ready is None:
            loop = asyncio.get_running_loop()
            self._events_ready = loop.create_future()
            threading.Thread(
                target=self._feed, args=(loop, self._events_ready), daemon=True
            ).start()
        if self._events_ready.done():
            return
        # A feed that cannot subscribe leaves exits to the slow re-inspect.
        with contextlib.suppress(TimeoutError, *EngineErrors):
            async with asyncio.timeout(FEED_TIMEOUT):
                await asyncio.shield(self._events_ready)

    def _feed(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        """Thread: forward events to the loop, resubscribing while the runtime lives."""
        delay = 0.2
        while not self._closed:
            try:
                _, stream_client = self._connect()
                filters = {
                    "type": "container",
                    "event": ["die", "oom"],
                    "label": [f"{LABEL_WORKER}={self._owner}"],
                }
                self._events = stream_client.events(decode=True, filters=filters)
                if self._closed:
                    self._events.close()
                    return
                if not ready.done():
                    loop.call_soon_threadsafe(_resolve, ready)
                # A resubscription may have missed events: wake every watcher to re-inspect.
                loop.call_soon_threadsafe(self._wake_all)
                delay = 0.2
                for event in self._events:
                    action = event.get("Action") or event.get("status") or ""
                    loop.call_soon_threadsafe(self._on_event, action, event.get("id", ""))
            except EngineErrors as err:
                log.debug("docker event stream: %s", engine_reason(err))
            except RuntimeError:  # the loop closed under us
                return
            if self._closed:
                return
            time.sleep(delay)
            delay = min(delay * 2, EXIT_POLL)

    def _on_event(self, action: str, container_id: str) -> None:
        attempt = self._by_container.get(container_id)
        if attempt is not None:
            (attempt.oom if action == "oom" else attempt.died).set()
            return
        # A container can die (or OOM) between its start call and _track: keep the news briefly.
        now = time.monotonic()
        self._unclaimed.setdefault(container_id, (now, set()))[1].add(action)
        if len(self._unclaimed) > UNCLAIMED_EVENTS:
            for stale in [k for k, (t, _) in self._unclaimed.items() if now - t > EXIT_POLL]:
                del self._unclaimed[stale]

    def _wake_all(self) -> None:
        for attempt in self._attempts.values():
            attempt.died.set()

    async def _watch(self, attempt: _Attempt, *, fresh: bool) -> None:
        """Wait for the container to end, keep its logs, remove it, resolve ``done``.

        A container this runtime just started is known to run, and the event feed was
        subscribed before it was created: its first inspect waits for its death (or the
        slow poll), keeping an engine call off the path to RUNNING.
        """
        client, _ = await self._clients()
        if fresh:
            await self._until_died(attempt)
        while True:
            attempt.died.clear()
            try:
                attrs = await self._run(client.api.inspect_container, attempt.container_id)
            except docker.errors.NotFound:
                outcome = Exit(exit_code=None, message="container removed outside Corral")
                break
            except EngineErrors as err:
                log.warning("inspect %s: %s", attempt.ref.key, engine_reason(err))
            else:
                state = attrs.get("State") or {}
                if not state.get("Running") and state.get("Status") not in ("created", "running"):
                    outcome = await self._exit(attempt, attrs)
                    await self._harvest(attempt.ref, attempt.container_id)
                    break
            await self._until_died(attempt)
        if not attempt.done.done():
            attempt.done.set_result(outcome)

    @staticmethod
    async def _exit(attempt: _Attempt, attrs: Mapping[str, Any]) -> Exit:
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
    async def _until_died(attempt: _Attempt) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(EXIT_POLL):
                await attempt.died.wait()

    async def _harvest(self, ref: AttemptRef, container_id: str) -> None:
        """Copy the output to the log store, then remove the container."""
        _, stream_client = await self._clients()
        try:
            await self._run_long(self._copy_logs, stream_client, ref, container_id)
        except (*EngineErrors, OSError) as err:
            # Keep the container: its logs are still readable from the engine.
            log.warning("keeping container of %s: logs not copied: %s", ref.key, err)
            return
        with contextlib.suppress(docker.errors.NotFound):
            try:
                await self._run(stream_client.api.remove_container, container_id, force=True)
            except EngineErrors as err:
                log.warning("remove container of %s: %s", ref.key, engine_reason(err))

    def _copy_logs(self, client: Any, ref: AttemptRef, container_id: str) -> None:
        # Written aside and renamed: the kept file, once it exists, is the complete output.
        path = self._logs.path(ref.task_id, ref.generation)
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        stream = client.api.logs(container_id, stdout=True, stderr=True, stream=True, follow=False)
        try:
            with part.open("wb") as out:
                for chunk in stream:
                    out.write(chunk)
                    if out.tell() > 2 * self._logs.max_bytes:
                        out.flush()
                        self._logs.enforce_limit(part)
                        out.seek(0, os.SEEK_END)
        finally:
            stream.close()
        self._logs.enforce_limit(part)
        part.replace(path)

    async def wait(self, ref: AttemptRef) -> Exit:
        attempt = self._attempts.get(ref.key)
        if attempt is None:
            return Exit(exit_code=None, message="unknown attempt: not started on this worker")
        return await asyncio.shield(attempt.done)

    # -- stop, exec -------------------------------------------------------

    async def stop(self, ref: AttemptRef, grace: float) -> None:
        _, stream_client = await self._clients()
        attempt = self._attempts.get(ref.key)
        target = attempt.container_id if attempt else container_name(ref, self._owner)
        if attempt is not None:
            attempt.stopping = True
        try:
            # The engine sends the stop signal, waits ``t`` seconds, then kills.
            await self._run_long(stream_client.api.stop, target, timeout=math.ceil(max(grace, 0.0)))
        except docker.errors.NotFound:
            return
        except EngineErrors as err:
            log.warning("stop %s: %s", ref.key, engine_reason(err))
            with contextlib.suppress(*EngineErrors):
                await self._run_long(stream_client.api.kill, target)

    async def exec(self, ref: AttemptRef, argv: tuple[str, ...], timeout: float) -> int:
        attempt = self._attempts.get(ref.key)
        if attempt is None:
            return EXEC_ERROR_CODE
        _, stream_client = await self._clients()
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the caller's
            # cancellation, which left cancelled health watchers probing forever.
            async with asyncio.timeout(timeout):
                return await self._run_long(self._exec, stream_client, attempt.container_id, argv)
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

    # -- logs -------------------------------------------------------------

    async def logs(
        self, ref: AttemptRef, *, tail: int = 0, follow: bool = False
    ) -> AsyncIterator[bytes]:
        path = self._logs.path(ref.task_id, ref.generation)
        stream = None
        if not await asyncio.to_thread(path.exists):
            stream = await self._engine_logs(ref, tail=tail, follow=follow)
        if stream is None:
            async for chunk in read_log(path, tail=tail):
                yield chunk
            return
        try:
            while True:
                chunk = await self._run_long(next, stream, None)
                if chunk is None:
                    return
                yield chunk
        finally:
            stream.close()

    async def _engine_logs(self, ref: AttemptRef, *, tail: int, follow: bool) -> Any:
        """The engine's log stream while the container exists, None once it is gone."""
        attempt = self._attempts.get(ref.key)
        _, stream_client = await self._clients()
        target = attempt.container_id if attempt else container_name(ref, self._owner)
        try:
            return await self._run_long(
                stream_client.api.logs,
                target,
                stdout=True,
                stderr=True,
                stream=True,
                follow=follow,
                tail=tail if tail > 0 else "all",
            )
        except docker.errors.NotFound:
            return None

    # -- adopt, usage, close ----------------------------------------------

    async def adopt(self) -> list[Adopted]:
        client, _ = await self._clients()
        await self._ensure_feed()
        found = await self._run(
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
                attrs = await self._run(client.api.inspect_container, summary["Id"])
            except docker.errors.NotFound:
                continue
            if (attrs.get("State") or {}).get("Status") == "created":
                # The last worker stopped between create and start: it never ran.
                with contextlib.suppress(*EngineErrors):
                    await self._run(client.api.remove_container, summary["Id"], force=True)
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
        """CPU cores and memory bytes of this worker's running containers.

        The engine answers a stats request at its next collection tick (up to a
        second), so this returns the latest sample at once and refreshes it in the
        background: a heartbeat never waits on the engine.
        """
        sampled_at, cached = self._usage
        stale = time.monotonic() - sampled_at >= USAGE_CACHE
        if stale and (self._usage_refresh is None or self._usage_refresh.done()):
            self._usage_refresh = asyncio.create_task(self._refresh_usage())
        return cached

    async def _refresh_usage(self) -> None:
        running = [a.container_id for a in self._attempts.values() if not a.done.done()]
        for gone in set(self._cpu_samples) - set(running):
            del self._cpu_samples[gone]
        client, _ = await self._clients()
        gate = asyncio.Semaphore(USAGE_CONCURRENCY)

        async def sample(container_id: str) -> tuple[float, int]:
            async with gate:
                return await self._run_long(self._sample, client, container_id)

        samples = await asyncio.gather(*map(sample, running), return_exceptions=True)
        cpu, memory = 0.0, 0
        for one in samples:
            if isinstance(one, tuple):
                cpu += one[0]
                memory += one[1]
        self._usage = (time.monotonic(), (cpu, memory))

    def _sample(self, client: Any, container_id: str) -> tuple[float, int]:
        """One-shot stats; CPU cores from the change since this container's previous sample."""
        # The engine reads "one-shot" literally as "true"; docker-py would send "True" and
        # the engine would then sample twice, a second apart.
        stats = client.api.stats(container_id, stream=False, one_shot="true")
        now = time.monotonic()
        total = float(((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage", 0))
        previous = self._cpu_samples.get(container_id)
        self._cpu_samples[container_id] = (now, total)
        cpu = 0.0
        if previous is not None and now > previous[0]:
            cpu = max(0.0, (total - previous[1]) / 1e9 / (now - previous[0]))
        memory_stats = stats.get("memory_stats") or {}
        detail = memory_stats.get("stats") or {}
        # Page cache is reclaimable: count what `docker stats` counts.
        cache = detail.get("inactive_file", detail.get("total_inactive_file", 0))
        return cpu, max(0, int(memory_stats.get("usage", 0)) - int(cache))

    async def close(self) -> None:
        """Release clients and threads; containers keep running for the next worker to adopt."""
        self._closed = True
        for attempt in self._attempts.values():
            if attempt.watcher is not None:
                attempt.watcher.cancel()
        watchers = [a.watcher for a in self._attempts.values() if a.watcher is not None]
        if self._usage_refresh is not None:
            self._usage_refresh.cancel()
            watchers.append(self._usage_refresh)
        await asyncio.gather(*watchers, return_exceptions=True)
        if self._events is not None:
            with contextlib.suppress(Exception):
                self._events.close()
        for client in (self._client, self._stream_client):
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._long_pool.shutdown(wait=False, cancel_futures=True)


class PullFailed(Exception):
    """The engine accepted a pull, then reported an error in its progress stream."""


def _pull(client: Any, image: str) -> None:
    """Pull ``image``, reading the progress stream: some failures only show up there."""
    repository, tag = docker.utils.parse_repository_tag(image)
    for line in client.api.pull(repository, tag=tag, stream=True, decode=True):
        if isinstance(line, dict) and line.get("error"):
            raise PullFailed(str(line["error"]))


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def create(config: WorkerConfig) -> DockerRuntime:
    return DockerRuntime(config)


__all__ = ["DockerRuntime", "create"]
