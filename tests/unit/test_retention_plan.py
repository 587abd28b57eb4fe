"""Retention decisions (manager.retention.plan), the catalog forgetting in bulk, and the
worker's pruning of logs of forgotten tasks (worker.logfiles.prune)."""

from __future__ import annotations

import os
from pathlib import Path

from corral.model import Task, TaskId, TaskSpec, TaskState, TaskStatus
from manager.catalog import Catalog, TaskEntry
from manager.retention import plan
from worker.logfiles import prune

NOW = 1_000_000.0


def entry(seq: int, state: TaskState, finished_at: float | None, name: str = "") -> TaskEntry:
    status = TaskStatus(state=state, finished_at=finished_at, updated_at=finished_at)
    task = Task(TaskId(f"t{seq}"), TaskSpec(name=name or f"n{seq}"), status)
    return TaskEntry(seq, task=task)


def test_only_finished_tasks_past_the_retention_go_oldest_first() -> None:
    entries = [
        entry(1, TaskState.COMPLETED, NOW - 7200),
        entry(2, TaskState.FAILED, NOW - 3000),  # within the hour: kept
        entry(3, TaskState.RUNNING, None),
        entry(4, TaskState.STOPPED, NOW - 9000),
        entry(5, TaskState.LOST, NOW - 9000),  # not final: rescheduled, never forgotten
    ]
    decided = plan(entries, now=NOW, retain_finished=3600, newest_event=50, retain_events=100)
    assert [e.id for e in decided.tasks] == ["t4", "t1"]
    assert decided.events_below == 0
    limited = plan(
        entries, now=NOW, retain_finished=3600, newest_event=500, retain_events=100, limit=1
    )
    assert [e.id for e in limited.tasks] == ["t4"] and limited.events_below == 401
    again = plan([], now=NOW, retain_finished=3600, newest_event=500, retain_events=100,
                 trimmed_below=401)  # fmt: skip
    assert not again


def test_the_catalog_forgets_in_bulk_and_keeps_the_newest_of_a_name() -> None:
    catalog = Catalog()
    old, new = entry(1, TaskState.COMPLETED, NOW, "web"), entry(2, TaskState.COMPLETED, NOW, "web")
    other = entry(3, TaskState.RUNNING, None, "db")
    for e in (old, new, other):
        catalog.add(e)
    catalog.forget([new])
    assert set(catalog.by_id) == {"t1", "t3"}
    assert catalog.latest_names["web"] == "t1"
    catalog.forget([old])
    assert "web" not in catalog.latest_names and len(catalog) == 1


def test_logs_of_forgotten_tasks_are_pruned(tmp_path: Path) -> None:
    for task, age in (("old", 7200), ("fresh", 60), ("running", 7200)):
        path = tmp_path / task / "1.log"
        path.parent.mkdir()
        path.write_text("out\n")
        os.utime(path, (NOW - age, NOW - age))
    assert prune(tmp_path, older_than=3600, keep={"running"}, now=NOW) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "running"]
