"""gateway: REST through the gateway vs the same calls over gRPC, same manager, same run.

The manager and the gateway each run in their own process. GetTask and
SubmitTask are timed directly over gRPC and as ``GET /v1/tasks/{id}`` and
``POST /v1/tasks`` through the gateway (aiohttp, keep-alive connections),
sequentially for latency, then with 32 requests in flight for req/s. Calls
alternate between the paths in a new (seeded) order each round: a submit
leaves the manager placing and the workers reporting for a moment after it
answers (about 2 ms of manager CPU), so a fixed order made one path always
pay for the other's submit (REST POST always followed the gRPC submit).

The second hop has a floor: the ``floor`` paths go through a forwarder in a
process of its own (the same uvicorn protocol, no Starlette, no JSON) that
sends a pre-built request and answers fixed bytes. What REST costs above the
floor is the gateway's own work; what the floor costs above gRPC is the hop.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing.connection
import random
import signal
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import psutil

from bench import cluster, figures, harness, spawning
from bench.simworkers import Fleet
from corral.v1 import manager_pb2

GOAL = "REST latency <= 1.5x the same call over gRPC"


def _gateway_main(conn: multiprocessing.connection.Connection, manager: str) -> None:
    from corral import loops

    loops.run(_gateway(conn, manager))  # the loop `corral gateway` runs on


async def _gateway(conn: multiprocessing.connection.Connection, manager: str) -> None:
    from gateway.server import serve

    try:
        running = await serve(manager, "127.0.0.1:0")
    except Exception as err:
        conn.send(("error", f"gateway did not start: {type(err).__name__}: {err}"))
        return
    conn.send(("ok", running.port))
    await spawning.serve_commands(conn, {"stop": lambda _: None})
    await running.stop()


def _floor_main(conn: multiprocessing.connection.Connection, manager: str) -> None:
    from corral import loops

    loops.run(_floor(conn, manager))


async def _floor(conn: multiprocessing.connection.Connection, manager: str) -> None:
    """A forwarder with no conversion: GET /v1/tasks/{id} and POST /v1/tasks, pre-built."""
    import uvicorn

    from gateway.gathering import GatheringHttpToolsProtocol

    names = iter(range(10**9))
    submit = cluster.fake_task("")
    answer = b'{"task":{}}'
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"11")],
    }
    async with grpc.aio.insecure_channel(manager) as channel:
        client = cluster.stub(channel)

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            await receive()
            if scope["method"] == "GET":
                task_id = scope["path"].rsplit("/", 1)[1]
                await client.GetTask(manager_pb2.GetTaskRequest(id=task_id), timeout=10)
            else:
                submit.spec.name = f"f-{next(names)}"
                await client.SubmitTask(submit, timeout=10)
            await send(start)
            await send({"type": "http.response.body", "body": answer})

        # Listening (queueing connections) from now on. IPPROTO_TCP, not 0: asyncio sets
        # TCP_NODELAY only on sockets that say so, and Nagle held every body for 40 ms.
        listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listening.bind(("127.0.0.1", 0))
        listening.listen(128)
        config = uvicorn.Config(
            app, http=GatheringHttpToolsProtocol, log_level="warning", lifespan="off"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[listening]))
        conn.send(("ok", listening.getsockname()[1]))
        await spawning.serve_commands(conn, {"stop": lambda _: None})
        server.should_exit = True
        await task


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    t0 = time.perf_counter()
    await call()
    return time.perf_counter() - t0


async def rate(call: Callable[[], Awaitable[Any]], count: int, in_flight: int = 32) -> float:
    async def loop() -> None:
        for _ in range(count // in_flight):
            await call()

    t0 = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(in_flight)))
    return (count // in_flight) * in_flight / (time.perf_counter() - t0)


def shuffled(names: list[str], turn: int) -> list[str]:
    """``names`` in the order of round ``turn``: over the rounds, each path follows each
    other one about as often (turning a fixed order would keep who follows whom)."""
    order = list(names)
    random.Random(turn).shuffle(order)
    return order


async def cpu_per_call(pid: int, call: Callable[[], Awaitable[Any]], count: int) -> float:
    """CPU seconds process ``pid`` spends per call, over ``count`` sequential calls."""
    before = cpu_seconds(pid)
    for _ in range(count):
        await call()
    return (cpu_seconds(pid) - before) / count


async def measure(*, samples: int, load: int) -> dict[str, Any]:
    params = {
        "samples": samples,
        "rate_requests": load,
        "in_flight": 32,
        "http_client": "aiohttp, HTTP/1.1 keep-alive",
    }
    names = ["grpc_get", "rest_get", "floor_get", "grpc_post", "rest_post", "floor_post"]
    lat: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="corral-bench-gateway-") as tmp:
        m = await cluster.start_manager(Path(tmp))
        gw = spawning.spawn(_gateway_main, m.target)
        floor = spawning.spawn(_floor_main, m.target)
        profiler = None
        fleet = None
        try:
            # Workers run what is POSTed, so no backlog of waiting tasks builds up: a long
            # queue makes every submit pay a placement pass and would blur both paths.
            fleet = await Fleet.start(m.target, workers=2, procs=1, cpu=512.0)
            port = await gw.answer(60)
            floor_port = await floor.answer(60)
            profiler = cluster.profile(gw.pid, "gateway")
            async with (
                grpc.aio.insecure_channel(m.target) as channel,
                aiohttp.ClientSession(
                    base_url=f"http://127.0.0.1:{port}",
                    timeout=aiohttp.ClientTimeout(total=30),
                    connector=aiohttp.TCPConnector(limit=64),
                ) as http,
                aiohttp.ClientSession(
                    base_url=f"http://127.0.0.1:{floor_port}",
                    timeout=aiohttp.ClientTimeout(total=30),
                ) as bare,
            ):
                client = cluster.stub(channel)
                first = await client.SubmitTask(cluster.fake_task("g-first"), timeout=10)
                task_id = first.task.id
                counter = iter(range(10**9))

                async def grpc_get() -> None:
                    await client.GetTask(manager_pb2.GetTaskRequest(id=task_id), timeout=10)

                async def rest_get() -> None:
                    async with http.get(f"/v1/tasks/{task_id}") as response:
                        response.raise_for_status()
                        await response.read()

                async def grpc_post() -> None:
                    request = cluster.fake_task(f"g-{next(counter)}")
                    await client.SubmitTask(request, timeout=10)

                async def rest_post() -> None:
                    # The very task fake_task submits over gRPC.
                    body = {
                        "spec": {
                            "name": f"g-{next(counter)}",
                            "runtime": "fake",
                            "resources": {"cpu": 0.1},
                            "fake": {"duration": "0s"},
                        }
                    }
                    async with http.post("/v1/tasks", json=body) as response:
                        response.raise_for_status()
                        await response.read()

                async def floor_get() -> None:
                    async with bare.get(f"/v1/tasks/{task_id}") as response:
                        response.raise_for_status()
                        await response.read()

                async def floor_post() -> None:
                    async with bare.post("/v1/tasks", data=b"{}") as response:
                        response.raise_for_status()
                        await response.read()

                calls = {
                    "grpc_get": grpc_get,
                    "rest_get": rest_get,
                    "floor_get": floor_get,
                    "grpc_post": grpc_post,
                    "rest_post": rest_post,
                    "floor_post": floor_post,
                }
                for call in calls.values():  # warm-up: connections, first-call paths
                    for _ in range(20):
                        await call()
                for turn in range(samples):
                    for name in shuffled(names, turn):
                        lat[name].append(await timed(calls[name]))
                cpu_count = max(samples * 2, 100)  # psutil counts in 10 ms ticks
                per_call = {
                    "gateway_cpu_us_per_post": await cpu_per_call(gw.pid, rest_post, cpu_count),
                    "floor_cpu_us_per_post": await cpu_per_call(floor.pid, floor_post, cpu_count),
                }
                manager_cpu0 = m.cpu_seconds()
                grpc_rate = await rate(grpc_get, load)
                manager_cpu1, gateway_cpu1 = m.cpu_seconds(), cpu_seconds(gw.pid)
                rest_rate = await rate(rest_get, load)
                gateway_cpu2 = cpu_seconds(gw.pid)
                done = (load // 32) * 32
                rates = {
                    **{k: v * 1e6 for k, v in per_call.items()},
                    "grpc_get_per_s": grpc_rate,
                    "rest_get_per_s": rest_rate,
                    "manager_cpu_us_per_get": (manager_cpu1 - manager_cpu0) / done * 1e6,
                    "gateway_cpu_us_per_get": (gateway_cpu2 - gateway_cpu1) / done * 1e6,
                }
        finally:
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                await asyncio.get_running_loop().run_in_executor(None, profiler.wait, 30)
            await gw.close()
            await floor.close()
            if fleet is not None:
                await fleet.close()
            await m.stop()
    out: dict[str, float] = {}
    for name, samples_s in lat.items():
        out[f"{name}_p50_ms"] = figures.ms(figures.percentile(samples_s, 50))
        out[f"{name}_p99_ms"] = figures.ms(figures.percentile(samples_s, 99))
    out.update({k: round(v) for k, v in rates.items()})
    ratios = {
        "rest_over_grpc_get_p50": figures.ratio(out["rest_get_p50_ms"], out["grpc_get_p50_ms"]),
        "rest_over_grpc_post_p50": figures.ratio(out["rest_post_p50_ms"], out["grpc_post_p50_ms"]),
        "rest_over_grpc_get_p99": figures.ratio(out["rest_get_p99_ms"], out["grpc_get_p99_ms"]),
        "rest_over_grpc_get_rate": figures.ratio(out["rest_get_per_s"], out["grpc_get_per_s"]),
        "floor_over_grpc_get_p50": figures.ratio(out["floor_get_p50_ms"], out["grpc_get_p50_ms"]),
        "floor_over_grpc_post_p50": figures.ratio(
            out["floor_post_p50_ms"], out["grpc_post_p50_ms"]
        ),
    }
    return {
        "name": "gateway",
        "params": params,
        "figures": out,
        "ratios": ratios,
        "goal": GOAL,
        "met": ratios["rest_over_grpc_get_p50"] <= 1.5 and ratios["rest_over_grpc_post_p50"] <= 1.5,
    }


async def run(quick: bool) -> dict[str, Any]:
    return await measure(samples=300 if quick else 2000, load=2000 if quick else 20000)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--load", type=int, default=2000)
    a = parser.parse_args()
    harness.standalone(asyncio.run(measure(samples=a.samples, load=a.load)))


if __name__ == "__main__":
    main()
