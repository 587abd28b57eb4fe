"""Dependencies between tasks: graphs refused at submit, and what a waiting task does next.

Nomad (#1554) and Kubernetes (#115370) leave "run B after A succeeded" to a
workflow engine; here a task's ``depends_on`` names other tasks and a
condition (``succeeded``, the default, or ``finished``). Plain functions:

- ``check_graph`` refuses, at submit, a dependency on an id that is neither
  stored nor in the same batch, and a cycle inside the batch, naming the path
  (``a -> b -> c -> a``). A whole graph goes in one SubmitTasks batch, its
  tasks naming each other by the ids the client chose.
- ``verdict`` says what a PENDING dependent does: wait (the reason names what
  it waits for and where that is), run, or end SKIPPED (the reason names the
  dependency and how it ended). Only a dependency's final state counts, so its
  restart policy runs to its end before the dependent decides.
- ``Gate`` is the index the manager keeps: which tasks wait, on what, and
  which waiters to look at when a task ends.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from corral.errors import ValidationError
from corral.model import Dependency, DependencyCondition, Task, TaskId, TaskSpec, TaskState


@dataclass(frozen=True, slots=True)
class Wait:
    reason: str


@dataclass(frozen=True, slots=True)
class Ready:
    pass


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str


Verdict = Wait | Ready | Skip


def check_graph(
    batch: Sequence[tuple[str | None, TaskSpec]], known: Callable[[str], bool], prefix: str
) -> None:
    """Unknown ids and cycles are refused; ``prefix`` names the request field ("tasks")."""
    index = {task_id: i for i, (task_id, _) in enumerate(batch) if task_id}

    def at(i: int) -> str:
        return f"{prefix}[{i}]." if prefix else ""

    for i, (_, spec) in enumerate(batch):
        for j, dependency in enumerate(spec.depends_on):
            if dependency.task_id not in index and not known(dependency.task_id):
                raise ValidationError(
                    f"{at(i)}spec.depends_on[{j}].task_id",
                    f"no task {dependency.task_id!r}: it is neither stored nor in this batch"
                    " (a batch's tasks name each other by the ids the client chose)",
                )
    edges = {
        task_id: [d.task_id for d in batch[i][1].depends_on if d.task_id in index]
        for task_id, i in index.items()
    }
    cycle = _cycle(edges)
    if cycle is not None:
        raise ValidationError(
            f"{at(index[cycle[0]])}spec.depends_on", "cycle: " + " -> ".join(cycle)
        )


def _cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """A path that comes back to its start, or None (depth-first, without recursion)."""
    done: set[str] = set()
    for root, first in edges.items():
        if root in done:
            continue
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(first))]
        path.append(root)
        on_path.add(root)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                on_path.discard(path.pop())
                done.add(node)
                continue
            if child in on_path:
                return [*path[path.index(child) :], child]
            if child not in done:
                stack.append((child, iter(edges[child])))
                path.append(child)
                on_path.add(child)
    return None


def _label(task: Task) -> str:
    return f"{task.spec.name} ({task.id[:8]})" if task.spec.name else task.id


def verdict(dependencies: Sequence[Dependency], lookup: Callable[[str], Task | None]) -> Verdict:
    """What a dependent does now, given its dependencies' current tasks."""
    waiting: list[str] = []
    for dependency in dependencies:
        task = lookup(dependency.task_id)
        if task is None:
            return Skip(f"dependency {dependency.task_id} no longer exists")
        state = task.status.state
        if not state.final:
            waiting.append(f"{_label(task)}, {state.value}")
            continue
        wanted = dependency.condition is DependencyCondition.SUCCEEDED
        if wanted and state is not TaskState.COMPLETED:
            why = f": {task.status.message}" if task.status.message else ""
            return Skip(f"dependency {_label(task)} ended {state.value}, not completed{why}")
    if waiting:
        return Wait("waiting for " + "; ".join(waiting))
    return Ready()


class Gate:
    """The tasks that wait for others, both ways round."""

    def __init__(self) -> None:
        self._waits: dict[TaskId, tuple[Dependency, ...]] = {}
        self._dependents: dict[str, set[TaskId]] = defaultdict(set)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._waits

    def __len__(self) -> int:
        return len(self._waits)

    def hold(self, task_id: TaskId, dependencies: Sequence[Dependency]) -> None:
        self._waits[task_id] = tuple(dependencies)
        for dependency in dependencies:
            self._dependents[dependency.task_id].add(task_id)

    def release(self, task_id: TaskId) -> None:
        for dependency in self._waits.pop(task_id, ()):
            waiters = self._dependents.get(dependency.task_id)
            if waiters is not None:
                waiters.discard(task_id)
                if not waiters:
                    del self._dependents[dependency.task_id]

    def dependencies(self, task_id: TaskId) -> tuple[Dependency, ...]:
        return self._waits.get(task_id, ())

    def waiting_on(self, task_id: str) -> set[TaskId]:
        """The held tasks that depend on ``task_id``."""
        return set(self._dependents.get(task_id, ()))
