"""ScheduleLoops with real local endpoints, in-process http tasks and a hand-moved clock."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from schedules_fakes import Endpoints, FakeTasks
from waiting import eventually

from corral.errors import Conflict, FailedPrecondition, ValidationError
from corral.model import TaskState
from corral.schedules import (
    ConcurrencyPolicy,
    Endpoint,
    HttpAction,
    IntervalTrigger,
    Run,
    RunOutcome,
    ScheduleSpec,
    ScheduleState,
    Window,
)
from manager.schedules.loops import ScheduleLoops
from manager.schedules.runs import RUN_LABEL
from manager.schedules.store import ScheduleStore
from manager.schedules.storing import ScheduleStoreThread
from manager.schedules.timing import ManualClock

T0 = datetime(2026, 3, 10, 6, 30, tzinfo=ZoneInfo("UTC")).timestamp()


@dataclass
class World:
    tasks: FakeTasks
    store: ScheduleStoreThread
    clock: ManualClock
    loops: ScheduleLoops
    ep: Endpoints
    path: Path

    def restart(self, now: float) -> ScheduleLoops:
        """A new manager process on the same schedules.db."""
        self.store = ScheduleStoreThread(ScheduleStore(self.path))
        self.clock = ManualClock(now)
        self.loops = ScheduleLoops(self.tasks, self.store, self.clock)
        return self.loops


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    tasks = FakeTasks()
    store = ScheduleStoreThread(ScheduleStore(tmp_path / "schedules.db"))
    clock = ManualClock(T0)
    async with Endpoints() as ep:
        w = World(
            tasks, store, clock, ScheduleLoops(tasks, store, clock), ep, tmp_path / "schedules.db"
        )
        yield w
        await w.loops.close()
        await w.store.close()
        await tasks.close()


def spec(ep: Endpoints, *names: str, **kw: object) -> ScheduleSpec:
    endpoints = tuple(Endpoint(name=n, url=ep.url(n), timeout=0.5) for n in names)
    fields: dict[str, object] = {
        "name": "s",
        "trigger": IntervalTrigger(60),
        "action": HttpAction(endpoints),
        **kw,
    }
    return ScheduleSpec(**fields)  # type: ignore[arg-type]


async def test_a_run_collects_every_response(world: World, closed_port: int) -> None:
    refused = f"http://127.0.0.1:{closed_port}/x"
    endpoints = (
        Endpoint(name="ok", url=world.ep.url("ok")),
        Endpoint(name="fail", url=world.ep.url("fail")),
        Endpoint(name="hang", url=world.ep.url("hang"), timeout=0.3),
        Endpoint(name="refused", url=refused, timeout=2),
    )
    await world.loops.create(spec(world.ep, action=HttpAction(endpoints)))
    run = await world.loops.run_once("s")
    assert run.outcome is RunOutcome.PARTIALLY_FAILED and run.trigger == "manual"
    by = {r.name: r for r in run.results}
    assert by["ok"].ok and by["ok"].result.status_code == 200
    assert by["ok"].result.body == b"hello from ok" and by["ok"].result.latency_ms > 0
    assert by["ok"].state is TaskState.COMPLETED and by["ok"].task_id
    assert not by["fail"].ok and by["fail"].result.status_code == 500
    assert by["fail"].result.body == b"boom"
    assert by["hang"].result.error == "timed out after 0.3s"
    assert by["refused"].result.status_code == 0 and "ConnectError" in by["refused"].result.error
    # One http task per endpoint, labelled with the run; the run is stored with its results.
    assert len(world.tasks.by_label(RUN_LABEL, run.id)) == 4
    assert all(t.spec.runtime == "http" for t in world.tasks.submitted)
    assert await world.loops.get_run("s", run.id) == run
    assert (await world.loops.get("s")).status.last_outcome is RunOutcome.PARTIALLY_FAILED


async def test_outcomes_succeeded_and_failed(world: World) -> None:
    await world.loops.create(spec(world.ep, "ok", "also-ok"))
    await world.loops.create(spec(world.ep, "fail", name="f"))
    assert (await world.loops.run_once("s")).outcome is RunOutcome.SUCCEEDED
    assert (await world.loops.run_once("f")).outcome is RunOutcome.FAILED


async def test_states_and_their_errors(world: World) -> None:
    s = world.loops
    await s.create(spec(world.ep, "ok"))
    assert (await s.get("s")).status.state is ScheduleState.IDLE
    with pytest.raises(FailedPrecondition):
        await s.stop("s")
    assert (await s.start("s")).status.state is ScheduleState.RUNNING
    with pytest.raises(FailedPrecondition):
        await s.start("s")
    with pytest.raises(Conflict):
        await s.run_once("s")
    await eventually(lambda: s.runs("s"))  # the interval's first slot is the start
    assert (await s.stop("s")).status.state is ScheduleState.STOPPED
    with pytest.raises(FailedPrecondition):
        await s.stop("s")


async def test_invalid_schedules_store_nothing(world: World) -> None:
    with pytest.raises(ValidationError) as err:
        await world.loops.create(spec(world.ep, name="s", action=HttpAction(())))
    assert err.value.field == "schedule.http.endpoints"
    assert await world.loops.all() == []


async def _finished_runs(s: ScheduleLoops) -> int:
    return sum(r.outcome is not RunOutcome.RUNNING for r in await s.runs("s"))


async def _settled(s: ScheduleLoops, runs: int) -> bool:
    """``runs`` runs recorded and none in progress."""
    return len(await s.runs("s")) == runs and (await s.get("s")).status.active_runs == 0


async def _last_outcome_is(s: ScheduleLoops, outcome: RunOutcome) -> bool:
    return (await s.runs("s"))[-1].outcome is outcome


async def _finished_then_asleep(s: ScheduleLoops, runs: int, clock: ManualClock) -> bool:
    return await _finished_runs(s) == runs and bool(clock.sleepers)


async def _runs_then_asleep(s: ScheduleLoops, runs: int, clock: ManualClock) -> bool:
    return len(await s.runs("s")) == runs and bool(clock.sleepers)


async def test_the_window_is_honoured(world: World) -> None:
    s, clock = world.loops, world.clock
    await s.create(spec(world.ep, "ok", trigger=IntervalTrigger(3600), window=Window(8, 10)))
    started = await s.start("s")  # 06:30: before the window
    assert started.status.next_run_at == T0 + 2 * 3600  # the reply already names 08:30
    await eventually(lambda: clock.sleepers)
    assert await s.runs("s") == []
    assert (await s.get("s")).status.next_run_at == T0 + 2 * 3600  # 08:30
    clock.set(T0 + 2 * 3600)
    # Each run must have finished before the clock moves on: the default policy
    # (forbid) rightly skips a firing while a run is unfinished.
    await eventually(lambda: _finished_then_asleep(s, 1, clock))
    clock.set(T0 + 3 * 3600)  # 09:30, the last slot inside [8, 10)
    await eventually(lambda: _finished_then_asleep(s, 2, clock))
    assert (await s.get("s")).status.state is ScheduleState.RUNNING
    # The window is over for today: the loop sleeps until tomorrow's 08:30, still Running.
    assert clock.sleepers == [T0 + 26 * 3600]
    assert (await s.get("s")).status.next_run_at == T0 + 26 * 3600
    clock.set(T0 + 3.5 * 3600)  # 10:00
    assert (await s.get("s")).status.state is ScheduleState.RUNNING
    assert len(await s.runs("s")) == 2
    assert all(r.trigger == "schedule" for r in await s.runs("s"))


async def _second_firing(world: World, policy: ConcurrencyPolicy) -> None:
    s, clock = world.loops, world.clock
    gated = Endpoint(name="gate", url=world.ep.url("gate"), timeout=60)
    await s.create(spec(world.ep, action=HttpAction((gated,)), concurrency_policy=policy))
    await s.start("s")
    await eventually(lambda: world.ep.hits.get("gate") == 1 and clock.sleepers)
    clock.advance(60)
    await eventually(lambda: clock.sleepers == [T0 + 120])


async def test_forbid_skips_a_firing_while_a_run_is_unfinished(world: World) -> None:
    await _second_firing(world, ConcurrencyPolicy.FORBID)
    assert len(await world.loops.runs("s")) == 1 and world.ep.hits["gate"] == 1


async def test_allow_runs_both(world: World) -> None:
    await _second_firing(world, ConcurrencyPolicy.ALLOW)
    await eventually(lambda: world.ep.hits.get("gate") == 2)
    assert (await world.loops.get("s")).status.active_runs == 2
    world.ep.gate.set()
    await eventually(lambda: _settled(world.loops, 2))
    assert [r.outcome for r in await world.loops.runs("s")] == [RunOutcome.SUCCEEDED] * 2


async def test_replace_cancels_the_unfinished_run(world: World) -> None:
    await _second_firing(world, ConcurrencyPolicy.REPLACE)
    await eventually(lambda: world.ep.hits.get("gate") == 2)
    await eventually(lambda: _last_outcome_is(world.loops, RunOutcome.CANCELLED))
    newest, oldest = await world.loops.runs("s")
    assert newest.outcome is RunOutcome.RUNNING
    assert oldest.results[0].state is TaskState.STOPPED
    assert world.tasks.stops == [oldest.results[0].task_id]


async def test_stop_cancels_the_run_in_progress(world: World) -> None:
    s = world.loops
    await s.create(
        spec(world.ep, action=HttpAction((Endpoint(name="g", url=world.ep.url("gate")),)))
    )
    await s.start("s")
    await eventually(lambda: world.ep.hits.get("gate") == 1)
    await s.stop("s")
    (run,) = await s.runs("s")
    assert run.outcome is RunOutcome.CANCELLED and run.results[0].result.error == "cancelled"


async def test_a_missed_firing_runs_once_after_a_restart(world: World) -> None:
    s = world.loops
    await s.create(spec(world.ep, "ok", starting_deadline=60.0))
    await s.start("s")
    await eventually(lambda: _settled(s, 1))
    await s.close()  # the manager goes down for 2.5 intervals
    await world.store.close()

    later = world.restart(T0 + 150)
    await later.resume()
    await eventually(lambda: _runs_then_asleep(later, 2, world.clock))
    catch_up = (await later.runs("s"))[0]
    assert catch_up.trigger == "catch-up" and catch_up.scheduled_at == T0 + 120
    await eventually(lambda: _settled(later, 2))
    await later.close()
    await world.store.close()

    # Another restart at the same moment: the slot was recorded before it ran, so never twice.
    again = world.restart(T0 + 150)
    await again.resume()
    await eventually(lambda: world.clock.sleepers == [T0 + 180])
    assert len(await again.runs("s")) == 2
    assert world.ep.hits["ok"] == 2


async def test_a_missed_firing_past_the_deadline_is_skipped(world: World) -> None:
    s = world.loops
    await s.create(spec(world.ep, "ok", starting_deadline=10.0))
    await s.start("s")
    await eventually(lambda: _settled(s, 1))
    await s.close()
    await world.store.close()
    later = world.restart(T0 + 150)  # the 120 s slot is 30 s old, past the 10 s deadline
    await later.resume()
    await eventually(lambda: world.clock.sleepers == [T0 + 180])
    assert len(await later.runs("s")) == 1
    assert (await later.get("s")).status.state is ScheduleState.RUNNING


async def test_history_is_bounded(world: World) -> None:
    await world.loops.create(spec(world.ep, "ok", history_limit=3))
    ids = [(await world.loops.run_once("s")).id for _ in range(5)]
    assert [r.id for r in await world.loops.runs("s")] == ids[::-1][:3]


async def test_delete_removes_the_schedule_and_its_runs(world: World) -> None:
    await world.loops.create(spec(world.ep, "ok"))
    await world.loops.run_once("s")
    await world.loops.delete("s")
    assert await world.loops.all() == []
    assert await world.store.runs("s") == []


async def test_a_task_nobody_runs_is_given_up(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from manager.schedules import runs

    monkeypatch.setattr(runs, "PLACEMENT_SLACK", 0.2)
    world.tasks.hold = True
    await world.loops.create(spec(world.ep, "ok"))
    run = await world.loops.run_once("s")
    assert run.outcome is RunOutcome.FAILED
    assert "does a worker offer the http runtime?" in run.results[0].result.error


async def test_a_run_in_progress_at_shutdown_is_finished_after_the_restart(world: World) -> None:
    s = world.loops
    await s.create(
        spec(world.ep, action=HttpAction((Endpoint(name="g", url=world.ep.url("gate")),)))
    )
    await s.start("s")
    await eventually(lambda: world.ep.hits.get("gate") == 1)
    await s.close()  # shutdown: the run is abandoned, not cancelled
    await world.store.close()
    later = world.restart(T0 + 1)
    (left,) = await later.runs("s")
    assert left.outcome is RunOutcome.RUNNING and world.tasks.stops == []
    await later.resume()
    world.ep.gate.set()
    await eventually(lambda: _last_outcome_is(later, RunOutcome.SUCCEEDED))
    assert (await later.runs("s"))[-1].results[0].result.body == b"opened"


async def test_a_locked_schedules_db_does_not_block_the_event_loop(world: World) -> None:
    blocker = sqlite3.connect(world.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        creating = asyncio.create_task(world.loops.create(spec(world.ep, "ok")))
        for _ in range(5):
            await asyncio.sleep(0)  # turns of the loop: it runs on while the store's thread waits
        assert not creating.done()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    created = await creating
    assert created.name == "s" and [s.name for s in await world.loops.all()] == ["s"]


async def test_a_failed_run_is_recorded_even_if_the_store_refuses_at_first(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from manager.schedules import loops, runs

    async def broken(*args: object, **kw: object) -> None:
        raise RuntimeError("a bug in the run")

    monkeypatch.setattr(runs, "execute", broken)
    monkeypatch.setattr(loops, "RECORD_RETRY_FIRST", 0.01)
    await world.loops.create(spec(world.ep, "ok"))
    store = world.store.store
    real, refused = store.put_run, []

    def flaky(run: Run, *, keep: int) -> None:
        if run.outcome is RunOutcome.FAILED and len(refused) < 2:
            refused.append(run.id)
            raise sqlite3.OperationalError("database is locked")
        real(run, keep=keep)

    monkeypatch.setattr(store, "put_run", flaky)
    with (
        caplog.at_level(logging.ERROR, logger="manager.schedules.loops"),
        pytest.raises(RuntimeError, match="a bug in the run"),
    ):
        await world.loops.run_once("s")
    await eventually(lambda: _last_outcome_is(world.loops, RunOutcome.FAILED))
    assert len(refused) == 2
    assert "did not work; retrying" in caplog.text
