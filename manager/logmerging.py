"""Merged logs: the output of every task matching a label selector, line by line.

What ``stern`` is installed for: ``corral logs -l app=web -f`` interleaves
the attempts of every matching task, each line prefixed with the task's name
(``web-1 | ...``), and its attempt when it has restarted (``web-1#2 | ...``).
With follow, the event stream is watched from before the listing, so a task
that starts (or restarts) later joins the stream and nothing in between is
missed. ``tail`` applies per attempt that already runs when the call starts.

Each attempt is read by its own follower (the same worker-proxied stream as
``GetTaskLogs``); followers feed one queue, whole lines only, so lines of two
tasks never interleave mid-line. A follower that loses its worker says so in
the stream and ends; the others go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from corral.errors import CorralError
from corral.model import Event, Task, TaskState
from manager.control import TaskQuery
from manager.namespaces import visible

log = logging.getLogger(__name__)

# A line longer than this is cut into pieces (each prefixed), so one runaway
# writer without newlines cannot hold the merged stream.
MAX_LINE = 64 * 1024
_STARTED = (TaskState.RUNNING, TaskState.COMPLETED, TaskState.FAILED, TaskState.STOPPED)


class LogCore(Protocol):
    """What merging needs from the manager's core."""

    async def list_tasks(self, query: TaskQuery) -> tuple[list[Task], str]: ...

    def logs(
        self, ref: str, *, tail: int = 0, follow: bool = False, generation: int = 0
    ) -> AsyncIterator[bytes]: ...

    def watch(
        self, *, from_index: int = 0, kinds: tuple[str, ...] = ()
    ) -> AsyncIterator[Event]: ...

    @property
    def last_event(self) -> int: ...


@dataclass(frozen=True)
class Source:
    """One attempt's output."""

    task_id: str
    name: str
    generation: int

    @property
    def prefix(self) -> bytes:
        label = self.name if self.generation <= 1 else f"{self.name}#{self.generation}"
        return label.encode() + b" | "


def matches(task: Task, selector: Mapping[str, str]) -> bool:
    return all(task.spec.labels.get(k) == v for k, v in selector.items())


def lines(prefix: bytes) -> Callable[[bytes | None], list[bytes]]:
    """A splitter: feed chunks, get whole prefixed lines; feed None at the end for the rest."""
    pending = bytearray()

    def feed(chunk: bytes | None) -> list[bytes]:
        if chunk is None:
            rest = bytes(pending)
            pending.clear()
            return [prefix + rest + b"\n"] if rest else []
        pending.extend(chunk)
        out = []
        while (end := pending.find(b"\n")) >= 0 or len(pending) >= MAX_LINE:
            cut = end + 1 if end >= 0 else MAX_LINE
            piece = bytes(pending[:cut])
            del pending[:cut]
            out.append(prefix + piece + (b"" if piece.endswith(b"\n") else b"\n"))
        return out

    return feed


async def _all_matching(core: LogCore, selector: Mapping[str, str]) -> list[Task]:
    tasks: list[Task] = []
    token = ""
    while True:
        page, token = await core.list_tasks(
            TaskQuery(labels=dict(selector), page_size=1000, page_token=token)
        )
        tasks.extend(page)
        if not token:
            return tasks[::-1]  # oldest first: the order they started in


async def merged_logs(
    core: LogCore, selector: Mapping[str, str], *, tail: int = 0, follow: bool = False
) -> AsyncIterator[bytes]:
    """Prefixed lines of every matching task; with ``follow``, forever (until cancelled)."""
    since = core.last_event  # watch from here: what starts while we list is not missed
    # A token scoped to a namespace reads only its own tasks' lines (manager.namespaces).
    tasks = [t for t in await _all_matching(core, selector) if t.status.generation and visible(t)]
    if not follow:
        for task in tasks:
            source = Source(task.id, task.spec.name, task.status.generation)
            async for line in _read(core, source, tail=tail, follow=False):
                yield line
        return
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1024)
    followers: dict[Source, asyncio.Task[None]] = {}

    def start(task: Task, *, tail: int) -> None:
        source = Source(task.id, task.spec.name, task.status.generation)
        if source in followers or task.status.state not in _STARTED or not visible(task):
            return
        followers[source] = asyncio.create_task(_pump(core, source, tail, queue))

    for task in tasks:
        start(task, tail=tail)
    watcher = asyncio.create_task(_watch(core, since, selector, lambda t: start(t, tail=0)))
    try:
        while True:
            yield await queue.get()
    finally:
        for job in [watcher, *followers.values()]:
            job.cancel()
        await asyncio.gather(watcher, *followers.values(), return_exceptions=True)


async def _watch(
    core: LogCore, since: int, selector: Mapping[str, str], start: Callable[[Task], None]
) -> None:
    async for event in core.watch(from_index=since + 1, kinds=("task.",)):
        if (
            event.task is not None
            and event.task.status.generation
            and matches(event.task, selector)
        ):
            start(event.task)


async def _pump(core: LogCore, source: Source, tail: int, queue: asyncio.Queue[bytes]) -> None:
    async for line in _read(core, source, tail=tail, follow=True):
        await queue.put(line)


async def _read(core: LogCore, source: Source, *, tail: int, follow: bool) -> AsyncIterator[bytes]:
    split = lines(source.prefix)
    try:
        async for chunk in core.logs(
            source.task_id, tail=tail, follow=follow, generation=source.generation
        ):
            for line in split(chunk):
                yield line
    except CorralError as err:
        log.warning("merged logs: %s#%d: %s", source.name, source.generation, err)
        for line in split(None):
            yield line
        yield source.prefix + f"[corral: output unavailable: {err}]\n".encode()
        return
    for line in split(None):
        yield line
