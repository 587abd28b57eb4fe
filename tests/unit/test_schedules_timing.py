"""Pure timing: slots, windows, deadlines and catch-up, with fixed times (no clock, no sleep)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from corral.schedules import (
    CronTrigger,
    Endpoint,
    HttpAction,
    IntervalTrigger,
    ScheduleSpec,
    Timing,
    Window,
)
from manager.schedules.timing import begin, in_window, plan, window_end

UTC = ZoneInfo("UTC")
ACTION = HttpAction((Endpoint(name="a", url="http://127.0.0.1:1/"),))


def at(hour: int, minute: int = 0, second: int = 0, day: int = 10, tz: ZoneInfo = UTC) -> float:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=tz).timestamp()


def spec(trigger: object, window: Window | None = None, deadline: float = 60.0) -> ScheduleSpec:
    return ScheduleSpec(
        name="s", trigger=trigger, action=ACTION, window=window, starting_deadline=deadline
    )  # type: ignore[arg-type]


def test_an_interval_fires_at_start_then_every_interval() -> None:
    s = spec(IntervalTrigger(300))
    timing = begin(s, at(10))
    first = plan(s, timing, at(10))
    assert first.due == at(10) and not first.late and first.next_at == at(10, 5)
    handled = Timing(timing.started_at, None, first.due)
    assert plan(s, handled, at(10, 2)).due is None
    second = plan(s, handled, at(10, 5, 1))
    assert second.due == at(10, 5) and second.next_at == at(10, 10)


def test_cron_slots_follow_the_time_zone() -> None:
    madrid = ZoneInfo("Europe/Madrid")
    s = spec(CronTrigger("0 9 * * *", "Europe/Madrid"))
    step = plan(s, begin(s, at(0)), at(0))
    assert step.due is None
    assert step.next_at == at(9, tz=madrid)  # 08:00 UTC in March (CET)


def test_the_window_bounds_firings_and_the_loop_goes_on_the_next_day() -> None:
    s = spec(IntervalTrigger(3600), Window(8, 18))
    timing = begin(s, at(6, 30))  # started before the window
    assert timing.run_until is None
    step = plan(s, timing, at(6, 30))
    assert step.due is None  # 06:30 is outside the window
    assert step.next_at == at(8, 30) and not step.finished
    # Late in the window: the last slot is 17:30, the next one is tomorrow's first.
    last = plan(s, Timing(timing.started_at, None, at(16, 30)), at(17, 30))
    assert last.due == at(17, 30) and last.next_at == at(8, 30, day=11)
    assert not last.finished and last.wake_at == at(8, 30, day=11)


def test_a_loop_started_after_the_window_waits_for_tomorrow() -> None:
    s = spec(CronTrigger("*/10 * * * *"), Window(8, 18))
    timing = begin(s, at(19))
    assert timing.run_until is None
    step = plan(s, timing, at(19))
    assert step.due is None and step.next_at == at(8, 0, day=11)
    assert not in_window(s, at(19)) and in_window(s, at(8)) and not in_window(s, at(18))


def test_a_timed_window_ends_inclusive_to_the_second() -> None:
    s = spec(IntervalTrigger(60, after_run=True), Window(start_time=5 * 3600, end_time=18 * 3600))
    assert not in_window(s, at(4, 59, 59)) and in_window(s, at(5))
    assert in_window(s, at(18)) and in_window(s, at(18) + 0.5) and not in_window(s, at(18, 0, 1))
    whole = spec(IntervalTrigger(60), Window(start_time=0, end_time=86399))
    assert in_window(whole, at(23, 59, 59) + 0.9) and in_window(whole, at(0, day=11))


def test_after_run_fires_now_inside_the_window_else_at_its_next_start() -> None:
    s = spec(IntervalTrigger(1200, after_run=True), Window(start_time=5 * 3600, end_time=18 * 3600))
    inside = plan(s, begin(s, at(9, 7)), at(9, 7))
    assert inside.due == at(9, 7) and inside.next_at is None and inside.wake_at is None
    # The loop records the run's end + interval as the earliest next start.
    waiting = plan(s, Timing(at(9, 30), None, at(9, 7)), at(9, 8))
    assert waiting.due is None and waiting.wake_at == at(9, 30)
    # Past the end (18:00:00 inclusive): tomorrow at 05:00.
    evening = plan(s, Timing(at(18, 0, 1), None, at(17, 40)), at(18, 0, 1))
    assert evening.due is None and evening.next_at == at(5, day=11)
    early = plan(s, begin(s, at(3)), at(3))
    assert early.due is None and early.next_at == at(5)
    # A firing whose end was never recorded (a restart) counts from the firing.
    restarted = plan(s, Timing(at(9, 7), None, at(9, 7)), at(9, 10))
    assert restarted.due is None and restarted.next_at == at(9, 27)


def test_end_hour_24_is_midnight() -> None:
    s = spec(IntervalTrigger(60), Window(22, 24))
    assert window_end(s, at(23)) == at(0, day=11)


def test_a_missed_slot_inside_the_deadline_is_due_once() -> None:
    s = spec(IntervalTrigger(60), deadline=60)
    timing = Timing(started_at=at(10), last_scheduled_at=at(10, 0))
    # Down from 10:00:30 to 10:05:30: five slots missed, only the latest is due.
    step = plan(s, timing, at(10, 5, 30))
    assert step.due == at(10, 5) and not step.late
    # Once recorded it is never due again.
    assert plan(s, Timing(at(10), None, at(10, 5)), at(10, 5, 30)).due is None


def test_a_missed_slot_past_the_deadline_is_skipped() -> None:
    s = spec(IntervalTrigger(600), deadline=30)
    step = plan(s, Timing(started_at=at(10), last_scheduled_at=at(10)), at(10, 11))
    assert step.due == at(10, 10) and step.late


def test_a_cron_that_never_meets_its_window_does_not_spin() -> None:
    s = spec(CronTrigger("0 3 * * *"), Window(8, 18))
    step = plan(s, begin(s, at(9)), at(9))
    assert step.due is None and step.next_at is None and step.wake_at is None
