"""Dependency graphs refused at submit, and the verdicts of waiting tasks (no manager)."""

from __future__ import annotations

import pytest

from corral.errors import ValidationError
from corral.model import (
    Dependency,
    DependencyCondition,
    Task,
    TaskId,
    TaskSpec,
    TaskState,
    TaskStatus,
)
from manager.dependencies import Gate, Ready, Skip, Wait, check_graph, verdict

FINISHED = DependencyCondition.FINISHED


def spec(name: str, *after: str, condition: DependencyCondition | None = None) -> TaskSpec:
    deps = tuple(Dependency(a, condition or DependencyCondition.SUCCEEDED) for a in after)
    return TaskSpec(name=name, command=("true",), depends_on=deps)


def test_a_graph_by_client_ids_is_accepted() -> None:
    batch = [("a", spec("a")), ("b", spec("b", "a")), ("c", spec("c", "a", "b", "old"))]
    check_graph(batch, known=lambda i: i == "old", prefix="tasks")


def test_an_unknown_id_is_named() -> None:
    batch = [("a", spec("a")), ("b", spec("b", "a", "ghost"))]
    with pytest.raises(ValidationError) as err:
        check_graph(batch, known=lambda i: False, prefix="tasks")
    assert err.value.field == "tasks[1].spec.depends_on[1].task_id"
    assert "'ghost'" in err.value.problem


@pytest.mark.parametrize(
    ("batch", "path"),
    [
        ([("a", spec("a", "a"))], "a -> a"),
        ([("a", spec("a", "c")), ("b", spec("b", "a")), ("c", spec("c", "b"))], "a -> c -> b -> a"),
        (
            [("x", spec("x")), ("a", spec("a", "x", "b")), ("b", spec("b", "x", "a"))],
            "a -> b -> a",
        ),
    ],
)
def test_a_cycle_is_refused_naming_the_path(batch: list[tuple[str, TaskSpec]], path: str) -> None:
    with pytest.raises(ValidationError) as err:
        check_graph(batch, known=lambda i: False, prefix="tasks")
    assert err.value.problem == f"cycle: {path}"
    assert err.value.field.endswith("spec.depends_on")


def task(task_id: str, state: TaskState, message: str = "") -> Task:
    return Task(TaskId(task_id), TaskSpec(name=task_id), TaskStatus(state=state, message=message))


def test_verdicts() -> None:
    tasks = {
        "build": task("build", TaskState.COMPLETED),
        "lint": task("lint", TaskState.FAILED, "exit code 1"),
        "test": task("test", TaskState.RUNNING),
    }
    look = tasks.get
    assert verdict((Dependency("build"),), look) == Ready()
    waiting = verdict((Dependency("build"), Dependency("test")), look)
    assert isinstance(waiting, Wait) and "test" in waiting.reason and "running" in waiting.reason
    skipped = verdict((Dependency("lint"),), look)
    assert isinstance(skipped, Skip)
    assert (
        "lint" in skipped.reason and "failed" in skipped.reason and "exit code 1" in skipped.reason
    )
    assert verdict((Dependency("lint", FINISHED),), look) == Ready()
    # Restarting (PENDING between attempts) is not an end: the dependent waits.
    tasks["lint"] = task("lint", TaskState.PENDING)
    assert isinstance(verdict((Dependency("lint"),), look), Wait)
    assert isinstance(verdict((Dependency("gone"),), look), Skip)


def test_the_gate_indexes_both_ways() -> None:
    gate = Gate()
    gate.hold(TaskId("c"), (Dependency("a"), Dependency("b")))
    gate.hold(TaskId("d"), (Dependency("a"),))
    assert gate.waiting_on("a") == {"c", "d"} and "c" in gate and len(gate) == 2
    gate.release(TaskId("c"))
    assert gate.waiting_on("a") == {"d"} and gate.waiting_on("b") == set()
    gate.release(TaskId("d"))
    assert len(gate) == 0 and gate.waiting_on("a") == set()
