"""Random corral.v1 messages for the gateway's JSON tests: every type, a random part set."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from gateway.bindings import corral_files
from gateway.messages import INT_RANGES

F = FieldDescriptor
DOUBLES = [0.0, 1.5, -2.25, 1e300, 5e-324, math.inf, -math.inf, math.nan]
STRINGS = ["", "a", "ü ☃", 'quote " and \\ and \n']


def message_types() -> Iterator[Any]:
    def nested(descriptor: Any) -> Iterator[Any]:
        if not descriptor.GetOptions().map_entry:
            yield descriptor
        for sub in descriptor.nested_types:
            yield from nested(sub)

    for file in corral_files():
        for descriptor in file.message_types_by_name.values():
            yield from nested(descriptor)


def filled_messages(rnd: random.Random) -> Iterator[tuple[Any, Message]]:
    """Every corral.v1 message type with a random part of it set: (descriptor, message)."""
    for descriptor in message_types():
        message = message_factory.GetMessageClass(descriptor)()
        fill(message, rnd)
        yield descriptor, message


def scalar(f: Any, rnd: random.Random) -> Any:
    kind = f.type
    if kind in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return rnd.choice(DOUBLES if kind == F.TYPE_DOUBLE else [0.0, 0.5, 0.1, math.inf])
    if kind == F.TYPE_BOOL:
        return rnd.random() < 0.5
    if kind == F.TYPE_STRING:
        return rnd.choice(STRINGS)
    if kind == F.TYPE_BYTES:
        return rnd.randbytes(rnd.randrange(5))
    if kind == F.TYPE_ENUM:
        numbers = [v.number for v in f.enum_type.values]
        return rnd.choice(numbers + ([] if f.enum_type.is_closed else [999]))
    low, high = INT_RANGES[kind]
    return rnd.choice([0, 1, low, high, rnd.randint(low, high)])


def fill(message: Message, rnd: random.Random, depth: int = 0) -> None:
    """Set a random part of ``message``, well-known types included, a few levels deep."""
    name = message.DESCRIPTOR.full_name
    if name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        message.FromNanoseconds(rnd.randrange(0, 10**18))  # type: ignore[attr-defined]
        return
    if name == "google.protobuf.Struct":
        message.update({"n": 1.5, "list": [True, None, "x"], "sub": {"k": "v"}})  # type: ignore[attr-defined]
        return
    for f in message.DESCRIPTOR.fields:
        if rnd.random() < 0.4:
            continue
        target = getattr(message, f.name)
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            key_field, value_field = f.message_type.fields
            for _ in range(rnd.randrange(3)):
                key = scalar(key_field, rnd)
                if value_field.message_type is None:
                    target[key] = scalar(value_field, rnd)
                elif depth < 3:
                    fill(target[key], rnd, depth + 1)
        elif f.is_repeated:
            for _ in range(rnd.randrange(3)):
                if f.message_type is None:
                    target.append(scalar(f, rnd))
                elif depth < 3:
                    fill(target.add(), rnd, depth + 1)
        elif f.message_type is not None:
            if depth < 3:
                fill(target, rnd, depth + 1)
            target.SetInParent()
        else:
            setattr(message, f.name, scalar(f, rnd))
