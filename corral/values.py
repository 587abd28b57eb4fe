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
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TypeVar, cast, dataclass_transform

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


def replacer(cls: type[T]) -> Callable[..., T]:
    """``dataclasses.replace`` for a ``@value`` class on a hot path: ``fn(obj, **changes)``.

    The copy's slots are set one by one on a bare instance, in code generated from the
    class's fields (as ``dataclasses`` generates ``__init__``, so a new field is copied
    too): 1.0 µs for a ``TaskStatus``, where ``replace`` costs 2.4. No ``__post_init__``
    runs, and a name in ``changes`` that is not a field raises AttributeError (the class
    has slots).
    """
    lines = ["def replaced(obj, **changes):", "    out = new(cls)"]
    lines += [f"    out.{f.name} = obj.{f.name}" for f in fields(cls)]  # type: ignore[arg-type]
    lines += ["    for name, value in changes.items():", "        setattr(out, name, value)"]
    lines += ["    return out"]
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls}
    exec("\n".join(lines), scope)  # a fixed source, built from the field names
    return cast(Callable[..., T], scope["replaced"])
