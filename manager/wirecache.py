"""Specs converted to their wire form once per task, shared by the manager's edges.

A task's spec never changes after submission, yet three edges need its wire
form: the SubmitTasks response, the ``Assign`` message to a worker, and the
store's row. Converting a spec costs tens of microseconds in Python, which
at tens of thousands of tasks per second is a large share of a core, so the
servicer remembers the request's own message and the others reuse it.

One ``SpecCache`` belongs to one manager (``manager.server`` makes it and
hands it to the servicer, the sessions and the store's codec), and it is
used on the event loop's thread only. It is generic over the message type,
so this module needs no wire types: ``manager.encoding`` builds it with the
protobuf converter.

Keyed by the identity of the (immutable) ``TaskSpec``; each entry holds the
spec itself so its id cannot be recycled while cached. Bounded: the oldest
entries go first, and a miss just converts again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from corral.model import TaskSpec

# About a kilobyte each: enough for a few large batches in flight, small next to the task index.
LIMIT = 20_000

M = TypeVar("M")


class SpecCache(Generic[M]):
    def __init__(self, convert: Callable[[TaskSpec], M], *, limit: int = LIMIT) -> None:
        self._convert = convert
        self._limit = limit
        self._cache: OrderedDict[int, tuple[TaskSpec, M]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    def remember(self, spec: TaskSpec, message: M) -> None:
        self._cache[id(spec)] = (spec, message)
        if len(self._cache) > self._limit:
            self._cache.popitem(last=False)

    def message(self, spec: TaskSpec) -> M:
        hit = self._cache.get(id(spec))
        if hit is not None and hit[0] is spec:
            return hit[1]
        message = self._convert(spec)
        self.remember(spec, message)
        return message

    def peek(self, spec: TaskSpec) -> M:
        """The cached message, else a fresh conversion that is not cached."""
        hit = self._cache.get(id(spec))
        return hit[1] if hit is not None and hit[0] is spec else self._convert(spec)
