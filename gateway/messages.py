"""Proto3 JSON in and out, and path and query parameters bound to fields.

JSON bodies are parsed as ``json_format`` parses them (``gateway.parsing``)
with unknown fields refused; the unknown field is found first by walking the
JSON against the descriptor, so the 400 names it by its dotted path
(``spec.foo``) rather than quoting the parser. Path and query parameters
bind to (nested, dotted) fields by proto or JSON name; repeated fields take
repeated parameters, and enums take their full name (``TASK_STATE_RUNNING``),
their short name (``running``) or number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from starlette.requests import Request

from corral import jsontext
from corral.errors import ValidationError
from gateway import parsing, printing
from gateway.errors import UpstreamError, bad_request

# The stubs type upb and pure-Python descriptors apart; both behave the same here.
AnyDescriptor = Any
AnyField = Any

_FAILED_AT = re.compile(r"Failed to parse (\w+) field: ")
# Each protobuf integer type's range (JSON carries them as numbers or strings).
INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


# -- JSON bodies ---------------------------------------------------------------


async def read_json(request: Request) -> Any:
    """The body as JSON; an empty body is ``{}``. (Starlette enforces the size limit.)"""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return jsontext.loads(raw)
    except ValidationError as err:
        raise bad_request(err.field, err.problem) from None


def parse_into(data: Any, message: Message, field: str = "") -> None:
    """Fill ``message`` from proto3 JSON, naming the offending field on failure."""
    descriptor = message.DESCRIPTOR
    if not descriptor.full_name.startswith("google.protobuf.") and not isinstance(data, dict):
        raise bad_request(field or "body", f"must be a JSON object ({descriptor.name})")
    unknown = _unknown_field(data, descriptor, f"{field}." if field else "")
    if unknown:
        raise bad_request(unknown, f"unknown field of {_owner(descriptor, unknown, field)}")
    wrong = _wrong_value(data, descriptor, f"{field}." if field else "")
    if wrong is not None:
        raise bad_request(*wrong)
    try:
        parsing.fill(data, message)
    except json_format.ParseError as err:
        raise _parse_error(str(err), field) from None


def _parse_error(text: str, field: str) -> UpstreamError:
    names = _FAILED_AT.findall(text)
    problem = _FAILED_AT.sub("", text).split(" at ")[0].rstrip(".") or text
    path = ".".join([*([field] if field else []), *names])
    return bad_request(path or "body", problem)


def _owner(descriptor: AnyDescriptor, unknown: str, field: str) -> str:
    # The message that lacks the field, for the error text.
    parts = unknown.split(".")[len(field.split(".")) if field else 0 : -1]
    current = descriptor
    for part in parts:
        f = _field(current, re.sub(r"\[.*\]$", "", part))
        if f is None or f.message_type is None:
            break
        current = f.message_type
    return str(current.full_name)


def _field(descriptor: AnyDescriptor, name: str) -> AnyField | None:
    """The field called ``name`` by its proto name or, failing that, its JSON name."""
    names = _names.get(descriptor.full_name)
    if names is None:
        names = {}
        for f in descriptor.fields:
            names.setdefault(f.json_name, f)
        names.update(descriptor.fields_by_name)
        _names[descriptor.full_name] = names
    return names.get(name)


# Per message type: its fields by JSON and proto names (the two walks below ask per key).
_names: dict[str, dict[str, AnyField]] = {}


def _unknown_field(data: Any, descriptor: AnyDescriptor, prefix: str) -> str:
    if not isinstance(data, dict) or descriptor.full_name.startswith("google.protobuf."):
        return ""
    for key, value in data.items():
        f = _field(descriptor, key)
        if f is None:
            return f"{prefix}{key}"
        sub = f.message_type
        if sub is None:
            continue
        if sub.GetOptions().map_entry:
            value_type = sub.fields_by_name["value"].message_type
            if value_type is not None and isinstance(value, dict):
                for k, v in value.items():
                    found = _unknown_field(v, value_type, f"{prefix}{key}[{k!r}].")
                    if found:
                        return found
        elif f.is_repeated and isinstance(value, list):
            for i, item in enumerate(value):
                found = _unknown_field(item, sub, f"{prefix}{key}[{i}].")
                if found:
                    return found
        else:
            found = _unknown_field(value, sub, f"{prefix}{key}.")
            if found:
                return found
    return ""


def _wrong_value(data: Any, descriptor: AnyDescriptor, prefix: str) -> tuple[str, str] | None:
    """The first value proto3 JSON would take but Corral must refuse, with why.

    ``null`` would silently mean "the default" (``{"cmd": null}`` ran the default
    command), and an enum number the proto does not define would reach the
    servers as a value no code handles.
    """
    if not isinstance(data, dict) or descriptor.full_name.startswith("google.protobuf."):
        return None
    for key, value in data.items():
        f = _field(descriptor, key)
        if f is None:
            continue
        path = f"{prefix}{key}"
        sub = f.message_type
        if value is None:
            if sub is not None and sub.full_name == "google.protobuf.Value":
                continue
            return path, "must not be null (leave the field out for its default)"
        if sub is not None and sub.GetOptions().map_entry:
            value_field = sub.fields_by_name["value"]
            if isinstance(value, dict):
                for k, v in value.items():
                    found = _wrong_item(v, value_field, f"{path}[{k!r}]")
                    if found is not None:
                        return found
        elif f.is_repeated and isinstance(value, list):
            for i, item in enumerate(value):
                found = _wrong_item(item, f, f"{path}[{i}]")
                if found is not None:
                    return found
        else:
            found = _wrong_item(value, f, path)
            if found is not None:
                return found
    return None


def _wrong_item(value: Any, f: AnyField, path: str) -> tuple[str, str] | None:
    if f.message_type is not None:
        if value is None and f.message_type.full_name != "google.protobuf.Value":
            return path, "must not be null"
        return _wrong_value(value, f.message_type, f"{path}.")
    if value is None:
        return path, "must not be null"
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if f.type == FieldDescriptor.TYPE_ENUM and number not in (None, *f.enum_type.values_by_number):
        names = ", ".join(v.name for v in f.enum_type.values)
        return path, f"{value} is not one of {names}"
    return None


# -- path and query parameters ---------------------------------------------------


def bind(message: Message, dotted: str, values: Sequence[str], source: str) -> None:
    """Set the (nested) field ``dotted`` from string parameters."""
    target = message
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        f = _field(target.DESCRIPTOR, part)
        if f is None:
            raise bad_request(
                dotted, f"unknown {source} parameter for {message.DESCRIPTOR.full_name}"
            )
        last = i == len(parts) - 1
        if not last:
            if f.message_type is None or f.is_repeated:
                raise bad_request(dotted, f"{part} is not a nested message")
            target = getattr(target, f.name)
            continue
        _set(target, f, values, dotted)


def _set(target: Message, f: AnyField, values: Sequence[str], dotted: str) -> None:
    if f.message_type is not None and f.message_type.GetOptions().map_entry:
        raise bad_request(dotted, "map fields cannot be set from parameters")
    if f.message_type is not None:
        # Well-known types (Timestamp, Duration, wrappers) take their JSON string form.
        if f.is_repeated:
            for value in values:
                _parse_scalar_message(getattr(target, f.name).add(), value, dotted)
        else:
            _parse_scalar_message(getattr(target, f.name), values[-1], dotted)
        return
    converted = [_scalar(f, value, dotted) for value in values]
    if f.is_repeated:
        getattr(target, f.name).extend(converted)
    else:
        setattr(target, f.name, converted[-1])


def _parse_scalar_message(message: Message, value: str, dotted: str) -> None:
    try:
        json_format.Parse(json.dumps(value), message)
    except json_format.ParseError as err:
        raise bad_request(dotted, str(err)) from None


def _scalar(f: AnyField, value: str, dotted: str) -> Any:
    kind = f.type
    if kind == FieldDescriptor.TYPE_STRING:
        return value
    if kind == FieldDescriptor.TYPE_BYTES:
        return value.encode()
    if kind == FieldDescriptor.TYPE_BOOL:
        lowered = value.lower()
        if lowered in ("true", "1", ""):
            return True
        if lowered in ("false", "0"):
            return False
        raise bad_request(dotted, f"{value!r} is not true or false")
    if kind == FieldDescriptor.TYPE_ENUM:
        return _enum(f.enum_type, value, dotted)
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        try:
            return float(value)
        except ValueError:
            raise bad_request(dotted, f"{value!r} is not a number") from None
    low, high = INT_RANGES[kind]
    try:
        number = int(value)
    except ValueError:
        raise bad_request(dotted, f"{value!r} is not an integer") from None
    if not low <= number <= high:
        raise bad_request(dotted, f"{number} is out of range [{low}, {high}]")
    return number


def enum_prefix(enum: Any) -> str:
    """``TaskState`` -> ``TASK_STATE_``, the prefix buf's style puts on every value."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"


def _enum(enum: Any, value: str, dotted: str) -> int:
    for candidate in (value, value.upper(), enum_prefix(enum) + value.upper().replace("-", "_")):
        found = enum.values_by_name.get(candidate)
        if found is not None:
            return int(found.number)
    if value.isascii() and value.lstrip("-").isdigit() and int(value) in enum.values_by_number:
        return int(value)
    names = ", ".join(v.name for v in enum.values)
    raise bad_request(dotted, f"{value!r} is not one of {names}")


# -- responses -----------------------------------------------------------------


def to_json(message: Message) -> Any:
    """Proto3 JSON with every field present, so curl users see zero values too."""
    return printing.to_dict(message)


def response_json(message: Message, response_body: str) -> Any:
    if not response_body:
        return to_json(message)
    f = message.DESCRIPTOR.fields_by_name[response_body]
    return to_json(message).get(f.json_name)
