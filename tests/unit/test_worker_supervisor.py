"""The supervisor over the fake runtime: fencing, stops, deadlines, history, adoption."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from waiting import eventually

from corral.model import FakeSpec, Health, NodeId, TaskId, TaskSpec, TaskState, TaskUpdate
from worker.records import AttemptRecords, node_id
from worker.runtimes.base import Adopted, Assignment, AttemptRef, Exit, Started
from worker.runtimes.fake import FakeRuntime
from worker.supervisor import Supervisor

NODE = NodeId("n1")


def assign(task: str, gen: int = 1, duration: float = 0.0, **kw: Any) -> Assignment:
    spec = TaskSpec(name=task, runtime="fake", fake=FakeSpec(duration=duration), **kw)
    return Assignment(AttemptRef(TaskId(task), gen), spec, NODE)


class Recorder:
    def __init__(self) -> None:
        self.updates: list[TaskUpdate] = []

    def __call__(self, update: TaskUpdate) -> None:
        self.updates.append(update)

    def states(self, task: str, gen: int | None = None) -> list[TaskState]:
        return [
            u.state
            for u in self.updates
            if u.task_id == task and (gen is None or u.generation == gen)
        ]


def supervisor(recorder: Recorder, **kw: Any) -> Supervisor:
    return Supervisor({"fake": FakeRuntime()}, node_id=NODE, emit=recorder, **kw)


async def test_generations_fence_stale_assignments() -> None:
    rec = Recorder()
    sup = supervisor(rec)
    assert sup.apply(assign("t", gen=2, duration=3600))
    assert not sup.apply(assign("t", gen=2))  # re-delivery
    assert not sup.apply(assign("t", gen=1))  # older
    await eventually(lambda: rec.states("t", 2) == [TaskState.RUNNING])
    # A newer generation supersedes the running one: at most one attempt runs.
    assert sup.apply(assign("t", gen=3, duration=3600))
    await eventually(lambda: rec.states("t", 2) == [TaskState.RUNNING, TaskState.STOPPED])
    await eventually(lambda: rec.states("t", 3) == [TaskState.RUNNING])
    assert sup.running_count == 1
    await sup.close()


async def test_stop_answers_for_unknown_and_ended_attempts() -> None:
    rec = Recorder()
    sup = supervisor(rec)
    sup.apply(assign("done"))
    await eventually(lambda: rec.states("done") == [TaskState.RUNNING, TaskState.COMPLETED])
    sup.stop(AttemptRef(TaskId("done"), 1), reason="x")  # ended: its final again
    assert rec.states("done")[-1] is TaskState.COMPLETED and len(rec.updates) == 3
    sup.stop(AttemptRef(TaskId("ghost"), 1), reason="x")
    assert rec.states("ghost") == [TaskState.STOPPED]
    # Reconcile-style stops of what does not run say nothing.
    sup.stop_running(AttemptRef(TaskId("other"), 1), reason="x")
    assert rec.states("other") == []


async def test_a_stop_during_start_wins() -> None:
    release = asyncio.Event()

    class SlowStart(FakeRuntime):
        async def start(self, assignment: Assignment) -> Started:
            await release.wait()  # still starting when the stop comes
            return await super().start(assignment)

    rec = Recorder()
    sup = Supervisor({"fake": SlowStart()}, node_id=NODE, emit=rec)
    sup.apply(assign("t", duration=3600))
    sup.stop(AttemptRef(TaskId("t"), 1), reason="changed my mind")
    release.set()
    await eventually(lambda: TaskState.STOPPED in rec.states("t"))
    assert rec.updates[-1].message == "changed my mind"
    assert sup.running_count == 0


async def test_deadline_fails_the_attempt() -> None:
    rec = Recorder()
    sup = supervisor(rec)
    sup.apply(assign("t", duration=3600, deadline=0.1))
    await eventually(lambda: len(rec.states("t")) == 2)
    assert rec.updates[-1].state is TaskState.FAILED
    assert rec.updates[-1].message == "deadline of 0.1s exceeded"


async def test_history_is_bounded_and_attempts_are_listed() -> None:
    rec = Recorder()
    sup = supervisor(rec, history=5)
    for i in range(8):
        sup.apply(assign(f"t{i}"))
    sup.apply(assign("live", duration=3600))
    await eventually(lambda: sum(u.state is TaskState.COMPLETED for u in rec.updates) == 8)
    listed = {a.task_id: a.state for a in sup.attempts()}
    assert len(listed) == 6 and listed["live"] is TaskState.RUNNING
    assert "t0" not in listed and listed["t7"] is TaskState.COMPLETED
    assert sup.find(TaskId("t7")) is not None and sup.find(TaskId("t0")) is None
    await sup.close()


async def test_unhealthy_attempt_fails_with_the_reason() -> None:
    from corral.model import ExecProbe, HealthCheck

    class SickAfterStart(FakeRuntime):
        async def exec(self, ref: AttemptRef, argv: tuple[str, ...], timeout: float) -> int:
            return 1

    rec = Recorder()
    sup = Supervisor({"fake": SickAfterStart()}, node_id=NODE, emit=rec)
    check = HealthCheck(ExecProbe(("probe",)), interval=0.01, failure_threshold=2)
    sup.apply(assign("t", duration=3600, health_check=check))
    await eventually(lambda: len(rec.states("t")) == 2)
    final = rec.updates[-1]
    assert final.state is TaskState.FAILED and final.health is Health.UNHEALTHY
    assert final.message == "unhealthy: exec probe exited 1"


async def test_healthy_verdicts_are_reported() -> None:
    from corral.model import ExecProbe, HealthCheck

    rec = Recorder()
    sup = supervisor(rec)  # the fake runtime's exec answers 0 while the attempt runs
    check = HealthCheck(ExecProbe(("probe",)), interval=0.01)
    sup.apply(assign("t", duration=3600, health_check=check))
    await eventually(lambda: len(rec.states("t")) == 2)
    first, healthy = rec.updates
    assert first.health is Health.UNKNOWN and first.state is TaskState.RUNNING
    assert healthy.health is Health.HEALTHY and healthy.state is TaskState.RUNNING
    (current,) = sup.current()
    assert current.health is Health.HEALTHY
    await sup.close()


async def test_adoption_uses_saved_specs_and_reports_vanished_ones(tmp_path: Path) -> None:
    class Survivor(FakeRuntime):
        async def adopt(self) -> list[Adopted]:
            await self.start(assign("alive", duration=3600))
            return [
                Adopted(AttemptRef(TaskId("alive"), 4), None, started=Started()),
                Adopted(AttemptRef(TaskId("ended"), 2), None, exit=Exit(3, "exit code 3")),
            ]

        async def wait(self, ref: AttemptRef) -> Exit:
            return await super().wait(AttemptRef(ref.task_id, 1))

    records = AttemptRecords(tmp_path / "attempts", NODE)
    records.save(assign("alive", gen=4, duration=3600, labels={"k": "v"}))
    records.save(assign("lost", gen=7))
    rec = Recorder()
    sup = Supervisor({"fake": Survivor()}, node_id=NODE, emit=rec, records=records)
    await sup.adopt()
    assert rec.states("ended") == [TaskState.FAILED]
    assert rec.states("lost") == [TaskState.FAILED]
    (lost,) = [u for u in rec.updates if u.task_id == "lost"]
    assert lost.message == "attempt vanished while the worker was down"
    (ended,) = [u for u in rec.updates if u.task_id == "ended"]
    assert ended.exit_code == 3
    (alive,) = sup.current()
    assert (alive.task_id, alive.generation, alive.state) == ("alive", 4, TaskState.RUNNING)
    assert not sup.apply(assign("alive", gen=4))  # fenced after the restart too
    assert records.load().keys() == {"alive.4"}
    assert records.load()["alive.4"].spec.labels == {"k": "v"}
    await sup.close()


def test_attempt_records_make_their_directory_when_it_is_missing(tmp_path: Path) -> None:
    import shutil

    records = AttemptRecords(tmp_path / "attempts", NODE)
    records.save(assign("first"))
    shutil.rmtree(tmp_path / "attempts")  # e.g. an operator cleaned the data dir
    records.save(assign("second"))
    assert records.load().keys() == {"second.1"}


def test_node_id_is_made_once(tmp_path: Path) -> None:
    first = node_id(tmp_path / "data")
    assert first.startswith("node-") and node_id(tmp_path / "data") == first
