"""``@value``: an immutable record, checked by the type checker instead of at run time.

A ``@dataclass(frozen=True, slots=True)`` sets each field through
``object.__setattr__`` in its ``__init__``: 2.1 µs for a ``TaskStatus`` against
0.4 µs for a plain slotted one, and the manager builds several statuses, tasks,
events and plan steps per task it places — about a tenth of its CPU in
``bench.dispatch``. ``@value`` classes are plain slotted, hashable dataclasses
at run time and frozen for mypy (``dataclass_transform(frozen_default=True)``),
which ``make check`` runs in strict mode: assigning to a field is a type error.
``dataclasses.replace`` makes a changed copy, as before.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def value(cls: type[T]) -> type[T]:
    return dataclass(slots=True, unsafe_hash=True)(cls)


class Symbol(enum.Enum):
    """An enum hashed by identity, as its members are singletons compared by identity.

    ``Enum.__hash__`` hashes the member's name in Python code; task states and
    health are dict keys on every status change (the catalog's index, the wire
    encoders), and that call alone was 2% of the manager's CPU in ``bench.dispatch``.
    """

    __hash__ = object.__hash__
