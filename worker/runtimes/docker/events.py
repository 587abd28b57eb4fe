"""The event feed: this worker's ``die`` and ``oom`` events, from one engine subscription.

Exits are learned from one engine event stream (``die`` and ``oom`` events
filtered by this worker's label) instead of one blocking ``wait`` call per
container; the stream is read on a thread of its own and resubscribed with
backoff while the runtime lives. Each event wakes the watcher of its
container, which re-inspects it; a slow re-inspect behind it (``EXIT_POLL``)
covers a dropped stream, and every resubscription wakes every watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from worker.runtimes.base import AttemptRef, Exit, Started
from worker.runtimes.containerspecs import LABEL_WORKER
from worker.runtimes.docker.engine import Engine, EngineErrors, engine_reason

log = logging.getLogger(__name__)

# Behind the event stream, a running container is re-inspected this often.
EXIT_POLL = 5.0
# How long a start waits for the event subscription before relying on re-inspects.
FEED_TIMEOUT = 5.0
UNCLAIMED_EVENTS = 1000


@dataclass(slots=True)
class ContainerAttempt:
    """One attempt's container, as the runtime and the feed see it."""

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


class EventFeed:
    def __init__(self, engine: Engine, owner: str, wake_all: Callable[[], None]) -> None:
        self._engine = engine
        self._owner = owner
        self._wake_all = wake_all
        self._by_container: dict[str, ContainerAttempt] = {}
        # Events of containers not tracked yet: id -> (when, actions).
        self._unclaimed: dict[str, tuple[float, set[str]]] = {}
        self._events: Any = None
        self._ready: asyncio.Future[None] | None = None

    async def ensure(self) -> None:
        """Subscribe to this worker's ``die`` and ``oom`` events once; returns when subscribed."""
        if self._ready is None:
            loop = asyncio.get_running_loop()
            self._ready = loop.create_future()
            threading.Thread(target=self._feed, args=(loop, self._ready), daemon=True).start()
        if self._ready.done():
            return
        # A feed that cannot subscribe leaves exits to the slow re-inspect.
        with contextlib.suppress(TimeoutError, *EngineErrors):
            async with asyncio.timeout(FEED_TIMEOUT):
                await asyncio.shield(self._ready)

    def claim(self, attempt: ContainerAttempt) -> None:
        """Route the container's events to ``attempt``, with any that came before it was known."""
        self._by_container[attempt.container_id] = attempt
        _, early = self._unclaimed.pop(attempt.container_id, (0.0, set()))
        if "oom" in early:
            attempt.oom.set()
        if "die" in early:
            attempt.died.set()  # it died before start() returned

    def close(self) -> None:
        if self._events is not None:
            with contextlib.suppress(Exception):
                self._events.close()

    def _feed(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        """Thread: forward events to the loop, resubscribing while the runtime lives."""
        delay = 0.2
        while not self._engine.closed:
            try:
                _, stream_client = self._engine.connect()
                filters = {
                    "type": "container",
                    "event": ["die", "oom"],
                    "label": [f"{LABEL_WORKER}={self._owner}"],
                }
                self._events = stream_client.events(decode=True, filters=filters)
                if self._engine.closed:
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
            if self._engine.closed:
                return
            time.sleep(delay)
            delay = min(delay * 2, EXIT_POLL)

    def _on_event(self, action: str, container_id: str) -> None:
        attempt = self._by_container.get(container_id)
        if attempt is not None:
            (attempt.oom if action == "oom" else attempt.died).set()
            return
        # A container can die (or OOM) between its start call and claim(): keep the news briefly.
        now = time.monotonic()
        self._unclaimed.setdefault(container_id, (now, set()))[1].add(action)
        if len(self._unclaimed) > UNCLAIMED_EVENTS:
            for stale in [k for k, (t, _) in self._unclaimed.items() if now - t > EXIT_POLL]:
                del self._unclaimed[stale]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
