"""Placement passes: when one runs, which tasks it examines, and what a failure costs.

The core asks for a pass (``kick``) whenever capacity or pending work may
have changed; one loop runs them one at a time. A pass plans a ``CHUNK`` of
pending tasks at a time (``manager.placing``), applies the plan and commits
it before the next chunk, so a long queue never holds the event loop for
long, and stops after ``PASS_LIMIT`` placements (the next pass goes on).

A pass examines only what changed: after a submit (capacity unchanged) just
the new tasks (``kick_new``), since every older pending task already failed
to fit the same nodes; the whole queue only after anything else (capacity
freed or added, a node's status, a timer, a cut-short or failed pass). A
backlog thus costs nothing while no capacity changes. A failed pass is
logged and tried again with exponential backoff, with no new trigger needed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from corral.model import TaskId
from manager import placing
from manager.applying import Applier
from manager.ledger import Ledger
from manager.scheduling import Scheduler
from manager.store import Batch

log = logging.getLogger(__name__)

# Placements per pass: bounds how long one pass holds the event loop.
PASS_LIMIT = 10_000
# Tasks examined between two commits of a pass (each commit yields the event loop).
CHUNK = 2_000
# A failed placement pass is tried again after this, doubling up to RETRY_MAX.
RETRY_FIRST = 0.05
RETRY_MAX = 5.0
# Past a wake-up instant: one timer tick of uvloop (libuv counts milliseconds).
TIMER_SLACK = 0.002


class PlacementPasses:
    def __init__(
        self,
        ledger: Ledger,
        scheduler: Scheduler,
        applier: Applier,
        *,
        held: Callable[[TaskId], bool],
        commit: Callable[[Batch], Awaitable[None]],
    ) -> None:
        self.ledger = ledger
        self.scheduler = scheduler
        self.applier = applier
        # Tasks waiting on dependencies: never examined.
        self._held = held
        # Commits a batch and publishes its events.
        self._commit_batch = commit
        self._kick = asyncio.Event()
        # What the next pass examines: the whole queue, or only these new tasks.
        self._rescan = True
        self._fresh: dict[TaskId, None] = {}
        self._settled = asyncio.Event()
        self._settled.set()
        self._timer: asyncio.TimerHandle | None = None
        self._failures = 0

    def kick(self) -> None:
        """A pass over the whole queue soon (capacity may have changed).

        With nothing pending there is nothing a pass could place: every task that
        ends would otherwise start an empty pass, which sessions then wait on
        (``settled``) before they send, a round trip's worth of loop turns.
        """
        self._rescan = True
        if self.ledger.pending_count():
            self._kick.set()

    def kick_new(self, task_ids: Iterable[TaskId]) -> None:
        """A pass over only these new tasks: no capacity changed, so nothing
        else pending can have become placeable."""
        self._fresh.update(dict.fromkeys(task_ids))
        self._kick.set()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def wake_at(self, when: float) -> None:
        """A pass at ``when`` (a delayed restart becomes placeable); the earliest asked wins."""
        loop = asyncio.get_running_loop()
        # uvloop's timers count whole milliseconds and may fire a little early: a pass
        # that then found the task not yet due asked again, and (with the fired timer
        # still remembered) nothing ever woke it.
        delay = max(0.0, when - time.time()) + TIMER_SLACK
        if self._timer is not None and self._timer.when() <= loop.time() + delay:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None  # a fired timer no longer stands for a pass to come
        self.kick()

    async def loop(self) -> None:
        """Run passes as they are asked for, until cancelled."""
        while True:
            await self._kick.wait()
            self._kick.clear()
            self._settled.clear()
            try:
                more = await self.place_pending()
                self._failures = 0
            except Exception:
                self._failures += 1
                delay = min(RETRY_MAX, RETRY_FIRST * 2 ** (self._failures - 1))
                log.exception(
                    "placement pass failed; retrying",
                    extra={"failures": self._failures, "retry_in_s": delay},
                )
                self.wake_at(time.time() + delay)
                more = False
            finally:
                self._settled.set()
            if more:
                self._kick.set()
                await asyncio.sleep(0)

    async def settled(self) -> None:
        """Return when no placement pass is running.

        Sessions wait for this before flushing, so one pass's placements on a
        node leave in one ``Assign`` message instead of one per commit chunk.
        """
        await self._settled.wait()

    async def place_pending(self) -> bool:
        """One placement pass; True when pending work is left for another pass.

        The pass is planned and applied a ``CHUNK`` of tasks at a time, each
        chunk committed and the event loop yielded, so a long queue never
        blocks the manager for long. It examines the whole queue after a
        ``kick``, else only the tasks submitted since the last pass.
        """
        now = time.time()
        held = self._held
        rescan, self._rescan = self._rescan, False
        fresh, self._fresh = self._fresh, {}
        try:
            return await self._pass(self.ledger.pending() if rescan else fresh, held, now)
        except BaseException:
            self._rescan = True  # the tasks this pass did not get to: all of them next time
            raise

    async def _pass(
        self, source: Iterable[TaskId], held: Callable[[TaskId], bool], now: float
    ) -> bool:
        queue = [task_id for task_id in source if not held(task_id)]
        unplaceable = placing.Unplaceable()
        placed = 0
        for start in range(0, len(queue), CHUNK):
            chunk = queue[start : start + CHUNK]
            result = placing.plan_placements(
                self.ledger,
                self.scheduler,
                chunk,
                now=now,
                budget=PASS_LIMIT - placed,
                unplaceable=unplaceable,
            )
            batch = Batch()
            self.applier.apply(result.plan, batch, now)
            placed += result.placed
            if batch:
                await self._commit_batch(batch)
            else:
                await asyncio.sleep(0)  # an empty commit would not yield the loop
            if result.exhausted:
                self._rescan = True  # the rest of the queue waits for the next pass
                return True
        return False
