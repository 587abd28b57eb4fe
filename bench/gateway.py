"""gateway: REST through the gateway vs the same calls over gRPC, same manager, same run.

The manager and the gateway each run in their own process. GetTask and
SubmitTask are timed directly over gRPC and as ``GET /v1/tasks/{id}`` and
``POST /v1/tasks`` through the gateway (aiohttp, keep-alive connections),
sequentially for latency, then with 32 requests in flight for req/s. Calls
alternate between the two paths so a slow moment lands on both.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing.connection
import signal
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
    asyncio.run(_gateway(conn, manager))


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


async def measure(*, samples: int, load: int) -> dict[str, Any]:
    params = {
        "samples": samples,
        "rate_requests": load,
        "in_flight": 32,
        "http_client": "aiohttp, HTTP/1.1 keep-alive",
    }
    lat: dict[str, list[float]] = {"grpc_get": [], "rest_get": [], "grpc_post": [], "rest_post": []}
    with tempfile.TemporaryDirectory(prefix="corral-bench-gateway-") as tmp:
        m = await cluster.start_manager(Path(tmp))
        gw = spawning.spawn(_gateway_main, m.target)
        profiler = None
        fleet = None
        try:
            # Workers run what is POSTed, so no backlog of waiting tasks builds up: a long
            # queue makes every submit pay a placement pass and would blur both paths.
            fleet = await Fleet.start(m.target, workers=2, procs=1, cpu=512.0)
            port = await gw.answer(60)
            profiler = cluster.profile(gw.pid, "gateway")
            async with (
                grpc.aio.insecure_channel(m.target) as channel,
                aiohttp.ClientSession(
                    base_url=f"http://127.0.0.1:{port}",
                    timeout=aiohttp.ClientTimeout(total=30),
                    connector=aiohttp.TCPConnector(limit=64),
                ) as http,
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
                    body = {
                        "spec": {
                            "name": f"g-{next(counter)}",
                            "runtime": "fake",
                            "resources": {"cpu": 0.1},
                        }
                    }
                    async with http.post("/v1/tasks", json=body) as response:
                        response.raise_for_status()
                        await response.read()

                calls = {
                    "grpc_get": grpc_get,
                    "rest_get": rest_get,
                    "grpc_post": grpc_post,
                    "rest_post": rest_post,
                }
                for call in calls.values():  # warm-up: connections, first-call paths
                    for _ in range(20):
                        await call()
                for _ in range(samples):
                    for name, call in calls.items():
                        lat[name].append(await timed(call))
                manager_cpu0 = m.cpu_seconds()
                grpc_rate = await rate(grpc_get, load)
                manager_cpu1, gateway_cpu1 = m.cpu_seconds(), cpu_seconds(gw.pid)
                rest_rate = await rate(rest_get, load)
                gateway_cpu2 = cpu_seconds(gw.pid)
                done = (load // 32) * 32
                rates = {
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
