"""Specs converted to protobuf once per task, shared by the manager's edges.

A task's spec never changes after submission, yet three edges need its wire
form: the SubmitTasks response, the ``Assign`` message to a worker, and the
store's row. Converting a spec costs tens of microseconds in Python, which
at tens of thousands of tasks per second is a large share of a core, so the
servicer remembers the request's own message and the others reuse it.

Keyed by the identity of the (immutable) ``TaskSpec``; each entry holds the
spec itself so its id cannot be recycled while cached. Bounded: the oldest
entries go first, and a miss just converts again.
"""

from __future__ import annotations

from collections import OrderedDict

from corral import convert
from corral.model import TaskSpec
from corral.v1 import types_pb2

# About a kilobyte each: enough for a few large batches in flight, small next to the task index.
LIMIT = 20_000

_cache: OrderedDict[int, tuple[TaskSpec, types_pb2.TaskSpec]] = OrderedDict()


def remember(spec: TaskSpec, message: types_pb2.TaskSpec) -> None:
    _cache[id(spec)] = (spec, message)
    if len(_cache) > LIMIT:
        _cache.popitem(last=False)


def spec_message(spec: TaskSpec) -> types_pb2.TaskSpec:
    hit = _cache.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    message = convert.spec_to(spec)
    remember(spec, message)
    return message


def encoded(spec: TaskSpec) -> bytes:
    """The spec's bytes for the store; read-only on the cache (called from the store's thread)."""
    hit = _cache.get(id(spec))
    message = hit[1] if hit is not None and hit[0] is spec else convert.spec_to(spec)
    return message.SerializeToString()
