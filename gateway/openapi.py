"""The OpenAPI 3 document of every route, built from the same bindings.

Canonical operations get their parameters and schemas from the message
descriptors (proto3 JSON names and types, enums by name, 64-bit integers as
strings as proto3 JSON writes them). Compatible routes are described from
their Starlette routes: the endpoint's docstring, and an ``openapi`` dict
attribute on the endpoint when its module gives a richer description.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import FieldDescriptor
from starlette.routing import BaseRoute, Route

from gateway.bindings import Binding
from gateway.streaming import kind_of

# The stubs type upb and pure-Python descriptors apart; both behave the same here.
AnyDescriptor = Any
AnyField = Any

_NON_WORD = re.compile(r"\W+")
_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "example": "1.5s"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {"type": "object", "additionalProperties": True},
}
_STATUS = {
    "type": "object",
    "description": "google.rpc.Status",
    "properties": {
        "code": {"type": "integer", "description": "gRPC status code"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
    },
}


class Schemas:
    """Component schemas, one per message, collected as operations refer to them."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {"google.rpc.Status": _STATUS}

    def ref(self, descriptor: AnyDescriptor) -> dict[str, Any]:
        if descriptor.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[descriptor.full_name])
        if descriptor.full_name not in self.components:
            self.components[descriptor.full_name] = {}  # placeholder breaks cycles
            self.components[descriptor.full_name] = self._message(descriptor)
        return {"$ref": f"#/components/schemas/{descriptor.full_name}"}

    def _message(self, descriptor: AnyDescriptor) -> dict[str, Any]:
        properties = {f.json_name: self.field(f) for f in descriptor.fields}
        schema = {"type": "object", "properties": properties, "additionalProperties": False}
        required = [f.json_name for f in descriptor.fields if is_required(f)]
        if required:
            schema["required"] = required
        return schema

    def field(self, f: AnyField) -> dict[str, Any]:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            value = f.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self.single(value)}
        schema = self.single(f)
        if f.is_repeated:
            return {"type": "array", "items": schema}
        return schema

    def single(self, f: AnyField) -> dict[str, Any]:
        if f.message_type is not None:
            return self.ref(f.message_type)
        if f.enum_type is not None:
            return {"type": "string", "enum": [v.name for v in f.enum_type.values]}
        return dict(_SCALARS[f.type])


def is_required(f: AnyField) -> bool:
    """Marked ``(google.api.field_behavior) = REQUIRED`` in its proto."""
    behaviors = f.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return field_behavior_pb2.REQUIRED in behaviors


def describe(endpoint: Any, **operation: Any) -> None:
    """Attach OpenAPI operation fields (requestBody, responses, ...) to a compat endpoint."""
    endpoint.openapi = operation


def json_content(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def document(bindings: Iterable[Binding], compat: Iterable[BaseRoute]) -> dict[str, Any]:
    schemas = Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for binding in bindings:
        paths.setdefault(binding.template.replace("=**", "").replace("=*", ""), {})[
            binding.http_method.lower()
        ] = _operation(binding, schemas)
    for route in compat:
        if isinstance(route, Route) and route.include_in_schema:
            for method in sorted((route.methods or set()) - {"HEAD"}):
                paths.setdefault(route.path, {})[method.lower()] = _compat_operation(route, method)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Corral",
            "version": "v1",
            "description": "Canonical routes (/v1/...) are generated from the google.api.http "
            "annotations of the corral.v1 protos; the others are the routes of the "
            "projects Corral replaces, served as they documented them.",
        },
        "paths": paths,
        "components": {"schemas": schemas.components},
    }


def _operation(binding: Binding, schemas: Schemas) -> dict[str, Any]:
    request = binding.request_type.DESCRIPTOR
    parameters: list[dict[str, Any]] = [
        {"name": dotted, "in": "path", "required": True, "schema": {"type": "string"}}
        for dotted in binding.path_fields.values()
    ]
    if binding.body != "*":
        bound = set(binding.path_fields.values()) | {binding.body}
        parameters += _query_parameters(request, schemas, bound)
    op: dict[str, Any] = {
        "operationId": binding.operation_id,
        "summary": binding.method.name,
        "tags": [binding.method.containing_service.name],
        "parameters": parameters,
        "responses": {
            "200": _success(binding, schemas),
            "default": {
                "description": "An error as google.rpc.Status",
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/google.rpc.Status"}
                    }
                },
            },
        },
    }
    if binding.body:
        body_schema = (
            schemas.ref(request)
            if binding.body == "*"
            else schemas.field(request.fields_by_name[binding.body])
        )
        body_fields = (
            request.fields if binding.body == "*" else [request.fields_by_name[binding.body]]
        )
        op["requestBody"] = {
            "required": any(is_required(f) for f in body_fields),
            "content": {"application/json": {"schema": body_schema}},
        }
    return op


def _query_parameters(
    descriptor: AnyDescriptor, schemas: Schemas, bound: set[str]
) -> list[dict[str, Any]]:
    out = []
    for f in descriptor.fields:
        if f.name in bound or f.message_type is not None:
            continue
        schema = schemas.field(f)
        param: dict[str, Any] = {"name": f.name, "in": "query", "schema": schema}
        if is_required(f):
            param["required"] = True
        if f.is_repeated:
            param.update(style="form", explode=True)
        out.append(param)
    return out


def _success(binding: Binding, schemas: Schemas) -> dict[str, Any]:
    response = binding.response_type.DESCRIPTOR
    if binding.streaming:
        kind = kind_of(binding)
        if kind == "text":
            return {
                "description": "Raw output, streamed as written",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        media = "text/event-stream" if kind == "sse" else "application/x-ndjson"
        # Each SSE event's data (each NDJSON line) is one message as JSON: an object.
        return {
            "description": f"A stream of {response.name} ({media}), one JSON object per "
            + ("event's data" if kind == "sse" else "line"),
            "content": {media: {"schema": schemas.ref(response)}},
        }
    schema = (
        schemas.field(response.fields_by_name[binding.response_body])
        if binding.response_body
        else schemas.ref(response)
    )
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


def _compat_operation(route: Route, method: str) -> dict[str, Any]:
    extra: dict[str, Any] = dict(getattr(route.endpoint, "openapi", {}))
    doc = inspect.getdoc(route.endpoint) or route.name
    module = route.endpoint.__module__.rsplit(".", 1)[-1]
    op: dict[str, Any] = {
        "operationId": f"{method.lower()}_{_NON_WORD.sub('_', route.path).strip('_') or 'root'}",
        "summary": doc.splitlines()[0],
        "tags": [f"compat: {module}"],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in route.param_convertors
        ],
        "responses": {"default": {"description": "See the origin's documentation"}},
    }
    op.update(extra)
    # Bad input is answered 4xx on every route: never an undocumented status.
    op["responses"] = {
        **op["responses"],
        "default": op["responses"].get("default", {"description": "An error (4xx, 5xx)"}),
    }
    return op
