"""Proto3 JSON out, planned once per message type instead of decided per field.

``json_format.MessageToDict`` works out, for every field of every message it
prints, whether it is a map, repeated, an enum, an int64, a well-known type,
and which of its fields lack presence; for a ``Task`` that was a third of the
gateway's own work per request (cProfile of a POST /v1/tasks: 1.0 of 3.9 s).
Here those answers are computed once per message type, into a list of
(JSON name, converter) and the defaults to add, and a message is printed by
walking its set fields.

The output is exactly ``MessageToDict(message,
always_print_fields_with_no_presence=True)``, key order included (the set
fields by number, then the unset fields without presence in declaration
order), as ``tests/unit/test_gateway_printing.py`` checks on every corral.v1
message. What this plan does not cover goes to ``json_format`` itself: the
well-known types (Timestamp, Duration, Struct, Any, wrappers...), closed
enums, 32-bit floats (printed by their shortest round-trip) and extensions;
Timestamp, Duration and FieldMask print themselves, as json_format has them.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

Printer = Callable[[Message], Any]
Converter = Callable[[Any], Any]
# The stubs type upb and pure-Python descriptors apart (and say message_type may be
# None, which the checks here rule out first); both behave the same here.
AnyField = Any

_INT64 = {
    FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT64,
}
_NOT_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}
_printers: dict[str, Printer] = {}


def to_dict(message: Message) -> Any:
    """``message`` as proto3 JSON data, with every field without presence present."""
    return printer(message.DESCRIPTOR)(message)


def printer(descriptor: Any) -> Printer:
    found = _printers.get(descriptor.full_name)
    if found is None:
        found = _printers[descriptor.full_name] = _plan(descriptor)
    return found


# json_format prints these with their own ToJsonString.
_AS_STRING = {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}


def _as_string(message: Any) -> str:
    return str(message.ToJsonString())


def _by_json_format(message: Message) -> Any:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def _plan(descriptor: Any) -> Printer:
    if descriptor.full_name in _AS_STRING:
        return _as_string
    if descriptor.full_name.startswith("google.protobuf.") or not all(
        _plain(f) for f in descriptor.fields
    ):
        return _by_json_format
    converters = {f.number: (f.json_name, _converter(f)) for f in descriptor.fields}
    defaults = [(f.json_name, _default(f)) for f in descriptor.fields if not f.has_presence]

    def print_message(message: Message) -> Any:
        js: dict[str, Any] = {}
        try:
            for field, value in message.ListFields():
                name, convert = converters[field.number]
                js[name] = convert(value)
        except KeyError:  # an extension: not planned for
            return _by_json_format(message)
        for name, default in defaults:
            if name not in js:
                js[name] = default()
        return js

    return print_message


def _plain(f: AnyField) -> bool:
    """Whether the plan prints ``f`` exactly as json_format does."""
    if f.cpp_type == FieldDescriptor.CPPTYPE_FLOAT:
        return False
    return not (f.enum_type is not None and f.enum_type.is_closed)


def _converter(f: AnyField) -> Converter:
    if _is_map(f):
        key = _map_key
        value = _single(f.message_type.fields_by_name["value"])
        return lambda entries: {key(k): value(entries[k]) for k in entries}
    single = _single(f)
    if f.is_repeated:
        if single is _same:
            return list
        return lambda items: [single(item) for item in items]
    return single


def _single(f: AnyField) -> Converter:
    kind = f.cpp_type
    if kind == FieldDescriptor.CPPTYPE_MESSAGE:
        sub = f.message_type

        def print_sub(message: Message) -> Any:
            # Looked up per call, not planned now: message types may nest themselves.
            return printer(sub)(message)

        return print_sub
    if kind == FieldDescriptor.CPPTYPE_ENUM:
        if f.enum_type.full_name == "google.protobuf.NullValue":
            return lambda _: None
        names = {v.number: v.name for v in f.enum_type.values}
        return lambda number: names.get(number, number)
    if f.type == FieldDescriptor.TYPE_BYTES:
        return lambda data: base64.b64encode(data).decode("utf-8")
    if kind in _INT64:
        return str
    if kind == FieldDescriptor.CPPTYPE_DOUBLE:
        return _double
    return _same


def _default(f: AnyField) -> Callable[[], Any]:
    if _is_map(f):
        return dict
    if f.is_repeated:
        return list
    value = _single(f)(f.default_value)
    return lambda: value


def _is_map(f: AnyField) -> bool:
    return f.message_type is not None and f.message_type.GetOptions().map_entry


def _map_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _double(value: float) -> Any:
    if math.isfinite(value):
        return value
    return _NOT_FINITE.get(value, "NaN")


def _same(value: Any) -> Any:
    return value
