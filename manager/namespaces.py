"""Namespaces: a token scoped to one sees only that namespace's tasks.

Every task belongs to a namespace (``spec.namespace``; empty means
``default``). With ACLs on, a token made with ``--namespace`` may submit only
into its namespace (an empty one is filled in) and is answered, for a task of
another namespace, exactly as if it did not exist: NOT_FOUND with the words
an unknown id gets, so ids and names do not leak (OWASP API1, object-level
authorization). Lists and the event stream leave such tasks out. Without ACLs,
or with a token of every namespace, everything is visible.

The checks sit at the servicer's edge, on what the core returns; the core
itself knows nothing of callers.
"""

from __future__ import annotations

from corral.errors import NotFound, PermissionDenied
from corral.model import Event, Task, TaskSpec
from manager.acl import caller

DEFAULT = "default"


def of(spec: TaskSpec) -> str:
    return spec.namespace or DEFAULT


def visible(task: Task) -> bool:
    return caller().sees(of(task.spec))


def checked(task: Task, ref: str) -> Task:
    """``task`` when the caller may see it; otherwise the NOT_FOUND an unknown id gets."""
    if not visible(task):
        raise NotFound(f"task {ref!r} not found")
    return task


def event_visible(event: Event) -> bool:
    return event.task is None or visible(event.task)


def scoped(requested: str) -> str:
    """The namespace a submission goes to: a scoped caller's own; another one is refused."""
    mine = caller().namespace
    if not mine or requested == mine:
        return requested
    if not requested:
        return mine
    raise PermissionDenied(f"this token may only submit into namespace {mine!r}, not {requested!r}")
