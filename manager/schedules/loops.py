"""The schedules as the manager runs them: one loop per running schedule.

``ScheduleLoops`` is the domain core behind the servicer (and the only writer
of the store, which it awaits: every store call runs on the store's thread,
see ``manager.schedules.storing``). Each running schedule has one asyncio loop that asks
``timing.plan`` what is due, records the slot before acting on it (so a
restart never fires it twice), applies the concurrency policy and launches the
run as its own task; runs outlive the loop that launched them, so a loop that
finishes its window leaves its last run to complete. Operations on one schedule
hold its lock, so a start racing a stop ends in one of the two states, never
with two loops. A run record that cannot be written is logged and written
again with backoff (a run left "running" in the store would stay so forever).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any

from corral.errors import Conflict, FailedPrecondition, NotFound
from corral.schedule_validation import validate_schedule
from corral.schedules import (
    ConcurrencyPolicy,
    IntervalTrigger,
    Run,
    RunOutcome,
    Schedule,
    ScheduleSpec,
    ScheduleState,
    Timing,
)
from manager.control import TaskControl
from manager.schedules import runs
from manager.schedules.storing import ScheduleStoreThread
from manager.schedules.timing import Clock, begin, first_in_window, next_slot, plan

log = logging.getLogger(__name__)

# Pause before a loop retries after an unexpected error (a store or core failure).
RETRY_AFTER = 5.0
# A failed run record is written again after this, doubling up to RECORD_RETRY_MAX.
RECORD_RETRY_FIRST = 0.5
RECORD_RETRY_MAX = 30.0


def _after_run(spec: ScheduleSpec) -> bool:
    return isinstance(spec.trigger, IntervalTrigger) and spec.trigger.after_run


def _first_firing(spec: ScheduleSpec, timing: Timing, now: float) -> float | None:
    if _after_run(spec):
        return first_in_window(spec, now)
    return next_slot(spec, timing, now)


class ScheduleLoops:
    def __init__(self, tasks: TaskControl, store: ScheduleStoreThread, clock: Clock) -> None:
        self._tasks = tasks
        self._store = store
        self._clock = clock
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._runs: dict[str, dict[str, asyncio.Task[Run]]] = defaultdict(dict)
        self._next: dict[str, float | None] = {}
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._closing = False
        # Writes of failed runs' records being retried (see _record_failed).
        self._retries: set[asyncio.Task[None]] = set()

    # -- definitions ---------------------------------------------------------------

    async def create(self, spec: ScheduleSpec) -> Schedule:
        validate_schedule(spec)
        schedule = Schedule(spec=spec, created_at=self._clock.now())
        await self._store.create(schedule)
        return await self.get(spec.name)

    async def define(self, spec: ScheduleSpec) -> Schedule:
        """Create or redefine (keeping status and timing): the start-up default schedule."""
        validate_schedule(spec)
        try:
            await self._store.get(spec.name)
        except NotFound:
            return await self.create(spec)
        await self._store.replace_spec(spec)
        return await self.get(spec.name)

    async def get(self, name: str) -> Schedule:
        return self._shown(await self._store.get(name))

    def _shown(self, schedule: Schedule) -> Schedule:
        """The stored schedule with what only the loops know: next run, runs in progress."""
        name = schedule.name
        running = schedule.status.state is ScheduleState.RUNNING
        status = replace(
            schedule.status,
            next_run_at=self._next.get(name) if running else None,
            active_runs=len(self._runs.get(name, {})),
        )
        return replace(schedule, status=status)

    async def all(self) -> list[Schedule]:
        return [await self.get(name) for name in await self._store.names()]

    async def delete(self, name: str) -> None:
        async with self._locks[name]:
            await self._store.get(name)
            await self._halt(name)
            await self._store.delete(name)

    # -- the loop's state ---------------------------------------------------------------

    async def start(self, name: str) -> Schedule:
        async with self._locks[name]:
            schedule = await self._store.get(name)
            if schedule.status.state is ScheduleState.RUNNING:
                raise FailedPrecondition(f"schedule {name!r} is already running")
            now = self._clock.now()
            timing = begin(schedule.spec, now)
            await self._store.save_state(name, ScheduleState.RUNNING, timing)
            # Known now, so the reply names it rather than racing the loop's first tick.
            self._next[name] = _first_firing(schedule.spec, timing, now)
            self._spawn_loop(name, resumed=False)
        return await self.get(name)

    async def stop(self, name: str) -> Schedule:
        """Stop the loop and cancel the runs in progress."""
        async with self._locks[name]:
            schedule = await self._store.get(name)
            if schedule.status.state is not ScheduleState.RUNNING:
                raise FailedPrecondition(
                    f"schedule {name!r} is not running (it is {schedule.status.state.value})"
                )
            await self._halt(name)
            latest = await self._store.get(name)
            await self._store.save_state(name, ScheduleState.STOPPED, latest.timing)
        return await self.get(name)

    async def run_once(self, name: str) -> Run:
        """Run the action now, outside the loop, and return the finished run."""
        async with self._locks[name]:
            schedule = await self._store.get(name)
            if schedule.status.state is ScheduleState.RUNNING:
                raise Conflict(f"schedule {name!r} is running: stop it to run it once")
            now = self._clock.now()
            job = await self._launch(schedule.spec, now, "manual")
        # Shielded: a client that hangs up does not cancel the run it asked for.
        return await asyncio.shield(job)

    async def runs(self, name: str) -> list[Run]:
        await self._store.get(name)
        return await self._store.runs(name)

    async def get_run(self, name: str, run_id: str) -> Run:
        return await self._store.get_run(name, run_id)

    # -- lifecycle ---------------------------------------------------------------------

    async def resume(self) -> None:
        """After a (re)start: finish collecting unfinished runs and restart running loops."""
        for run in await self._store.unfinished_runs():
            try:
                spec = (await self._store.get(run.schedule)).spec
            except NotFound:
                continue
            work = runs.resume(
                self._tasks,
                run,
                save=self._saver(spec),
                now=self._clock.now,
                abandoned=self._abandoned,
            )
            self._track(spec, run, work)
        for name in await self._store.names():
            if (await self._store.get(name)).status.state is ScheduleState.RUNNING:
                self._spawn_loop(name, resumed=True)

    async def close(self) -> None:
        """Stop loops and stop waiting for runs; both stay recorded for the next start."""
        self._closing = True
        jobs = [
            *self._loops.values(),
            *(t for d in self._runs.values() for t in d.values()),
            *self._retries,
        ]
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    # -- internals -----------------------------------------------------------------------

    async def _halt(self, name: str) -> None:
        loop = self._loops.pop(name, None)
        active = list(self._runs.get(name, {}).values())
        for job in [*([loop] if loop else []), *active]:
            job.cancel()
        await asyncio.gather(*([loop] if loop else []), *active, return_exceptions=True)
        self._next.pop(name, None)

    def _spawn_loop(self, name: str, *, resumed: bool) -> None:
        loop = asyncio.create_task(self._loop(name, resumed=resumed), name=f"schedule-{name}")
        self._loops[name] = loop
        loop.add_done_callback(
            lambda t: self._loops.pop(name, None) if self._loops.get(name) is t else None
        )

    async def _loop(self, name: str, *, resumed: bool) -> None:
        session = self._clock.now()
        while True:
            try:
                wake = await self._tick(name, resumed=resumed, session=session)
            except NotFound:
                return
            except Exception:
                log.exception("schedule %s: loop step failed; retrying", name)
                wake = self._clock.now() + RETRY_AFTER
            if isinstance(wake, asyncio.Task):
                await self._after_run(name, wake)
                continue
            if wake is None:
                return
            await self._clock.sleep_until(wake)

    async def _after_run(self, name: str, job: asyncio.Task[Run]) -> None:
        """Wait for the run to end, then record when the next may start (interval after it)."""
        await asyncio.wait([job])
        schedule = await self._store.get(name)
        trigger = schedule.spec.trigger
        assert isinstance(trigger, IntervalTrigger)
        ready = self._clock.now() + trigger.seconds
        timing = replace(schedule.timing, started_at=ready)
        await self._store.save_state(name, ScheduleState.RUNNING, timing)
        self._next[name] = plan(schedule.spec, timing, self._clock.now()).next_at

    async def _tick(
        self, name: str, *, resumed: bool, session: float
    ) -> float | asyncio.Task[Run] | None:
        """Handle what is due now; return when to look again, None when the loop is done.

        An ``after_run`` interval returns the run it launched: the loop waits for its end.
        """
        schedule = await self._store.get(name)
        spec, timing = schedule.spec, schedule.timing
        now = self._clock.now()
        step = plan(spec, timing, now)
        if step.due is not None:
            timing = replace(timing, last_scheduled_at=step.due)
            await self._store.save_state(name, ScheduleState.RUNNING, timing)
            if step.late:
                log.warning("schedule %s: skipped the %.0f slot, past its deadline", name, step.due)
            else:
                trigger = "catch-up" if resumed and step.due < session else "schedule"
                job = await self._fire(spec, step.due, trigger)
                if job is not None and _after_run(spec):
                    self._next.pop(name, None)
                    return job
        if step.finished:
            log.info("schedule %s finished its window", name)
            await self._store.save_state(name, ScheduleState.IDLE, timing)
            self._next.pop(name, None)
            return None
        self._next[name] = step.next_at
        # A trigger that never meets its window has nothing to wait for but a stop.
        return step.wake_at if step.wake_at is not None else float("inf")

    async def _fire(
        self, spec: ScheduleSpec, slot: float, trigger: str
    ) -> asyncio.Task[Run] | None:
        active = self._runs.get(spec.name, {})
        if active and spec.concurrency_policy is ConcurrencyPolicy.FORBID:
            log.info("schedule %s: skipped a firing, a run is unfinished (forbid)", spec.name)
            return None
        if active and spec.concurrency_policy is ConcurrencyPolicy.REPLACE:
            for job in active.values():
                job.cancel()
        return await self._launch(spec, slot, trigger)

    async def _launch(self, spec: ScheduleSpec, slot: float, trigger: str) -> asyncio.Task[Run]:
        run = Run(
            id=uuid.uuid4().hex[:12],
            schedule=spec.name,
            trigger=trigger,
            scheduled_at=slot,
            started_at=self._clock.now(),
        )
        await self._store.put_run(run, keep=spec.history_limit)
        work = runs.execute(
            self._tasks,
            spec,
            run,
            save=self._saver(spec),
            now=self._clock.now,
            abandoned=self._abandoned,
        )
        return self._track(spec, run, work)

    def _track(
        self, spec: ScheduleSpec, run: Run, work: Coroutine[Any, Any, Run]
    ) -> asyncio.Task[Run]:
        job: asyncio.Task[Run] = asyncio.create_task(work, name=f"run-{run.id}")
        self._runs[spec.name][run.id] = job

        def done(finished: asyncio.Task[Run]) -> None:
            self._runs[spec.name].pop(run.id, None)
            if not self._runs[spec.name]:
                del self._runs[spec.name]
            if not finished.cancelled() and (err := finished.exception()) is not None:
                # A bug or a core failure: record the run as failed rather than running forever.
                log.error("schedule %s: run %s failed: %r", spec.name, run.id, err)
                failed = replace(run, outcome=RunOutcome.FAILED, finished_at=self._clock.now())
                self._record_failed(spec, failed)

        job.add_done_callback(done)
        return job

    def _record_failed(self, spec: ScheduleSpec, failed: Run) -> None:
        """Write a failed run's record, again and again with backoff until the store takes it."""

        async def write() -> None:
            delay = RECORD_RETRY_FIRST
            while True:
                try:
                    await self._store.put_run(failed, keep=spec.history_limit)
                    return
                except Exception:
                    log.exception(
                        "schedule %s: recording run %s as failed did not work; retrying in %gs",
                        spec.name,
                        failed.id,
                        delay,
                    )
                await asyncio.sleep(delay)
                delay = min(RECORD_RETRY_MAX, delay * 2)

        retry = asyncio.create_task(write(), name=f"record-{failed.id}")
        self._retries.add(retry)
        retry.add_done_callback(self._retries.discard)

    def _saver(self, spec: ScheduleSpec) -> Callable[[Run], Awaitable[None]]:
        return lambda run: self._store.put_run(run, keep=spec.history_limit)

    def _abandoned(self) -> bool:
        return self._closing
