"""Rows both store backends share: how an attempt is read and how events are written.

The tables are the same in SQLite (``manager.store.sqlite``) and PostgreSQL
(``manager.stores.postgres``), so are the columns of an attempt and an event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from corral.model import Attempt, Event, Node, TaskId, TaskState, TaskStatus

# A state's column text. ``TaskState.X.value`` is a property written in Python (enum's),
# read for every row a group commit writes; a dict lookup is a tenth of it.
STATE_TEXT: dict[TaskState, str] = {state: state.value for state in TaskState}


def attempt_from(row: Sequence[Any]) -> Attempt:
    task_id, generation, node_id, state, exit_code, message, created_at, finished_at = row
    return Attempt(
        TaskId(task_id),
        generation,
        node_id,
        TaskState(state),
        exit_code,
        message,
        created_at,
        finished_at,
    )


def event_rows(
    events: Iterable[Event],
    encode_status: Callable[[TaskStatus], bytes],
    encode_node: Callable[[Node], bytes],
) -> Iterable[tuple[Any, ...]]:
    for e in events:
        if e.task is not None:
            status = encode_status(e.task.status)
            yield (e.index, e.time, e.kind, e.task.id, None, e.message, status, e.actor)
        elif e.node is not None:
            node = encode_node(e.node)
            yield (e.index, e.time, e.kind, None, e.node.id, e.message, node, e.actor)
        else:
            yield (e.index, e.time, e.kind, None, None, e.message, None, e.actor)
