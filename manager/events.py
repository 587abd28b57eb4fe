"""The event log as watchers see it: replay from the store, then follow live.

The core numbers every change (``allocate``), commits it with the change,
and only then ``publish``es it, so anything a watcher receives is durable.
Each watcher has a bounded queue: a watcher that cannot keep up is dropped
(its stream ends with RESOURCE_EXHAUSTED naming the index to resume from)
instead of letting the manager's memory grow.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from corral.errors import ResourceExhausted, ValidationError
from corral.model import Event

log = logging.getLogger(__name__)

QUEUE_LIMIT = 10_000
REPLAY_PAGE = 1_000


class EventSource(Protocol):
    async def events(
        self, from_index: int, until: int, kinds: Sequence[str] = (), limit: int = 1000
    ) -> list[Event]: ...


@dataclass(eq=False)
class _Watcher:
    kinds: tuple[str, ...]
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    dropped: bool = False


class EventHub:
    def __init__(self, source: EventSource, last_index: int) -> None:
        self._source = source
        self._allocated = last_index
        self.published = last_index
        self._watchers: set[_Watcher] = set()
        # Called with every published batch, synchronously (the metrics' counters).
        self.listeners: list[Callable[[Sequence[Event]], None]] = []

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)

    def allocate(self) -> int:
        self._allocated += 1
        return self._allocated

    def publish(self, events: Sequence[Event]) -> None:
        if events:
            self.published = max(self.published, events[-1].index)
        for listener in self.listeners:
            listener(events)
        for watcher in list(self._watchers):
            for event in events:
                # Kinds are prefixes, as the proto documents: "task." matches "task.state".
                if watcher.kinds and not event.kind.startswith(watcher.kinds):
                    continue
                try:
                    watcher.queue.put_nowait(event)
                except asyncio.QueueFull:
                    watcher.dropped = True
                    self._watchers.discard(watcher)
                    break

    async def watch(
        self, *, from_index: int = 0, kinds: Sequence[str] = ()
    ) -> AsyncIterator[Event]:
        if from_index > self.published + 1:
            # Waiting would look like a quiet cluster while the caller's index is simply
            # wrong (from another manager's store, or a typo).
            raise ValidationError(
                "from_index",
                f"{from_index} is past the latest event ({self.published}): use at most "
                f"{self.published + 1}, or 0 for new events only",
            )
        watcher = _Watcher(tuple(kinds))
        # Subscribe before replaying so nothing published meanwhile is missed.
        self._watchers.add(watcher)
        last = self.published
        try:
            if from_index > 0:
                position = from_index
                while position <= last:
                    page = await self._source.events(position, last, kinds, REPLAY_PAGE)
                    if not page:
                        break
                    for event in page:
                        yield event
                    position = page[-1].index + 1
            while True:
                if watcher.dropped and watcher.queue.empty():
                    raise ResourceExhausted(
                        f"watcher fell more than {QUEUE_LIMIT} events behind;"
                        f" resume from index {last + 1}"
                    )
                event = await watcher.queue.get()
                if event.index <= last:
                    continue
                last = event.index
                yield event
        finally:
            self._watchers.discard(watcher)
