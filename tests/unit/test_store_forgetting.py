"""Retention in the stores (both backends): forgotten tasks go with their specs and
attempts, old events below an index go, everything else stays."""

from __future__ import annotations

from pg import StoreOpener, open_store, pg_cluster, pg_url

from corral.model import Attempt, Event, Task, TaskId, TaskSpec, TaskState, TaskStatus
from manager.store import Batch

__all__ = ["open_store", "pg_cluster", "pg_url"]


def made(i: int) -> Task:
    spec = TaskSpec(name=f"t{i}", command=("true",))
    return Task(TaskId(f"id{i}"), spec, TaskStatus(state=TaskState.COMPLETED, created_at=1.0))


async def test_forgotten_tasks_attempts_and_old_events_are_deleted(
    open_store: StoreOpener,
) -> None:
    store = await open_store()
    batch = Batch()
    for i in range(3):
        batch.new_tasks.append((i + 1, made(i)))
        batch.attempts[(f"id{i}", 1)] = Attempt(TaskId(f"id{i}"), 1, "n1", TaskState.FAILED, 1, "")
        batch.events.append(Event(i + 1, 1.0, "task.submitted", task=made(i)))
    await store.commit(batch)
    await store.commit(Batch(forgotten=[(1, "id0"), (2, "id1")], events_below=3))
    await store.close()

    store = await open_store()
    snapshot = await store.load()
    assert [row.id for row in snapshot.tasks] == ["id2"]
    assert await store.attempt("id0", 1) is None
    assert await store.attempt("id2", 1) is not None
    assert [e.index for e in await store.events(1, 3)] == [3]
    await store.close()
