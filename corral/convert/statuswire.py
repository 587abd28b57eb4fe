"""A task status as ``corral.v1.TaskStatus`` wire bytes, without building the message.

Every status change is encoded at least twice (the task's row and its event),
four times per task in a busy manager, and building the message was the
largest single cost of a group commit: upb sets each Timestamp through a
Python wrapper. A status is a few small fields that repeat endlessly (the
state, the node, the message, the creation time of every status of one task),
so each field's wire bytes are kept in small caches and joined.

The bytes decode to exactly ``status_to(s)`` (the protobuf wire format allows
fields in any order, and this writes them in field order, as upb does; a unit
test compares the two on generated statuses). Statuses with ports or an HTTP
result, rare, take the message path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from corral.convert.scalars import state_to
from corral.convert.tasks import health_to, status_to
from corral.model import Health, TaskState, TaskStatus

_U64 = 0xFFFF_FFFF_FFFF_FFFF
# A cache that grows past this many entries starts again: the values that repeat
# (this second's times, the fleet's node ids) come back at once.
_CACHE_LIMIT = 1 << 16


def varint(n: int) -> bytes:
    """Base-128 varint of a non-negative integer (a negative int32 or int64 is sent as
    its two's complement in 64 bits, as protobuf does)."""
    if n < 0:
        n &= _U64
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [bytes((i,)) for i in range(0x80)]


def _enum_fields(tag: bytes, numbers: dict[object, int]) -> dict[object, bytes]:
    # proto3 leaves a zero enum off the wire.
    return {member: (tag + varint(n) if n else b"") for member, n in numbers.items()}


_STATE = _enum_fields(b"\x08", {s: state_to(s) for s in TaskState})
_HEALTH = _enum_fields(b"\x70", {h: health_to(h) for h in Health})


class _Cache(dict[Any, bytes]):
    """Wire bytes by value, dropped wholesale when too many (see ``_CACHE_LIMIT``)."""

    def __init__(self, encode: Callable[[Any], bytes]) -> None:
        super().__init__()
        self.encode = encode

    def __missing__(self, key: Any) -> bytes:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        value = self[key] = self.encode(key)
        return value


def _text(tag: bytes) -> _Cache:
    def encode(text: str) -> bytes:
        data = text.encode()
        return tag + varint(len(data)) + data

    return _Cache(encode)


def _uint(tag: bytes) -> _Cache:
    return _Cache(lambda n: tag + varint(n))


def _time_body(value: float) -> bytes:
    # What status_to does: round to nanoseconds, then seconds and a non-negative remainder.
    nanos = round(value * 1e9)
    seconds, rest = nanos // 1_000_000_000, nanos % 1_000_000_000
    body = b"\x08" + varint(seconds) if seconds else b""
    if rest:
        body += b"\x10" + varint(rest)
    return varint(len(body)) + body


_NODE = _text(b"\x12")
_MESSAGE = _text(b"\x32")
_GENERATION = _uint(b"\x18")
_ATTEMPTS = _uint(b"\x20")
_EXIT = _uint(b"\x28")  # int32: a negative code is its 64-bit complement
_RESTARTS = _uint(b"\x38")
# One cache for every time field: a status's times are often equal (updated_at is
# the time of the change that set scheduled_at, started_at or finished_at).
_TIME = _Cache(_time_body)


def status_bytes(s: TaskStatus) -> bytes:
    """``status_to(s).SerializeToString()``, several times faster."""
    if s.ports or s.result is not None:
        return status_to(s).SerializeToString()
    parts = [_STATE[s.state]]
    if s.node_id:
        parts.append(_NODE[s.node_id])
    if s.generation:
        parts.append(_GENERATION[s.generation])
    if s.attempts:
        parts.append(_ATTEMPTS[s.attempts])
    if s.exit_code is not None:  # optional: a zero is still sent
        parts.append(_EXIT[s.exit_code])
    if s.message:
        parts.append(_MESSAGE[s.message])
    if s.restart_count:
        parts.append(_RESTARTS[s.restart_count])
    time = _TIME
    if (t := s.created_at) is not None:
        parts += (b"\x42", time[t])
    if (t := s.scheduled_at) is not None:
        parts += (b"\x4a", time[t])
    if (t := s.started_at) is not None:
        parts += (b"\x52", time[t])
    if (t := s.finished_at) is not None:
        parts += (b"\x5a", time[t])
    if (t := s.updated_at) is not None:
        parts += (b"\x62", time[t])
    parts.append(_HEALTH[s.health])
    if (t := s.next_attempt_at) is not None:
        parts += (b"\x82\x01", time[t])
    return b"".join(parts)
