"""Retention: finished tasks and old events are garbage-collected (Nomad's ``job_gc_threshold``).

Without it a schedule firing every minute grows the manager's memory and
store by a task, its attempts and a dozen events a minute, forever. A
``Collector`` pass, every ``gc_every`` seconds:

- forgets finished tasks (COMPLETED, FAILED, STOPPED) whose end is older than
  ``--retain-finished`` (24 h by default), with their specs and attempts, at
  most ``GC_BATCH`` per pass so one pass never holds the loop for long;
- deletes events older than the newest ``--retain-events``;

in one transaction, through the core's ``forget`` (memory follows the store).
Schedule runs are kept per schedule (``history_limit``), and workers delete
the logs of attempts that ended longer ago than ``retain_finished``
(``worker.logfiles.prune``). ``plan`` is pure: it decides from the entries, the
newest event index and the clock, which is injectable so that a simulated day
takes seconds (``tests/faults/test_retention.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from manager.catalog import TaskEntry

log = logging.getLogger(__name__)

GC_BATCH = 5000


@dataclass(frozen=True)
class Plan:
    tasks: Sequence[TaskEntry]
    events_below: int

    def __bool__(self) -> bool:
        return bool(self.tasks) or self.events_below > 0


def plan(
    entries: Iterable[TaskEntry],
    *,
    now: float,
    retain_finished: float,
    newest_event: int,
    retain_events: int,
    trimmed_below: int = 0,
    limit: int = GC_BATCH,
) -> Plan:
    """What to forget now: the oldest-ended finished tasks past the retention, and the
    event index below which events go (0 when nothing new is due)."""
    cutoff = now - retain_finished
    due = []
    for entry in entries:
        if not entry.state.final:
            continue
        finished = entry.task.status.finished_at or entry.task.status.updated_at or 0.0
        if finished < cutoff:
            due.append((finished, entry))
    due.sort(key=lambda pair: pair[0])
    below = newest_event - retain_events + 1
    return Plan(
        tasks=[entry for _, entry in due[:limit]],
        events_below=below if below > max(1, trimmed_below) else 0,
    )


class Forgetting(Protocol):
    """The core, as the collector sees it."""

    def entries(self) -> Iterable[TaskEntry]: ...

    def newest_event(self) -> int: ...

    async def forget(self, tasks: Sequence[TaskEntry], *, events_below: int) -> None: ...


class Collector:
    def __init__(
        self,
        core: Forgetting,
        *,
        retain_finished: float,
        retain_events: int,
        every: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.core = core
        self.retain_finished = retain_finished
        self.retain_events = retain_events
        self.every = every
        self.clock = clock
        self.trimmed_below = 0
        self.forgotten = 0

    async def collect(self) -> Plan:
        """One pass; returns what it forgot."""
        decided = plan(
            self.core.entries(),
            now=self.clock(),
            retain_finished=self.retain_finished,
            newest_event=self.core.newest_event(),
            retain_events=self.retain_events,
            trimmed_below=self.trimmed_below,
        )
        if decided:
            await self.core.forget(decided.tasks, events_below=decided.events_below)
            self.trimmed_below = max(self.trimmed_below, decided.events_below)
            self.forgotten += len(decided.tasks)
        return decided

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                done = await self.collect()
            except Exception:
                log.exception("garbage collection failed; retrying next pass")
                continue
            if done.tasks:
                log.info("forgot finished tasks", extra={"tasks": len(done.tasks)})
