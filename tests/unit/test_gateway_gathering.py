"""The gateway's HTTP serving: one write per response, streams still leave at once, uvloop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from uvicorn.server import ServerState

from corral import loops
from gateway.gathering import GatheringHttpToolsProtocol
from gateway.server import _config, run

GET = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"


class RecordingTransport:
    """What the protocol writes, in order; ``wrote`` is set at each write."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []
        self.wrote = asyncio.Event()
        self.closing = False

    def write(self, data: bytes) -> None:
        self.events.append(("write", bytes(data)))
        self.wrote.set()

    def close(self) -> None:
        self.events.append(("close", b""))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 5000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    @property
    def writes(self) -> list[bytes]:
        return [data for kind, data in self.events if kind == "write"]


async def answered(app: Any, request: bytes) -> tuple[RecordingTransport, set[Any]]:
    """Feed ``request`` to a protocol serving ``app``; return its transport and ASGI tasks."""
    config = uvicorn.Config(app, lifespan="off", log_level="warning")
    state = ServerState()
    protocol = GatheringHttpToolsProtocol(config=config, server_state=state, app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(request)
    return transport, state.tasks


async def json_app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    body = b'{"ok":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def test_a_response_leaves_in_one_write() -> None:
    transport, tasks = await answered(json_app, GET)
    await asyncio.gather(*tasks)
    assert len(transport.writes) == 1
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and body == b'{"ok":true}'


async def test_a_closing_response_is_written_before_the_close() -> None:
    request = b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    transport, tasks = await answered(json_app, request)
    await asyncio.gather(*tasks)
    assert [kind for kind, _ in transport.events] == ["write", "close"]
    assert transport.writes[0].endswith(b'{"ok":true}')


async def test_a_streams_headers_and_events_leave_while_it_waits() -> None:
    release = asyncio.Event()

    async def stream_app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b"data: 2\n\n", "more_body": False})

    transport, tasks = await answered(stream_app, GET)
    # Nothing more is sent until `release`: the first event must not wait for it.
    async with asyncio.timeout(10):
        while b"data: 1" not in b"".join(transport.writes):
            transport.wrote.clear()
            await transport.wrote.wait()
    assert b"data: 2" not in b"".join(transport.writes)
    release.set()
    await asyncio.gather(*tasks)
    assert b"".join(transport.writes).endswith(b"data: 2\n\n\r\n0\r\n\r\n")


def test_the_gateway_serves_with_the_gathering_protocol() -> None:
    config = _config(Starlette(), "127.0.0.1:0")
    assert config.http is GatheringHttpToolsProtocol


def test_the_gateway_runs_on_the_servers_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []

    def on_chosen_loop(main: Coroutine[Any, Any, None]) -> None:
        ran.append(main.__qualname__)
        main.close()

    def on_plain_asyncio(main: Coroutine[Any, Any, None]) -> None:
        main.close()
        raise AssertionError("the gateway ran on asyncio.run, not corral.loops.run")

    monkeypatch.setattr(loops, "run", on_chosen_loop)
    monkeypatch.setattr(asyncio, "run", on_plain_asyncio)
    run("127.0.0.1:1", "127.0.0.1:0")
    assert ran == ["run.<locals>.main"]
