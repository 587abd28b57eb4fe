"""A burst of new streams (every worker redialing after a manager restart) is accepted.

grpc's C core caps calls that arrived before the application asked for them
(``grpc.server.max_pending_requests``, default 1,000); while a Python server's
event loop is busy accepting a burst, the calls past the cap were cancelled.
The benchmark saw 4,855 refused connects when 5,000 workers dialed at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from corral.serving import start_server

SERVICE = "corraltest.Burst"
STREAMS = 4000


async def _open(request_iterator: Any, context: Any) -> None:
    await context.read()
    await context.write(b"welcome")
    await context.read()  # held open until the client leaves


def _register(server: grpc.aio.Server) -> str:
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Open": grpc.stream_stream_rpc_method_handler(_open)}
    )
    server.add_generic_rpc_handlers((handler,))
    return SERVICE


async def test_thousands_of_streams_opened_at_once_all_get_an_answer() -> None:
    running = await start_server("127.0.0.1:0", [_register])
    target = f"127.0.0.1:{running.port}"
    # Separate connections, as separate machines would dial.
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(40)
    ]
    calls = []

    async def dial(i: int) -> bytes:
        call = channels[i % len(channels)].stream_stream(f"/{SERVICE}/Open")()
        calls.append(call)
        await call.write(b"hello")
        return bytes(await call.read())

    try:
        answers = await asyncio.wait_for(
            asyncio.gather(*(dial(i) for i in range(STREAMS)), return_exceptions=True), 90
        )
        refused = [a for a in answers if not isinstance(a, bytes)]
        assert refused == [], f"{len(refused)} of {STREAMS} refused, e.g. {refused[0]!r}"
        assert answers == [b"welcome"] * STREAMS
    finally:
        for call in calls:
            call.cancel()
        for channel in channels:
            await channel.close(None)
        await running.stop(0)
