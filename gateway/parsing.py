"""Proto3 JSON in: the common shapes set directly, everything else by json_format.

``json_format.ParseDict`` rebuilds a JSON-name table of every message it
enters and decides each value's conversion field by field; for the small
body of a ``POST /v1/tasks`` that was a quarter of the gateway's own work.
``fill`` sets the fields itself when every value has its plainest proto3
JSON shape: strings, in-range integers (quoted or not), finite numbers, booleans, enum names
or defined numbers, objects for messages and maps with string keys, arrays
for repeated fields, and strings for Timestamp, Duration and FieldMask. For
those, ``ParseDict`` sets exactly the same fields with the same presence.
Anything else (a null, a quoted number, bytes, an integer map key, a
duplicate or a second member of a oneof, a value that does not fit) makes
``fill`` give up, clear the message and leave it to ``ParseDict``, so its
acceptance and its error messages stay the reference.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

# The stubs type upb and pure-Python descriptors apart; both behave the same here.
AnyField = Any
_AS_STRING = {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}
_INTEGERS = {
    FieldDescriptor.CPPTYPE_INT32,
    FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT32,
    FieldDescriptor.CPPTYPE_UINT64,
}


class _Unplain(Exception):
    """A value outside the shapes ``fill`` sets itself."""


def fill(data: Any, message: Message) -> None:
    """Set ``message`` (new, nothing set yet) from proto3 JSON ``data``, as ParseDict would.

    Raises ``json_format.ParseError`` (ParseDict's own) for what ParseDict refuses.
    """
    try:
        _message(data, message)
    except (_Unplain, ValueError, TypeError, OverflowError):
        message.Clear()
        json_format.ParseDict(data, message, ignore_unknown_fields=False)


def _fields(descriptor: Any) -> dict[str, AnyField]:
    """Fields by JSON name, then proto name: the order ParseDict looks them up in."""
    found = _tables.get(descriptor.full_name)
    if found is None:
        found = {f.name: f for f in descriptor.fields}
        found.update({f.json_name: f for f in descriptor.fields})
        _tables[descriptor.full_name] = found
    return found


_tables: dict[str, dict[str, AnyField]] = {}


def _message(data: Any, message: Message) -> None:
    descriptor = message.DESCRIPTOR
    if descriptor.full_name.startswith("google.protobuf.") or type(data) is not dict:
        raise _Unplain
    fields = _fields(descriptor)
    seen: set[Any] = set()
    for key, value in data.items():
        f = fields.get(key)
        if f is None or value is None or f.number in seen:
            raise _Unplain
        seen.add(f.number)
        oneof = f.containing_oneof
        if oneof is not None:
            if oneof.name in seen:
                raise _Unplain
            seen.add(oneof.name)
        _field(f, value, message)


def _field(f: AnyField, value: Any, message: Message) -> None:
    if f.message_type is not None and f.message_type.GetOptions().map_entry:
        _map(f, value, getattr(message, f.name))
    elif f.is_repeated:
        if type(value) is not list:
            raise _Unplain
        target = getattr(message, f.name)
        for item in value:
            if f.message_type is None:
                target.append(_scalar(f, item))
            else:
                _sub_message(f, item, target.add())
    elif f.message_type is not None:
        sub = getattr(message, f.name)
        sub.SetInParent()
        _sub_message(f, value, sub)
    else:
        setattr(message, f.name, _scalar(f, value))


def _map(f: AnyField, value: Any, target: Any) -> None:
    key_field, value_field = f.message_type.fields
    if type(value) is not dict or key_field.type != FieldDescriptor.TYPE_STRING:
        raise _Unplain
    for key, item in value.items():
        if value_field.message_type is None:
            target[key] = _scalar(value_field, item)
        else:
            _sub_message(value_field, item, target[key])


def _sub_message(f: AnyField, value: Any, sub: Message) -> None:
    if f.message_type.full_name in _AS_STRING:
        if type(value) is not str:
            raise _Unplain
        sub.FromJsonString(value)  # type: ignore[attr-defined]
    else:
        _message(value, sub)


def _scalar(f: AnyField, value: Any) -> Any:
    kind = f.cpp_type
    if kind == FieldDescriptor.CPPTYPE_STRING:
        if type(value) is not str or f.type == FieldDescriptor.TYPE_BYTES:
            raise _Unplain
        value.encode()  # a lone surrogate raises: ParseDict names it
        return value
    if kind == FieldDescriptor.CPPTYPE_BOOL:
        if type(value) is not bool:
            raise _Unplain
        return value
    if kind in _INTEGERS:
        if type(value) is int:
            return value
        # int64s are quoted in proto3 JSON: plain decimal digits convert as ParseDict's int().
        if type(value) is str and value.removeprefix("-").isdigit() and value.isascii():
            return int(value)
        raise _Unplain
    if kind == FieldDescriptor.CPPTYPE_DOUBLE:
        if type(value) is int:
            return float(value)
        if type(value) is not float or not math.isfinite(value):
            raise _Unplain
        return value
    if kind == FieldDescriptor.CPPTYPE_ENUM:
        if type(value) is str:
            known = f.enum_type.values_by_name.get(value)
        elif type(value) is int:
            known = f.enum_type.values_by_number.get(value)
        else:
            known = None
        if known is None:
            raise _Unplain
        return known.number
    raise _Unplain  # 32-bit floats: ParseDict checks their range
