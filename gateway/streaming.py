"""Server-streaming RPCs over HTTP, chosen by the shape of the messages.

- A response of one ``bytes`` field (task and job logs) streams as raw text,
  each chunk flushed as the worker writes it (``?follow=true&tail=N``).
- A request with a ``from_index`` field (``WatchEvents``) streams as
  Server-Sent Events whose ``id:`` is the event index, so a browser's
  ``EventSource`` resumes with ``Last-Event-ID`` where it stopped.
- Anything else streams as newline-delimited JSON.

The first message (or the error) is awaited briefly before the headers go
out, so an unknown task is a 404 rather than a 200 with an error inside; a
stream that is quiet for longer (a follow of a silent task) starts anyway.
The gRPC call is cancelled when the client goes away: each response listens
for the disconnect while it streams, even when the stream itself is idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway import upstream
from gateway.bindings import Binding
from gateway.errors import UpstreamError, bad_request, status_response
from gateway.messages import to_json

# The stubs type upb and pure-Python descriptors apart; both behave the same here.
AnyDescriptor = Any
AnyField = Any

FIRST_MESSAGE_WAIT = 0.5
SSE_KEEPALIVE = 15.0


class DisconnectAwareStream(StreamingResponse):
    """A streaming response that stops as soon as the client disconnects."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def stream() -> None:
                with contextlib.suppress(OSError):
                    await self.stream_response(send)
                group.cancel_scope.cancel()

            group.start_soon(stream)
            await self.listen_for_disconnect(receive)
            group.cancel_scope.cancel()


def kind_of(binding: Binding) -> str:
    fields = binding.response_type.DESCRIPTOR.fields
    if len(fields) == 1 and fields[0].type == FieldDescriptor.TYPE_BYTES:
        return "text"
    if "from_index" in binding.request_type.DESCRIPTOR.fields_by_name:
        return "sse"
    return "ndjson"


async def respond(binding: Binding, request: Request, message: Message) -> Response:
    kind = kind_of(binding)
    if kind == "sse":
        resume_from(request, message)
    call = await upstream.server_stream(request, binding.rpc_path, message, binding.response_type)
    first = asyncio.ensure_future(call.read())
    await asyncio.wait({first}, timeout=FIRST_MESSAGE_WAIT)
    if first.done():
        error = first.exception()
        if isinstance(error, grpc.aio.AioRpcError):
            call.cancel()
            return status_response(UpstreamError.from_rpc(error))
        if error is not None:
            call.cancel()
            raise error
    render = _renderer(kind, binding.response_type.DESCRIPTOR)
    media = {"text": "text/plain; charset=utf-8", "sse": "text/event-stream"}
    return DisconnectAwareStream(
        _chunks(call, first, render, kind),
        media_type=media.get(kind, "application/x-ndjson"),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def resume_from(request: Request, message: Message) -> None:
    """``Last-Event-ID: N`` resumes after event N."""
    raw = request.headers.get("last-event-id")
    if raw is None or not raw.strip():
        return
    try:
        last = int(raw)
    except ValueError:
        raise bad_request("Last-Event-ID", f"{raw!r} is not an event index") from None
    if last < 0:
        raise bad_request("Last-Event-ID", "must not be negative")
    message.from_index = last + 1  # type: ignore[attr-defined]


async def _chunks(
    call: Any, first: asyncio.Future[Any], render: Callable[[Any], bytes], kind: str
) -> AsyncIterator[bytes]:
    pending = first
    # An idle event stream gets a comment now and then, so proxies and
    # EventSource keep it open (and a vanished client is noticed).
    idle = SSE_KEEPALIVE if kind == "sse" else None
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=idle)
            if not done:
                yield b": keepalive\n\n"
                continue
            item = pending.result()
            if item is grpc.aio.EOF:
                return
            yield render(item)
            pending = asyncio.ensure_future(call.read())
    except grpc.aio.AioRpcError as err:
        if err.code() is not grpc.StatusCode.CANCELLED:
            yield _error_chunk(UpstreamError.from_rpc(err), kind)
    finally:
        pending.cancel()
        call.cancel()


def _error_chunk(err: UpstreamError, kind: str) -> bytes:
    body = json.dumps({"error": err.status_json()})
    if kind == "sse":
        return f"event: error\ndata: {body}\n\n".encode()
    if kind == "ndjson":
        return (body + "\n").encode()
    # Text streams end with the reason on its own line: a log has no other channel.
    return f"\n[corral: {err.message}]\n".encode()


def _renderer(kind: str, descriptor: AnyDescriptor) -> Callable[[Any], bytes]:
    if kind == "text":
        name = descriptor.fields[0].name
        return lambda m: bytes(getattr(m, name))
    if kind == "ndjson":
        return lambda m: (json.dumps(to_json(m)) + "\n").encode()
    index = _index_path(descriptor)

    def sse(m: Any) -> bytes:
        data = json.dumps(to_json(m))
        event_id = _dig(m, index)
        head = f"id: {event_id}\n" if event_id is not None else ""
        return f"{head}data: {data}\n\n".encode()

    return sse


def _index_path(descriptor: AnyDescriptor) -> tuple[str, ...]:
    """Where the event index lives: ``index`` or ``<message field>.index``."""
    if "index" in descriptor.fields_by_name:
        return ("index",)
    for f in descriptor.fields:
        if f.message_type is not None and "index" in f.message_type.fields_by_name:
            return (f.name, "index")
    return ()


def _dig(message: Any, path: tuple[str, ...]) -> Any:
    if not path:
        return None
    for name in path:
        message = getattr(message, name)
    return message
