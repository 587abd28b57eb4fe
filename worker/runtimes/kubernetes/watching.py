"""The watches: one per namespace and kind (Jobs, Pods, Deployments), never polling.

Each selects this worker's objects by the ``corral.task-id`` and
``corral.worker`` labels. The official client blocks, so each watch runs in
its own thread (``kubestreams.WatchThread``) and hands its events to the loop
with ``call_soon_threadsafe``: the loop alone touches the attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from worker.runtimes import kubeobjects as ko
from worker.runtimes.kubernetes.cluster import CALL_TIMEOUT, Cluster
from worker.runtimes.kubestreams import WatchThread

# Server-side watch length; the thread re-watches from the last resourceVersion.
WATCH_SECONDS = 60
WATCHED = ("Job", "Pod", "Deployment")
_WATCH_API = {"Job": "BatchV1Api", "Pod": "CoreV1Api", "Deployment": "AppsV1Api"}

OnEvent = Callable[[str, str, dict[str, Any]], None]
OnRelist = Callable[[str, str, set[str]], None]


class Watches:
    def __init__(
        self,
        cluster: Cluster,
        worker: str,
        *,
        watch_seconds: int,
        on_event: OnEvent,
        on_relist: OnRelist,
    ) -> None:
        self._cluster = cluster
        self._worker = worker
        self._watch_seconds = watch_seconds
        self._on_event = on_event
        self._on_relist = on_relist
        self._watches: dict[tuple[str, str], WatchThread] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._closed = threading.Event()

    def ensure(self, namespace: str) -> None:
        for kind in WATCHED:
            if (namespace, kind) not in self._watches:
                api = self._cluster.api(_WATCH_API[kind])
                watch = WatchThread(
                    open_list=getattr(api, f"list_namespaced_{kind.lower()}"),
                    namespace=namespace,
                    kind=kind,
                    selector=f"{ko.LABEL_TASK},{ko.LABEL_WORKER}={self._worker}",
                    watch_seconds=self._watch_seconds,
                    call_timeout=CALL_TIMEOUT,
                    on_event=self._deliver,
                    on_relist=self._deliver_relist,
                )
                self._watches[namespace, kind] = watch
                watch.thread.start()

    def _deliver(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        """Called in a watch thread: hand the event to the loop."""
        if self.loop is not None and not self._closed.is_set():
            with contextlib.suppress(RuntimeError):  # loop closed under us
                self.loop.call_soon_threadsafe(self._on_event, kind, event, obj)

    def _deliver_relist(self, kind: str, namespace: str, names: set[str]) -> None:
        if self.loop is not None and not self._closed.is_set():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._on_relist, kind, namespace, names)

    def close(self) -> None:
        """Stop delivering events (called first, before the threads are told to stop)."""
        self._closed.set()

    def shutdown(self) -> list[threading.Thread]:
        """Tell every watch to stop; their threads, for the caller to join."""
        threads = []
        for watch in self._watches.values():
            watch.shutdown()
            threads.append(watch.thread)
        self._watches.clear()
        return threads
