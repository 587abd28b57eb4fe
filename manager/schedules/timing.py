"""When a schedule fires: pure functions over a spec, its persisted timing and "now".

The loop asks ``plan`` one question each time it wakes: which slot is due now
(the latest firing in ``(last handled, now]``), is it still inside the starting
deadline, when is the next one, and has the loop finished its window. Because
the answer depends only on the persisted ``Timing`` and the clock, a manager
that was down answers it the same way after a restart: the latest missed slot
runs once if it is recent enough, older ones are skipped, and a slot that was
handled (``last_scheduled_at`` is written before a run starts) is never
handled again.

Windows are hours ``[start_hour, end_hour)`` of each local day, or times of
day ``[start_time, end_time]`` (end inclusive to the second). A running loop
fires inside its window every day until it is stopped, as the original cron
orchestrator's loop does; ``run_until`` (a loop that ends by itself) is kept
for timings persisted by older versions. An interval that counts from the
end of each run (``after_run``) fires at once when started inside the window,
else at the window's next start, then ``interval`` after each run ends: the
loop records that time in ``started_at`` when the run is over.
The clock is a protocol so tests move time by hand.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from croniter import croniter

from corral.schedule_validation import zone
from corral.schedules import CronTrigger, IntervalTrigger, ScheduleSpec, Timing, Window

# Bounds the walks over cron slots and windows; a walk longer than this means
# the trigger never meets the window (e.g. "0 3 * * *" with window 8-18).
MAX_STEPS = 400
EPSILON = 1e-3


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep_until(self, when: float) -> None: ...


class SystemClock:
    # Long sleeps are cut in slices so a wall-clock jump is noticed within a minute.
    SLICE = 60.0

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, when: float) -> None:
        # A sleep in slices, not an event: nothing but time can end it.
        while (left := when - time.time()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(left, self.SLICE))


class ManualClock:
    """A clock that moves only when told to; sleepers wake when it passes their time."""

    def __init__(self, start: float) -> None:
        self._now = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    @property
    def sleepers(self) -> list[float]:
        return sorted(t for t, fut in self._sleepers if not fut.done())

    async def sleep_until(self, when: float) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((when, fut))
        await fut

    def set(self, now: float) -> None:
        self._now = now
        keep = []
        for when, fut in self._sleepers:
            if fut.done():
                continue
            if when <= now:
                fut.set_result(None)
            else:
                keep.append((when, fut))
        self._sleepers = keep

    def advance(self, seconds: float) -> None:
        self.set(self._now + seconds)


# -- windows -------------------------------------------------------------------


def _at_second(day: date, second: int, tz: ZoneInfo) -> float:
    # An end of 24:00 is midnight of the next day; wall-clock fields, so DST days keep their hours.
    base = datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(days=second // 86400)
    second %= 86400
    return base.replace(
        hour=second // 3600, minute=second // 60 % 60, second=second % 60
    ).timestamp()


def _bounds(window: Window, tz: ZoneInfo, day: date) -> tuple[float, float]:
    return _at_second(day, window.start_second, tz), _at_second(day, window.end_second, tz)


def _today(t: float, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(t, tz).date()


def in_window(spec: ScheduleSpec, t: float) -> bool:
    if spec.window is None:
        return True
    tz = zone(spec.time_zone)
    start, end = _bounds(spec.window, tz, _today(t, tz))
    return start <= t < end


def window_end(spec: ScheduleSpec, now: float) -> float | None:
    """The end of the window ``now`` is in or before; else of tomorrow's. None without a window."""
    if spec.window is None:
        return None
    tz = zone(spec.time_zone)
    day = _today(now, tz)
    _, end = _bounds(spec.window, tz, day)
    if now < end:
        return end
    return _bounds(spec.window, tz, day + timedelta(days=1))[1]


def _previous_window_end(window: Window, tz: ZoneInfo, t: float) -> float:
    day = _today(t, tz)
    _, end = _bounds(window, tz, day)
    return end if t >= end else _bounds(window, tz, day - timedelta(days=1))[1]


def _next_window_start(window: Window, tz: ZoneInfo, t: float) -> float:
    day = _today(t, tz)
    start, _ = _bounds(window, tz, day)
    return start if t < start else _bounds(window, tz, day + timedelta(days=1))[0]


# -- raw slots of a trigger -------------------------------------------------------


def _slot_at_or_before(spec: ScheduleSpec, anchor: float, t: float) -> float | None:
    trigger = spec.trigger
    if isinstance(trigger, IntervalTrigger):
        if t < anchor:
            return None
        return anchor + math.floor((t - anchor) / trigger.seconds) * trigger.seconds
    assert isinstance(trigger, CronTrigger)
    start = datetime.fromtimestamp(t + EPSILON, zone(trigger.time_zone))
    return float(croniter(trigger.expression, start).get_prev(float))


def _slot_after(spec: ScheduleSpec, anchor: float, t: float) -> float:
    trigger = spec.trigger
    if isinstance(trigger, IntervalTrigger):
        if t < anchor:
            return anchor
        return anchor + (math.floor((t - anchor) / trigger.seconds) + 1) * trigger.seconds
    assert isinstance(trigger, CronTrigger)
    start = datetime.fromtimestamp(t, zone(trigger.time_zone))
    return float(croniter(trigger.expression, start).get_next(float))


# -- slots the loop handles ----------------------------------------------------------


def _lower_bound(timing: Timing, anchor: float) -> float:
    """Slots strictly after this are candidates: after the last handled, from the start on."""
    if timing.last_scheduled_at is not None and timing.last_scheduled_at >= anchor:
        return timing.last_scheduled_at
    return anchor - EPSILON


def latest_slot(spec: ScheduleSpec, timing: Timing, now: float) -> float | None:
    """The latest firing in (last handled, now], inside the window and before run_until."""
    anchor = timing.started_at if timing.started_at is not None else now
    low = _lower_bound(timing, anchor)
    cursor = now if timing.run_until is None else min(now, timing.run_until - EPSILON)
    for _ in range(MAX_STEPS):
        slot = _slot_at_or_before(spec, anchor, cursor)
        if slot is None or slot <= low:
            return None
        if in_window(spec, slot):
            return slot
        assert spec.window is not None
        cursor = _previous_window_end(spec.window, zone(spec.time_zone), slot) - EPSILON
    return None


def next_slot(spec: ScheduleSpec, timing: Timing, now: float) -> float | None:
    """The earliest firing after now, inside the window; None when none comes before run_until."""
    anchor = timing.started_at if timing.started_at is not None else now
    cursor = max(now, _lower_bound(timing, anchor))
    for _ in range(MAX_STEPS):
        slot = _slot_after(spec, anchor, cursor)
        if timing.run_until is not None and slot >= timing.run_until:
            return None
        if in_window(spec, slot):
            return slot
        assert spec.window is not None
        cursor = _next_window_start(spec.window, zone(spec.time_zone), slot) - EPSILON
    return None


@dataclass(frozen=True, slots=True)
class Step:
    # The slot to handle now (record it, then run it unless late); None when nothing is due.
    due: float | None
    # The due slot is older than the starting deadline: record it, do not run it.
    late: bool
    # When the next slot is; None when the loop finishes first (or the trigger never fires).
    next_at: float | None
    # The loop has reached run_until: the schedule goes Idle.
    finished: bool
    # When the loop should look again: the next slot, else the end of its window.
    wake_at: float | None


def first_in_window(spec: ScheduleSpec, t: float) -> float:
    """``t`` when it is inside the window, else the window's next start."""
    if spec.window is None or in_window(spec, t):
        return t
    return _next_window_start(spec.window, zone(spec.time_zone), t)


def after_run_plan(spec: ScheduleSpec, timing: Timing, now: float) -> Step:
    """An ``after_run`` interval: ``started_at`` is the earliest time of the next run."""
    assert isinstance(spec.trigger, IntervalTrigger)
    ready = timing.started_at if timing.started_at is not None else now
    last = timing.last_scheduled_at
    if last is not None and ready <= last:
        # Fired, and the run's end was never recorded (a restart): count from the firing.
        ready = last + spec.trigger.seconds
    slot = first_in_window(spec, ready)
    if slot <= now:
        # Due now; the next run's time is known only when this one ends.
        return Step(due=slot, late=False, next_at=None, finished=False, wake_at=None)
    return Step(due=None, late=False, next_at=slot, finished=False, wake_at=slot)


def plan(spec: ScheduleSpec, timing: Timing, now: float) -> Step:
    if isinstance(spec.trigger, IntervalTrigger) and spec.trigger.after_run:
        return after_run_plan(spec, timing, now)
    due = latest_slot(spec, timing, now)
    late = due is not None and now - due > spec.starting_deadline
    finished = timing.run_until is not None and now >= timing.run_until
    handled = timing if due is None else replace(timing, last_scheduled_at=due)
    next_at = None if finished else next_slot(spec, handled, now)
    wake_at = next_at if next_at is not None or finished else timing.run_until
    return Step(due=due, late=late, next_at=next_at, finished=finished, wake_at=wake_at)


def begin(spec: ScheduleSpec, now: float) -> Timing:
    """The timing of a loop started now: it runs every day until stopped."""
    return Timing(started_at=now, run_until=None, last_scheduled_at=None)
