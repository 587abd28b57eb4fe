"""One ``send`` per response: uvicorn's HTTP protocol with its writes gathered.

uvicorn writes a response's status line and headers when the app sends
``http.response.start`` and its body when the app sends
``http.response.body``: two ``send`` syscalls, two TCP segments and two
wake-ups of the client for every JSON answer. On loopback a ``send`` also runs
the receiver's TCP processing, so the second one cost the gateway about as
much CPU as its whole JSON rendering (py-spy and cProfile of ``python -m
bench.gateway``: ``socket.send`` was a fifth of the gateway's busy time).

Here the writes of one step of the event loop are joined and leave in one
``send`` when the response is complete, or at the next step at the latest, so
a stream's headers and each of its events still leave as soon as they are
written. Everything else goes to uvicorn's own transport untouched.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _GatheredWrites:
    """A transport whose writes wait for ``flush`` (called at the latest one loop step later)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:
        # Reading, flow control, get_extra_info, abort...: the real transport's.
        return getattr(self._transport, name)


class GatheringHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, one ``send`` per complete response."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, _GatheredWrites(transport, self.loop)))

    def on_response_complete(self) -> None:
        cast(_GatheredWrites, self.transport).flush()
        super().on_response_complete()
