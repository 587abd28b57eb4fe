"""Reading the catalog for callers, and checking a submission against it.

Plain functions over ``manager.catalog.Catalog``: a page of tasks for
``ListTasks`` (newest first, resumable by submission sequence) and the
checks a submission passes before anything is stored (every spec valid,
ids unused, names unique among unfinished tasks), each error naming the
request field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from corral.errors import AlreadyExists, ValidationError
from corral.model import Task, TaskId, TaskSpec, TaskStatus
from corral.validation import check_task_id, validate_task_spec
from manager.catalog import Catalog, TaskEntry
from manager.control import NewTask, TaskQuery

MAX_BATCH = 10_000


def check_submission(
    catalog: Catalog,
    tasks: Sequence[NewTask],
    prefix: str,
    check: Callable[[TaskSpec, str], None],
) -> dict[int, Task]:
    """Raise the first problem of the batch, naming its field under ``prefix``.

    ``check(spec, at)`` is the manager's own check of a spec (``at`` is the
    field prefix of the task, ``tasks[3].`` or empty), run after validation.
    Returns the retries: items whose id names a task made with the same spec
    (a submit committed but whose reply was lost), by position, with that task;
    another spec under a known id is ALREADY_EXISTS.
    """
    repeats: dict[int, Task] = {}
    if len(tasks) > MAX_BATCH:
        raise ValidationError(prefix or "tasks", f"at most {MAX_BATCH} tasks per call")
    if prefix and not tasks:
        raise ValidationError(prefix, "must not be empty")
    names: set[str] = set()
    ids: set[str] = set()
    for i, new in enumerate(tasks):
        at = f"{prefix}[{i}]." if prefix else ""
        validate_task_spec(new.spec, f"{at}spec")
        check(new.spec, at)
        if new.id is not None:
            check_task_id(new.id, f"{at}id")
            known = catalog.by_id.get(TaskId(new.id))
            if known is not None and known.task.spec == new.spec and new.id not in ids:
                repeats[i] = known.task
                ids.add(new.id)
                continue
            if known is not None or new.id in ids:
                raise AlreadyExists(f"{at}id: task {new.id} already exists with another spec")
            ids.add(new.id)
        name = new.spec.name
        if name in catalog.active_names or name in names:
            raise AlreadyExists(f"{at}spec.name: a task named {name!r} is not finished yet")
        names.add(name)
    return repeats


def new_task(task_id: TaskId, spec: TaskSpec, now: float) -> Task:
    status = TaskStatus(created_at=now, updated_at=now, message="waiting for placement")
    return Task(task_id, spec, status)


def page(catalog: Catalog, query: TaskQuery) -> tuple[list[Task], str]:
    """A page of tasks, newest first, and the next page token ('' on the last)."""
    size = query.page_size or 100
    if not 1 <= size <= 1000:
        raise ValidationError("page_size", "must be between 1 and 1000")
    below: int | None = None
    if query.page_token:
        if not (query.page_token.isascii() and query.page_token.isdigit()):
            raise ValidationError("page_token", "is not a token this server issued")
        below = int(query.page_token)
    found: list[TaskEntry] = []
    if query.states:
        # One more than the page tells whether there is a next page.
        limit = 0 if (query.node_id or query.labels) else size + 1
        entries = catalog.newest_in(query.states, below, limit=limit)
    else:
        entries = catalog.newest_first(below)
    for entry in entries:
        task = entry.task if (query.node_id or query.labels) else None
        if task is not None and query.node_id and task.status.node_id != query.node_id:
            continue
        if task is not None and any(task.spec.labels.get(k) != v for k, v in query.labels.items()):
            continue
        if len(found) == size:
            return [e.task for e in found], str(found[-1].seq)
        found.append(entry)
    return [e.task for e in found], ""
