"""The event hub: replay then follow, kinds, and dropping slow watchers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from waiting import eventually

from corral.errors import ResourceExhausted
from corral.model import Event
from manager import events
from manager.events import EventHub


class Log:
    def __init__(self) -> None:
        self.stored: list[Event] = []

    async def events(
        self, from_index: int, until: int, kinds: Sequence[str] = (), limit: int = 1000
    ) -> list[Event]:
        found = [e for e in self.stored if from_index <= e.index <= until]
        return [e for e in found if not kinds or e.kind in kinds][:limit]


def emit(hub: EventHub, log: Log, kind: str = "task.state") -> Event:
    event = Event(hub.allocate(), 0.0, kind)
    log.stored.append(event)
    hub.publish([event])
    return event


async def test_replay_from_an_index_then_follow_live() -> None:
    log = Log()
    hub = EventHub(log, 0)
    for _ in range(5):
        emit(hub, log)
    seen: list[int] = []

    async def watch() -> None:
        async for event in hub.watch(from_index=3):
            seen.append(event.index)
            if event.index == 7:
                return

    watcher = asyncio.create_task(watch())
    await eventually(lambda: seen)  # replaying: the watcher is subscribed
    emit(hub, log)
    emit(hub, log)
    await asyncio.wait_for(watcher, 5)
    assert seen == [3, 4, 5, 6, 7]


async def test_kinds_filter_live_events() -> None:
    log = Log()
    hub = EventHub(log, 0)
    stream = hub.watch(kinds=["node.down"])
    first = asyncio.create_task(anext(stream))
    await eventually(lambda: hub._watchers)  # subscribed: what is emitted now is live
    emit(hub, log, "task.state")
    wanted = emit(hub, log, "node.down")
    assert (await asyncio.wait_for(first, 5)) == wanted
    await stream.aclose()


async def test_a_slow_watcher_is_dropped_not_buffered_forever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events, "QUEUE_LIMIT", 3)
    log = Log()
    hub = EventHub(log, 0)
    stream = hub.watch()
    first = asyncio.create_task(anext(stream))
    await eventually(lambda: hub._watchers)  # subscribed: what is emitted now is live
    for _ in range(10):
        emit(hub, log)
    await first
    with pytest.raises(ResourceExhausted, match="resume from index"):
        while True:
            await asyncio.wait_for(anext(stream), 5)
    assert not hub._watchers
