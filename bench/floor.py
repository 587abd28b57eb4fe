"""The floor: what bare ``grpc.aio`` does on this machine, the reference for the other cases.

Three figures, each between two processes over 127.0.0.1:
- unary echo calls/s (64 calls in flight) and the sequential round trip;
- bidi-stream echo messages/s on one stream, writes and reads pipelined;
- the batched fan-out floor: ``ids`` task ids spread over ``streams`` open
  streams, one message per stream, each acked back as one message. This is
  dispatch with every piece of orchestration removed, so
  ``dispatch.placements_per_s / fanout_ids_per_s`` says how much of the
  hardware's floor Corral keeps.

No proto is needed: a generic handler with bytes in and bytes out.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing.connection
import statistics
import time
import uuid
from typing import Any

import grpc

from bench import figures, harness, spawning

SERVICE = "corralbench.Echo"
CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]


# --- the echo server (child process) ---


class EchoServer:
    def __init__(self) -> None:
        self.fanout: list[grpc.aio.ServicerContext[bytes, bytes]] = []
        self.acks: asyncio.Queue[int] = asyncio.Queue()
        self.joined = asyncio.Condition()

    async def unary(self, request: bytes, context: Any) -> bytes:
        return request

    async def stream(self, requests: Any, context: Any) -> Any:
        async for request in requests:
            yield request

    async def fanout_stream(self, requests: Any, context: Any) -> None:
        """A stream that waits for fan-out rounds; every message read is an ack."""
        await context.read()  # hello
        async with self.joined:
            self.fanout.append(context)
            self.joined.notify_all()
        while True:
            ack = await context.read()
            if ack is grpc.aio.EOF:
                return
            self.acks.put_nowait(ack.count(b",") + 1)

    async def go(self, request: bytes, context: Any) -> bytes:
        """One fan-out round: ``ids,streams`` in; elapsed seconds out."""
        ids, streams = (int(x) for x in request.split(b","))
        async with self.joined:
            await asyncio.wait_for(
                self.joined.wait_for(lambda: len(self.fanout) >= streams), timeout=30
            )
        targets = self.fanout[:streams]
        per = -(-ids // len(targets))
        batches = [
            b",".join(uuid.uuid4().hex.encode() for _ in range(min(per, ids - i * per)))
            for i in range(len(targets))
        ]
        started = time.perf_counter()
        for ctx, batch in zip(targets, batches, strict=True):
            await ctx.write(batch)
        acked = 0
        while acked < ids:
            acked += await self.acks.get()
        return str(time.perf_counter() - started).encode()


def _server_main(conn: multiprocessing.connection.Connection) -> None:
    asyncio.run(_serve(conn))


async def _serve(conn: multiprocessing.connection.Connection) -> None:
    echo = EchoServer()
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(echo.unary),
            "Stream": grpc.stream_stream_rpc_method_handler(echo.stream),
            "Fanout": grpc.stream_stream_rpc_method_handler(echo.fanout_stream),
            "Go": grpc.unary_unary_rpc_method_handler(echo.go),
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    conn.send(("ok", port))
    await spawning.serve_commands(conn, {"stop": lambda _: None})
    await server.stop(0)


# --- fan-out clients (child processes, like simulated workers) ---


def _clients_main(
    conn: multiprocessing.connection.Connection, target: str, streams: int, per_channel: int
) -> None:
    asyncio.run(_clients(conn, target, streams, per_channel))


async def _clients(
    conn: multiprocessing.connection.Connection, target: str, streams: int, per_channel: int
) -> None:
    channels = [
        grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        for _ in range(-(-streams // per_channel))
    ]

    async def one(channel: grpc.aio.Channel) -> None:
        call = channel.stream_stream(f"/{SERVICE}/Fanout")()
        await call.write(b"hello")
        while True:
            batch = await call.read()
            if batch is grpc.aio.EOF:
                return
            await call.write(batch)  # the ack carries the same ids back

    tasks = [asyncio.create_task(one(channels[i // per_channel])) for i in range(streams)]
    conn.send(("ok", streams))
    await spawning.serve_commands(conn, {"stop": lambda _: None})
    for task in tasks:
        task.cancel()
    for channel in channels:
        await channel.close(None)


# --- the measurements (parent) ---


async def unary_rate(channel: grpc.aio.Channel, calls: int, in_flight: int) -> float:
    method = channel.unary_unary(f"/{SERVICE}/Unary")
    payload = b"x" * 64
    per = calls // in_flight

    async def loop() -> None:
        for _ in range(per):
            await method(payload, timeout=10)

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(in_flight)))
    return per * in_flight / (time.perf_counter() - started)


async def unary_rtt(channel: grpc.aio.Channel, calls: int) -> list[float]:
    method = channel.unary_unary(f"/{SERVICE}/Unary")
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await method(b"x" * 64, timeout=10)
        samples.append(time.perf_counter() - started)
    return samples


async def stream_rate(channel: grpc.aio.Channel, messages: int) -> float:
    call = channel.stream_stream(f"/{SERVICE}/Stream")()
    payload = b"x" * 64

    async def writer() -> None:
        for _ in range(messages):
            await call.write(payload)
        await call.done_writing()

    started = time.perf_counter()
    write = asyncio.create_task(writer())
    received = 0
    while received < messages:
        if await call.read() is grpc.aio.EOF:
            break
        received += 1
    await write
    return received / (time.perf_counter() - started)


async def fanout_rate(
    target: str, *, ids: int, streams: int, procs: int, per_channel: int, rounds: int
) -> list[float]:
    clients = [
        spawning.spawn(_clients_main, target, streams // procs, per_channel) for _ in range(procs)
    ]
    try:
        for client in clients:
            await client.answer(60)
        async with grpc.aio.insecure_channel(target) as channel:
            go = channel.unary_unary(f"/{SERVICE}/Go")
            rates = []
            for _ in range(rounds):
                elapsed = float(await go(f"{ids},{streams}".encode(), timeout=60))
                rates.append(ids / elapsed)
            return rates
    finally:
        for client in clients:
            await client.close()


async def measure(
    *, calls: int, messages: int, ids: int, streams: int, procs: int, per_channel: int, rounds: int
) -> dict[str, Any]:
    server = spawning.spawn(_server_main)
    try:
        port = await server.answer(30)
        target = f"127.0.0.1:{port}"
        async with grpc.aio.insecure_channel(target) as channel:
            await unary_rtt(channel, 200)  # warm-up
            rtt = await unary_rtt(channel, min(calls, 2000))
            unary = await unary_rate(channel, calls, 64)
            stream = await stream_rate(channel, messages)
        fanout = await fanout_rate(
            target, ids=ids, streams=streams, procs=procs, per_channel=per_channel, rounds=rounds
        )
    finally:
        await server.close()
    return {
        "name": "floor",
        "params": {
            "unary_calls": calls,
            "unary_in_flight": 64,
            "stream_messages": messages,
            "fanout_ids": ids,
            "fanout_streams": streams,
            "client_procs": procs,
            "streams_per_channel": per_channel,
            "fanout_rounds": rounds,
        },
        "figures": {
            "unary_calls_per_s": round(unary),
            "unary_rtt_p50_ms": figures.ms(figures.percentile(rtt, 50)),
            "unary_rtt_p99_ms": figures.ms(figures.percentile(rtt, 99)),
            "stream_msgs_per_s": round(stream),
            "fanout_ids_per_s": round(statistics.median(fanout)),
            "fanout_best_ids_per_s": round(max(fanout)),
        },
        "ratios": {"fanout_over_unary": figures.ratio(statistics.median(fanout), unary)},
        "goal": "(the reference for the others)",
        "met": None,
    }


QUICK = {"calls": 10_000, "messages": 30_000, "ids": 20_000, "streams": 1_000, "rounds": 5}
FULL = {"calls": 50_000, "messages": 200_000, "ids": 20_000, "streams": 1_000, "rounds": 20}


async def run(quick: bool) -> dict[str, Any]:
    return await measure(**(QUICK if quick else FULL), procs=2, per_channel=10)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--calls", type=int, default=QUICK["calls"])
    parser.add_argument("--messages", type=int, default=QUICK["messages"])
    parser.add_argument("--ids", type=int, default=QUICK["ids"])
    parser.add_argument("--streams", type=int, default=QUICK["streams"])
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--per-channel", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=QUICK["rounds"])
    a = parser.parse_args()
    harness.standalone(
        asyncio.run(
            measure(
                calls=a.calls,
                messages=a.messages,
                ids=a.ids,
                streams=a.streams,
                procs=a.procs,
                per_channel=a.per_channel,
                rounds=a.rounds,
            )
        )
    )


if __name__ == "__main__":
    main()
