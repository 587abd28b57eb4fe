"""Submitted specs converted once per shape: a batch of like tasks converts one spec.

A batch submit usually sends thousands of specs that differ only in their
names (the tasks of one job, a fan-out). Converting a spec from its message
costs 6.5 µs, the largest share of a submit; the same spec with another name
is a copy of a converted one, 1.1 µs with the lookup. The shape is the spec's
deterministic wire form without its name. Specs that carry secrets are never
kept here.

Converted specs are immutable records, so the copies share their tuples and
mappings: nothing in the manager changes a spec after submission.
"""

from __future__ import annotations

from corral import convert
from corral.model import TaskSpec
from corral.v1 import types_pb2
from corral.values import replacer

# Shapes kept; past it the cache starts again (a workload has a few shapes at a time).
LIMIT = 256


_copy = replacer(TaskSpec)


class SpecTemplates:
    def __init__(self, limit: int = LIMIT) -> None:
        self._limit = limit
        self._by_shape: dict[bytes, TaskSpec] = {}

    def __len__(self) -> int:
        return len(self._by_shape)

    def convert(self, m: types_pb2.TaskSpec) -> TaskSpec:
        """``convert.spec_from(m)``, from a kept conversion when one has m's shape."""
        if m.secret_env or m.sealed_secret_env:
            return convert.spec_from(m)
        name = m.name
        m.name = ""
        try:
            shape = m.SerializeToString(deterministic=True)
            template = self._by_shape.get(shape)
            if template is None:
                template = convert.spec_from(m)  # raises on a bad spec: nothing kept
                if len(self._by_shape) >= self._limit:
                    self._by_shape.clear()
                self._by_shape[shape] = template
        finally:
            m.name = name
        return _copy(template, name=name)
