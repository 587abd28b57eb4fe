"""Log copying: each pod's output is followed while it runs and appended to the
worker's ``LogStore``, so it survives the pod (and the Job's TTL); ``read``
serves the file. A finished attempt reports its exit only once the copy has
drained (``LOG_DRAIN_TIMEOUT`` at most).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

from worker.logfiles import LogStore, read_log
from worker.runtimes.base import AttemptRef
from worker.runtimes.kubernetes.attempts import KubeAttempt
from worker.runtimes.kubernetes.cluster import CALL_TIMEOUT, Cluster
from worker.runtimes.kubestreams import LogFollow

LOG_DRAIN_TIMEOUT = 5.0
# A followed pod may print nothing for a long time; the stream is cut on close anyway.
FOLLOW_READ_TIMEOUT = 24 * 3600.0


class PodLogs:
    def __init__(self, cluster: Cluster, store: LogStore) -> None:
        self._cluster = cluster
        self.store = store
        self._follows: set[LogFollow] = set()

    def follow(self, loop: asyncio.AbstractEventLoop, attempt: KubeAttempt, pod: str) -> None:
        """Stream one pod's output into the attempt's log file, once per pod."""
        if pod in attempt.logged_pods:
            return
        attempt.logged_pods.add(pod)
        api: Any = self._cluster.api("CoreV1Api")
        namespace = attempt.namespace
        path = self.store.path(attempt.ref.task_id, attempt.ref.generation)
        finished: asyncio.Future[None] = loop.create_future()

        def open_log() -> Any:
            return api.read_namespaced_pod_log(
                pod,
                namespace,
                follow=True,
                _preload_content=False,
                _request_timeout=(CALL_TIMEOUT, FOLLOW_READ_TIMEOUT),
            )

        def done() -> None:  # in the follow's thread
            with contextlib.suppress(RuntimeError):  # loop closed under us
                loop.call_soon_threadsafe(_resolve, finished)

        follow = LogFollow(
            open_log=open_log,
            pod=pod,
            write=lambda chunk: self.store.append(path, chunk),
            done=done,
        )
        self._follows.add(follow)
        finished.add_done_callback(lambda _: self._follows.discard(follow))
        previous = attempt.copier
        attempt.copier = finished
        if previous is None or previous.done():
            follow.thread.start()
        else:  # the next pod of a Deployment: keep its lines after the first's
            previous.add_done_callback(lambda _: follow.thread.start())

    @staticmethod
    async def drained(attempt: KubeAttempt) -> None:
        """Wait (bounded) until the attempt's output is copied."""
        if attempt.copier is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(LOG_DRAIN_TIMEOUT):
                    await asyncio.shield(attempt.copier)

    async def read(
        self, ref: AttemptRef, attempt: KubeAttempt | None, *, tail: int, follow: bool
    ) -> AsyncIterator[bytes]:
        path = self.store.path(ref.task_id, ref.generation)

        def done() -> bool:
            return attempt is None or (
                attempt.done.done() and (attempt.copier is None or attempt.copier.done())
            )

        async for chunk in read_log(path, tail=tail, follow=follow, done=done):
            yield chunk

    def shutdown(self) -> list[threading.Thread]:
        """Tell every follow to stop; their threads, for the caller to join."""
        threads = []
        for follow in list(self._follows):
            follow.shutdown()
            threads.append(follow.thread)
        return threads


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
