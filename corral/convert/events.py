"""Events of the manager's event feed."""

from __future__ import annotations

from corral.convert.nodes import node_from, node_to
from corral.convert.scalars import (
    time_from,
    timestamp,
)
from corral.convert.tasks import task_from, task_to
from corral.model import (
    Event,
)
from corral.v1 import types_pb2


def event_from(m: types_pb2.Event) -> Event:
    return Event(
        index=m.index,
        time=time_from(m.time) or 0.0,
        kind=m.kind,
        task=task_from(m.task) if m.HasField("task") else None,
        node=node_from(m.node) if m.HasField("node") else None,
        message=m.message,
        actor=m.actor,
    )


def event_to(e: Event) -> types_pb2.Event:
    out = types_pb2.Event(
        index=e.index, time=timestamp(e.time), kind=e.kind, message=e.message, actor=e.actor
    )
    if e.task is not None:
        out.task.CopyFrom(task_to(e.task))
    if e.node is not None:
        out.node.CopyFrom(node_to(e.node))
    return out
