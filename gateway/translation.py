"""Canonical routes: one Starlette route per annotated RPC binding.

A handler builds the request message (path parameters, then the body or
query parameters as the binding says), invokes the RPC generically by its
path on the shared channel, and answers proto3 JSON, or streams (see
``gateway.streaming``). Errors, the gateway's own included, are
``google.rpc.Status`` JSON with the HTTP status of the canonical table.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from google.protobuf.message import Message
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway import streaming, upstream
from gateway.bindings import Binding
from gateway.errors import UpstreamError, bad_request, status_response
from gateway.messages import bind, parse_into, read_json, response_json


def routes(bindings: list[Binding]) -> list[BaseRoute]:
    # Literal paths first, so /v1/tasks:batch is not taken for /v1/tasks/{id}.
    ordered = sorted(bindings, key=lambda b: (b.path.count("{"), -len(b.path)))
    segment = _segment_convertor(bindings)
    return [
        Route(segment(b.path), _handler(b), methods=[b.http_method], name=b.operation_id)
        for b in ordered
    ]


def _segment_convertor(bindings: list[Binding]) -> Callable[[str], str]:
    """A path parameter that never ends in one of the routes' ``:verb``s.

    Without it ``GET /v1/nodes/x:drain`` (drain is POST) fell through to
    ``GET /v1/nodes/{id}`` with the id ``x:drain``. Ids may contain ':' (Cube
    sends UUIDs, users pick their own), so only the verbs are excluded: such a
    request now matches the verb's route alone and gets 405.
    """
    verbs = sorted({m.group(1) for b in bindings if (m := _VERB.search(b.path))})
    if not verbs:
        return lambda path: path

    class Segment(Convertor[str]):
        regex = "[^/]+" + "".join(f"(?<!:{re.escape(v)})" for v in verbs)

        def convert(self, value: str) -> str:
            return value

        def to_string(self, value: str) -> str:
            return value

    name = "corral_segment_" + "_".join(verbs)
    register_url_convertor(name, Segment())
    return lambda path: _PARAM.sub(lambda m: "{" + m.group(1) + ":" + name + "}", path)


_VERB = re.compile(r":([A-Za-z][A-Za-z0-9]*)$")
# Single-segment parameters ({id}); {name:path} ones keep their convertor.
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _handler(binding: Binding) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        try:
            message = await build_request(binding, request)
            if binding.streaming:
                return await streaming.respond(binding, request, message)
            reply = await upstream.unary(request, binding.rpc_path, message, binding.response_type)
        except UpstreamError as err:
            return status_response(err)
        return JSONResponse(response_json(reply, binding.response_body))

    handle.__doc__ = binding.method.name
    return handle


async def build_request(binding: Binding, request: Request) -> Message:
    message = binding.request_type()
    if binding.body:
        data = await read_json(request)
        if binding.body == "*":
            parse_into(data, message)
        else:
            field = message.DESCRIPTOR.fields_by_name[binding.body]
            if field.message_type is None:
                raise bad_request(binding.body, "body binding to a scalar is not supported")
            parse_into(data, getattr(message, binding.body), binding.body)
    for param, dotted in binding.path_fields.items():
        bind(message, dotted, [str(request.path_params[param])], "path")
    if binding.body != "*":
        bound = set(binding.path_fields.values())
        for key in dict.fromkeys(request.query_params.keys()):
            if key in bound:
                continue
            if binding.body and key.split(".")[0] == binding.body:
                raise bad_request(key, "is bound to the body, not the query")
            bind(message, key, request.query_params.getlist(key), "query")
    return message
