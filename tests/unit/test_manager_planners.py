"""The planners with worked numbers: placement, Hello reconciliation, updates, endings."""

from __future__ import annotations

import pytest

from corral.model import (
    NodeStatus,
    Resources,
    RestartMode,
    RestartPolicy,
    TaskId,
    TaskSpec,
    TaskState,
    TaskUpdate,
)
from manager import placing, reconciling, states
from manager.plans import Change, EndAttempt, Place, Plan, Resend, StopStale, Unplaced
from tests.unit.ledger_sim import Sim

GIB = 1 << 30


def spec(name: str, cpu: float = 1.0, memory: int = 0, **kw: object) -> TaskSpec:
    return TaskSpec(name=name, command=("true",), resources=Resources(cpu, memory), **kw)  # type: ignore[arg-type]


def test_binpack_places_by_the_numbers_and_changes_nothing_until_applied() -> None:
    sim = Sim("binpack")
    sim.connect("a", Resources(4, 4 * GIB))
    sim.connect("b", Resources(2, 8 * GIB))
    ids = [sim.submit(spec(f"t{i}", cpu=1, memory=GIB)) for i in range(3)]
    big = sim.submit(spec("big", cpu=4))
    result = placing.plan_placements(
        sim.ledger, sim.scheduler, list(sim.ledger.pending()), now=sim.now, budget=100
    )
    # t0: a scores (1/4 + 1/4)/2 = 0.25, b (1/2 + 1/8)/2 = 0.3125 -> b.
    # t1: a 0.25, b (2/2 + 2/8)/2 = 0.625 -> b.  t2: b has no cpu left -> a.
    # big: a has 3 cores free, b none.
    assert result.plan.steps == [
        Place(ids[0], sim.record("b").id, 1, "placed on b"),
        Place(ids[1], sim.record("b").id, 1, "placed on b"),
        Place(ids[2], sim.record("a").id, 1, "placed on a"),
        Unplaced(big, "no node fits: 2 lack cpu", True),
    ]
    assert (result.placed, result.exhausted) == (3, False)
    # Planning allocated on the planner's copies only.
    assert sim.record("a").allocated == Resources() == sim.record("b").allocated
    assert sim.ledger.check() == []

    sim.apply(result.plan)
    assert sim.record("b").allocated == Resources(2, 2 * GIB)
    assert sim.record("a").allocated == Resources(1, GIB)
    assert sim.outboxes["b"].assigned == [(ids[0], 1), (ids[1], 1)]
    placed = sim.task(ids[0]).status
    assert (placed.state, placed.node_id, placed.generation, placed.attempts) == (
        TaskState.SCHEDULED,
        "b",
        1,
        1,
    )
    assert list(sim.ledger.pending()) == [big]
    assert sim.ledger.check() == []


def test_a_refined_reason_is_kept_in_memory_and_the_budget_bounds_a_pass() -> None:
    sim = Sim()
    sim.connect("a", Resources(1))
    big = sim.submit(spec("big", cpu=2))
    sim.place()
    assert sim.task(big).status.message == "no node fits: 1 lacks cpu"
    events = len(sim.batch.events)
    sim.connect("b", Resources(1))
    result = sim.place()
    assert result.plan.steps == [Unplaced(big, "no node fits: 2 lack cpu", False)]
    # The refined count is no event (and no row) of its own.
    assert len(sim.batch.events) == events
    assert sim.task(big).status.message == "no node fits: 2 lack cpu"
    assert sim.place().plan.steps == []  # the same reason again: nothing to do

    small = [sim.submit(spec(f"s{i}", cpu=0.5)) for i in range(4)]
    result = sim.place(budget=3)
    assert (result.placed, result.exhausted) == (3, True)
    assert list(sim.ledger.pending()) == [big, small[3]]


def test_restart_backoff_by_the_numbers() -> None:
    sim = Sim()
    sim.connect("a", Resources(2))
    policy = RestartPolicy(mode=RestartMode.ON_FAILURE, max_attempts=3, backoff=2.0)
    task = sim.submit(spec("flaky", restart_policy=policy))
    sim.place()
    sim.update("a", TaskUpdate(task, 1, TaskState.FAILED, exit_code=3))
    status = sim.task(task).status
    assert status.message == "restarting after failure (exit code 3) in 2s: attempt 2 of 3"
    assert (status.state, status.restart_count, status.next_attempt_at) == (
        TaskState.PENDING,
        1,
        sim.now + 2,
    )
    assert sim.place().plan.wake_at == sim.now + 2  # not before its backoff
    assert sim.wakes[-1] == sim.now + 2
    sim.now += 2
    assert sim.place().placed == 1
    sim.update("a", TaskUpdate(task, 2, TaskState.FAILED, exit_code=3))
    message = sim.task(task).status.message
    assert message == "restarting after failure (exit code 3) in 4s: attempt 3 of 3"
    sim.now += 4
    sim.place()
    sim.update("a", TaskUpdate(task, 3, TaskState.FAILED, exit_code=3))
    status = sim.task(task).status
    assert (status.state, status.message) == (
        TaskState.FAILED,
        "exit code 3; gave up after 3 attempts",
    )
    assert sim.record("a").allocated == Resources()
    assert [sim.batch.attempts[(task, g)].state for g in (1, 2, 3)] == [TaskState.FAILED] * 3


def test_hello_keeps_resends_loses_and_stops() -> None:
    sim = Sim()
    sim.connect("n1", Resources(4))
    a, b, c = (sim.submit(spec(name)) for name in "abc")
    sim.place()
    for task in (b, c):
        sim.update("n1", TaskUpdate(task, 1, TaskState.RUNNING))
    ghost = TaskId("ghost")
    reported = [TaskUpdate(c, 1, TaskState.RUNNING), TaskUpdate(ghost, 5, TaskState.RUNNING)]
    found = reconciling.plan_hello(sim.ledger, sim.record("n1").id, reported, now=sim.now)
    # a was only SCHEDULED: sent again. b had run and is not reported: lost, then placed again.
    why = "node n1 no longer runs it"
    assert found.plan.steps[0] == Resend(a)
    assert found.plan.steps[1] == EndAttempt(b, TaskState.LOST, why, False)
    assert [s.fields["state"] for s in found.plan.steps[2:] if isinstance(s, Change)] == [
        TaskState.LOST,
        TaskState.PENDING,
    ]
    assert (found.keep, found.stop, found.current) == ([(c, 1)], [(ghost, 5)], reported[:1])

    sim.connect("n1", Resources(4), reported)
    assert sim.outboxes["n1"].assigned == [(a, 1)]
    status = sim.task(b).status
    assert (status.state, status.restart_count) == (TaskState.PENDING, 1)
    assert status.message == f"{why}; rescheduling: attempt 2"
    assert sim.batch.attempts[(b, 1)].state is TaskState.LOST
    assert sim.state(c) is TaskState.RUNNING
    assert sim.ledger.check() == []


def test_updates_are_fenced_by_generation_and_node() -> None:
    sim = Sim()
    sim.connect("n1", Resources(1))
    sim.connect("n2", Resources(1))
    task = sim.submit(spec("web"))
    sim.place()
    node = sim.task(task).status.node_id
    other = "n2" if node == "n1" else "n1"
    stale = TaskUpdate(task, 0, TaskState.RUNNING)
    assert sim.update(node, stale).steps == [
        StopStale(sim.record(node).id, task, 0, reconciling.STALE)
    ]
    assert sim.outboxes[node].stopped == [(task, 0, reconciling.STALE)]
    # The right generation from the wrong node is fenced too; an exit of it changes nothing.
    assert sim.update(other, TaskUpdate(task, 1, TaskState.COMPLETED)).steps == []
    assert sim.state(task) is TaskState.SCHEDULED
    sim.update(node, TaskUpdate(task, 1, TaskState.STOPPED))
    status = sim.task(task).status
    assert (status.state, status.message) == (TaskState.FAILED, "stopped on the node")


def test_node_down_drain_and_stop() -> None:
    sim = Sim()
    sim.connect("n1", Resources(4))
    once = RestartPolicy(max_attempts=1)
    keep, give_up, stop_me = (
        sim.submit(spec("keep")),
        sim.submit(spec("give-up", restart_policy=once)),
        sim.submit(spec("stop-me")),
    )
    sim.place()
    sim.stop(stop_me)
    assert sim.state(stop_me) is TaskState.STOPPED
    assert sim.outboxes["n1"].stopped == [(stop_me, 1, "stopped by user")]
    sim.node_down("n1")
    assert sim.outboxes["n1"].closed == "gone"
    assert sim.record("n1").status is NodeStatus.DOWN and not sim.record("n1").schedulable
    assert sim.state(keep) is TaskState.PENDING
    assert sim.task(give_up).status.message == "gone; gave up after 1 attempts"
    assert sim.state(give_up) is TaskState.FAILED
    assert sim.record("n1").allocated == Resources()

    sim.connect("n2", Resources(4))
    sim.place()
    sim.drain("n2")
    assert sim.outboxes["n2"].stopped == [(keep, 2, "moved off draining node n2")]
    status = sim.task(keep).status
    assert (status.state, status.restart_count) == (TaskState.PENDING, 1)
    assert sim.batch.events[-1].kind == "node.draining"
    assert sim.place().plan.steps == [Unplaced(keep, "no node fits: 2 not ready", True)]
    assert sim.ledger.check() == []


def test_a_refused_move_raises_before_anything_is_applied() -> None:
    sim = Sim()
    sim.connect("n1", Resources(1))
    task = sim.submit(spec("once"))
    sim.place()
    sim.update("n1", TaskUpdate(task, 1, TaskState.COMPLETED, exit_code=0))
    done = sim.task(task)
    plan = Plan()
    with pytest.raises(states.IllegalTransition, match=task):
        plan.change(done, state=TaskState.PENDING)
    assert plan.steps == []
    # The ledger refuses too, if a plan ever slipped one through.
    entry = sim.ledger.entry(task)
    with pytest.raises(states.IllegalTransition):
        sim.applier.apply(Plan([Change(task, {"state": TaskState.RUNNING})]), sim.batch, 0)
    assert entry.state is TaskState.COMPLETED
