"""The engine connection: two docker-py clients, the thread pools they run in, image pulls.

The Docker SDK is blocking, so every call runs in this runtime's own thread
pools, never on the event loop and never in the loop's default executor (a
follow-mode log stream or a ``stop`` with a long grace would otherwise starve
everyone else's ``to_thread``); calls that block for long have a pool of their
own so they never delay a start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import docker
import docker.errors
import docker.utils
import requests.exceptions

from worker.config import WorkerConfig
from worker.runtimes.base import StartError

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
API_TIMEOUT = 30.0
# A local socket answers a connect at once or not at all.
API_PROBE_TIMEOUT = 2.0
# A pull that cannot finish in this time ends the attempt; big images on slow links need minutes.
PULL_TIMEOUT = 300.0
# A failed pull is not retried for this long: restarts by policy fail at once with the same reason.
PULL_FAILURE_MEMORY = 30.0
# Threads for calls that block for long; past this, follows and stops queue.
LONG_CALLS = 256

T = TypeVar("T")
EngineErrors = (docker.errors.DockerException, requests.exceptions.RequestException)


def engine_reason(err: BaseException) -> str:
    """The engine's own words when it gave some, the exception otherwise."""
    explanation = getattr(err, "explanation", None)
    if explanation:
        return str(explanation.decode() if isinstance(explanation, bytes) else explanation)
    return str(err) or type(err).__name__


class PullFailed(Exception):
    """The engine accepted a pull, then reported an error in its progress stream."""


class Engine:
    """One engine, reached through a short-call client and a no-timeout streaming client."""

    def __init__(self, config: WorkerConfig) -> None:
        self._config = config
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="corral-docker")
        self._long_pool = ThreadPoolExecutor(
            max_workers=LONG_CALLS, thread_name_prefix="corral-docker-long"
        )
        self._client: Any = None
        # Streams (logs, events), pulls and stops may block for long: no read timeout.
        self._stream_client: Any = None
        self._connect_lock = threading.Lock()
        self._failed_pulls: dict[str, tuple[float, str]] = {}
        self.closed = False

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A short engine call (create, start, inspect, remove)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    async def run_long(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A call that may block for long (follow, stop grace, exec, pull, stats tick).

        Its own pool: a hundred log followers must never delay the next start.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._long_pool, lambda: fn(*args, **kwargs))

    def environment(self) -> dict[str, str]:
        # The flag wins over DOCKER_HOST; TLS settings still come from the environment.
        env = dict(os.environ)
        if self._config.docker_host:
            env["DOCKER_HOST"] = self._config.docker_host
        return env

    def connect(self) -> tuple[Any, Any]:
        """The (short-call, streaming) clients, made on first use; blocks (threads only)."""
        with self._connect_lock:
            if self._client is None:
                env = self.environment()
                self._client = docker.from_env(timeout=API_TIMEOUT, environment=env)
                self._stream_client = docker.from_env(timeout=None, environment=env)
            return self._client, self._stream_client

    async def clients(self) -> tuple[Any, Any]:
        if self._client is not None:
            return self._client, self._stream_client
        return await self.run(self.connect)

    async def available(self) -> bool:
        host = self.environment().get("DOCKER_HOST") or DEFAULT_SOCKET
        socket_path = host.removeprefix("unix://") if host.startswith("unix://") else ""
        if socket_path and not await asyncio.to_thread(os.path.exists, socket_path):
            # No socket, no engine. (Asking docker-py anyway would leak the socket of the
            # refused connection, which it never closes.)
            log.info("docker engine unavailable: no socket at %s", host)
            return False
        if socket_path and not await asyncio.to_thread(_listening, socket_path):
            # A socket file left by an engine that died: refused for the same reason.
            log.info("docker engine unavailable: nothing listens on %s", host)
            return False
        try:
            client, _ = await self.clients()
            return bool(await self.run(client.ping))
        except EngineErrors as err:
            log.info("docker engine unavailable: %s", engine_reason(err))
            return False

    async def pull(self, image: str) -> None:
        _, stream_client = await self.clients()
        failed = self._failed_pulls.get(image)
        if failed is not None and time.monotonic() - failed[0] < PULL_FAILURE_MEMORY:
            raise StartError(failed[1])
        try:
            async with asyncio.timeout(PULL_TIMEOUT):
                await self.run_long(_pull, stream_client, image)
        except (*EngineErrors, PullFailed, TimeoutError) as err:
            reason = engine_reason(err) if not isinstance(err, TimeoutError) else "timed out"
            message = f"docker: cannot pull image {image!r}: {reason}"
            self._failed_pulls[image] = (time.monotonic(), message)
            raise StartError(message) from err
        self._failed_pulls.pop(image, None)

    def close(self) -> None:
        """Close the clients and drop queued calls; running threads finish on their own."""
        self.closed = True
        for client in (self._client, self._stream_client):
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._long_pool.shutdown(wait=False, cancel_futures=True)


def _pull(client: Any, image: str) -> None:
    """Pull ``image``, reading the progress stream: some failures only show up there."""
    repository, tag = docker.utils.parse_repository_tag(image)
    for line in client.api.pull(repository, tag=tag, stream=True, decode=True):
        if isinstance(line, dict) and line.get("error"):
            raise PullFailed(str(line["error"]))


def _listening(path: str) -> bool:
    """Whether something accepts connections on the unix socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(API_PROBE_TIMEOUT)
        try:
            probe.connect(path)
        except OSError:
            return False
    return True
