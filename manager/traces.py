"""Trace contexts of submitted tasks, carried from the submit to the assignment.

A task is submitted in one call and placed later, in a pass that serves many
calls, and its ``Assign`` leaves on the worker's stream: no request context
spans both. So the submit remembers the context of its span per task, and
the session that sends the assignment opens the placement span as its child
and puts that span's context in ``Assignment.trace_context``, where the
worker picks the trace up. Only traced submits are remembered (nothing is
kept when tracing is off), at most ``KEEP`` of them, oldest forgotten first.
A restarted task's next attempts stay in the trace of its submit.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from corral import tracing
from corral.model import Task, TaskId

KEEP = 10_000
_contexts: OrderedDict[TaskId, dict[str, str]] = OrderedDict()


def remember(tasks: Iterable[Task]) -> None:
    """Called in the submit's span: its context becomes the parent of the tasks' placements."""
    if not tracing.enabled("manager"):
        return
    carrier = tracing.carrier()
    if not carrier:
        return
    for task in tasks:
        _contexts[task.id] = carrier
        _contexts.move_to_end(task.id)
    while len(_contexts) > KEEP:
        _contexts.popitem(last=False)


def assignment_context(task_id: TaskId, generation: int, node_id: str) -> dict[str, str]:
    """The placement span of one assignment (ended now) as a carrier; {} when untraced."""
    parent = _contexts.get(task_id)
    if parent is None:
        return {}
    attributes = {"corral.task_id": task_id, "corral.generation": generation}
    with tracing.span("manager", "manager.place", parent=parent, attributes=attributes):
        attributes["corral.node_id"] = node_id
        with tracing.span("manager", "manager.assign", attributes=attributes):
            return tracing.carrier()
