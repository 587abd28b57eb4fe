"""Requests checked before any servicer sees them, for every RPC of every server.

Three kinds of bad input used to reach code that could not handle them and
come back UNKNOWN or INTERNAL: bytes that do not decode as the request type,
enum numbers the protos do not define (proto3 enums are open: ``states:
[99]`` decodes fine), and required fields left empty (``{"id": ""}`` looked
up as a task called ""). ``RequestGuard`` answers all three
INVALID_ARGUMENT with a ``BadRequest`` naming the field, in one place:

- undecodable bytes: the request deserializer is wrapped; a failure becomes
  a marker that the wrapped behavior refuses (a deserializer itself cannot
  choose the status);
- enums and required fields: the request is walked along only the fields
  that can hold an enum or a ``(google.api.field_behavior) = REQUIRED``
  field, worked out once per message type, so a big SubmitTasks costs a few
  attribute reads per task.

Client-streaming calls (the worker stream) check their own messages.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.api import field_behavior_pb2
from google.protobuf.descriptor import FieldDescriptor

from corral.errors import ValidationError

AnyDescriptor = Any
AnyField = Any


class _Undecodable:
    def __init__(self, type_name: str, error: Exception) -> None:
        self.problem = f"cannot be decoded as {type_name}: {type(error).__name__}"


def problem_of(message: Any, prefix: str = "") -> tuple[str, str] | None:
    """The first undefined enum number or empty required field, with why; None when fine."""
    for f, required in _checked_fields(message.DESCRIPTOR):
        path = f"{prefix}{f.name}"
        value = getattr(message, f.name)
        if required and _empty(message, f, value):
            return path, "is required"
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            inner = f.message_type.fields_by_name["value"]
            for key, item in value.items():
                found = _item_problem(inner, item, f"{path}[{key!r}]")
                if found:
                    return found
        elif f.is_repeated:
            for i, item in enumerate(value):
                found = _item_problem(f, item, f"{path}[{i}]")
                if found:
                    return found
        elif f.message_type is None or message.HasField(f.name):
            found = _item_problem(f, value, path)
            if found:
                return found
    return None


def _item_problem(f: AnyField, value: Any, path: str) -> tuple[str, str] | None:
    if f.message_type is not None:
        return problem_of(value, f"{path}.")
    if f.type == FieldDescriptor.TYPE_ENUM and value not in f.enum_type.values_by_number:
        names = ", ".join(v.name for v in f.enum_type.values)
        return path, f"{value} is not one of {names}"
    return None


def _empty(message: Any, f: AnyField, value: Any) -> bool:
    if f.is_repeated:
        return len(value) == 0
    if f.message_type is not None:
        return not message.HasField(f.name)
    return not value


_CHECKED: dict[str, tuple[tuple[AnyField, bool], ...]] = {}


def _checked_fields(descriptor: AnyDescriptor) -> tuple[tuple[AnyField, bool], ...]:
    """(field, required) for the fields worth visiting: enums, required ones, and
    messages that contain either. Computed once per type; cycles end at a placeholder."""
    name = descriptor.full_name
    found = _CHECKED.get(name)
    if found is not None:
        return found
    _CHECKED[name] = ()  # placeholder: a recursive type sees itself as clean while computed
    out = []
    for f in descriptor.fields:
        required = (
            field_behavior_pb2.REQUIRED
            in f.GetOptions().Extensions[field_behavior_pb2.field_behavior]
        )
        sub = f.message_type
        if sub is not None and sub.GetOptions().map_entry:
            sub = sub.fields_by_name["value"].message_type
            enum = f.message_type.fields_by_name["value"].enum_type is not None
        else:
            enum = f.enum_type is not None
        deep = (
            sub is not None
            and not sub.full_name.startswith("google.")
            and bool(_checked_fields(sub))
        )
        if required or enum or deep:
            out.append((f, required))
    _CHECKED[name] = tuple(out)
    return _CHECKED[name]


# How ``_clean`` reads a checked field: its kind, and for enums the numbers defined.
_SCALAR, _MESSAGE, _SCALARS, _MESSAGES, _SCALAR_MAP, _MESSAGE_MAP = range(6)
_Step = tuple[str, bool, int, "frozenset[int] | None"]
_PLANS: dict[str, tuple[_Step, ...]] = {}


def _plan(descriptor: AnyDescriptor) -> tuple[_Step, ...]:
    """``_checked_fields`` as (name, required, kind, enum numbers), once per type."""
    found = _PLANS.get(descriptor.full_name)
    if found is not None:
        return found
    steps = []
    for f, required in _checked_fields(descriptor):
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            inner = f.message_type.fields_by_name["value"]
            kind = _MESSAGE_MAP if inner.message_type is not None else _SCALAR_MAP
            enums = inner.enum_type
        else:
            many = f.is_repeated
            if f.message_type is not None:
                kind = _MESSAGES if many else _MESSAGE
            else:
                kind = _SCALARS if many else _SCALAR
            enums = f.enum_type
        numbers = frozenset(enums.values_by_number) if enums is not None else None
        steps.append((f.name, required, kind, numbers))
    _PLANS[descriptor.full_name] = found = tuple(steps)
    return found


def _clean(message: Any) -> bool:
    """Whether ``problem_of(message)`` is None, without building a single field path.

    Nearly every request is clean; the walk that names the field runs only for the
    rest. A SubmitTasks of thousands of specs spent more on those paths' strings
    than on the checks.
    """
    for name, required, kind, numbers in _plan(message.DESCRIPTOR):
        value = getattr(message, name)
        if kind == _MESSAGE:
            if not message.HasField(name):
                if required:
                    return False
            elif not _clean(value):
                return False
            continue
        if required and not value:
            return False
        if kind == _SCALAR:
            if numbers is not None and value not in numbers:
                return False
            continue
        items = value.values() if kind >= _SCALAR_MAP else value
        if kind in (_MESSAGES, _MESSAGE_MAP):
            if not all(_clean(item) for item in items):
                return False
        elif numbers is not None and not numbers.issuperset(items):
            return False
    return True


def _refusal(request: Any) -> ValidationError | None:
    if isinstance(request, _Undecodable):
        return ValidationError("request", request.problem)
    if _clean(request):
        return None
    found = problem_of(request)
    return ValidationError(*found) if found else None


class RequestGuard(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, refuse: Callable[[Any, ValidationError], Awaitable[None]]) -> None:
        # How to answer: serving's rich status (passed in to keep this module free of it).
        self._refuse = refuse

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        decode = handler.request_deserializer
        type_name = getattr(getattr(decode, "__self__", None), "DESCRIPTOR", None)
        name = type_name.full_name if type_name is not None else "the request type"

        def safe_decode(data: bytes) -> Any:
            try:
                return decode(data)
            except Exception as err:  # DecodeError, or anything the C decoder raises
                return _Undecodable(name, err)

        refuse = self._refuse
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: Any) -> Any:
                refusal = _refusal(request)
                if refusal is not None:
                    await refuse(context, refusal)
                return await inner(request, context)

            return handler._replace(request_deserializer=safe_decode, unary_unary=unary)
        inner_stream = handler.unary_stream

        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            refusal = _refusal(request)
            if refusal is not None:
                await refuse(context, refusal)
            result = inner_stream(request, context)
            if inspect.isasyncgen(result):
                async for item in result:
                    yield item
            else:
                await result

        return handler._replace(request_deserializer=safe_decode, unary_stream=stream)
