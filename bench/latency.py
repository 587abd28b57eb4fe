"""latency: submit → RUNNING at fixed offered loads (open loop, one SubmitTask per task).

Each task is submitted at its scheduled instant ``t0 + i / rate`` whatever the
previous calls are doing (an open loop, so a slow manager cannot lower the load
it is offered). The client picks the task id, so the RUNNING event read from
``WatchEvents`` can be matched even if it arrives before the SubmitTask answer.
The sequential unary echo round trip of bare grpc.aio is measured in the same
run as the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from typing import Any

import grpc

from bench import cluster, figures, floor, harness, spawning
from bench.simworkers import Fleet
from corral.v1 import manager_pb2, types_pb2

GOAL = "p99 submit → RUNNING <= 20 ms at 500 tasks/s"


async def echo_rtt() -> list[float]:
    server = spawning.spawn(floor._server_main)
    try:
        port = await server.answer(30)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await floor.unary_rtt(channel, 100)
            return await floor.unary_rtt(channel, 1000)
    finally:
        await server.close()


async def offered_load(
    client: Any, *, rate: int, seconds: float, duration: float, notes: list[str]
) -> dict[str, float]:
    """Submit ``rate`` tasks/s for ``seconds``; the RUNNING latency of each."""
    count = int(rate * seconds)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    submitted: dict[str, float] = {}
    running: dict[str, float] = {}
    all_running = asyncio.Event()
    errors: list[str] = []

    async def watch() -> None:
        call = client.WatchEvents(manager_pb2.WatchEventsRequest(kinds=["task.state"]))
        async for response in call:
            task = response.event.task
            if task.status.state == types_pb2.TASK_STATE_RUNNING and task.id not in running:
                running[task.id] = time.perf_counter()
                if len(running) >= count:
                    all_running.set()

    async def submit(task_id: str, i: int) -> None:
        request = cluster.fake_task(f"l{rate}-{i}", duration=duration)
        request.id = task_id
        submitted[task_id] = time.perf_counter()
        try:
            await client.SubmitTask(request, timeout=30)
        except grpc.aio.AioRpcError as err:
            errors.append(f"{err.code().name}: {err.details()}")

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.2)  # the watch is registered before the first submit
    calls = []
    late = 0.0
    t0 = time.perf_counter()
    for i, task_id in enumerate(ids):
        wait = t0 + i / rate - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        else:
            late = max(late, -wait)
        calls.append(asyncio.create_task(submit(task_id, i)))
    offered_for = time.perf_counter() - t0
    await asyncio.gather(*calls)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_running.wait(), 30)
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
        await watcher
    samples = [running[i] - submitted[i] for i in ids if i in running]
    notes.extend(f"at {rate}/s: {e}" for e in sorted(set(errors))[:2])
    return {
        "offered_per_s": round(count / offered_for, 1),
        "running_p50_ms": figures.ms(figures.percentile(samples, 50)),
        "running_p99_ms": figures.ms(figures.percentile(samples, 99)),
        "running_max_ms": figures.ms(max(samples)) if samples else float("nan"),
        "never_running": count - len(samples),
        "submit_errors": len(errors),
        "client_late_max_ms": figures.ms(late),
    }


async def measure(
    *, loads: list[int], seconds: float, workers: int, duration: float
) -> dict[str, Any]:
    params = {
        "loads_per_s": loads,
        "seconds_per_load": seconds,
        "workers": workers,
        "task_duration_s": duration,
    }
    rtt = await echo_rtt()
    notes: list[str] = []
    out: dict[str, float] = {
        "echo_rtt_p50_ms": figures.ms(figures.percentile(rtt, 50)),
        "echo_rtt_p99_ms": figures.ms(figures.percentile(rtt, 99)),
    }
    async with cluster.manager() as m:
        fleet = await Fleet.start(m.target, workers=workers, cpu=4.0)
        try:
            async with grpc.aio.insecure_channel(m.target) as channel:
                client = cluster.stub(channel)
                for rate in loads:
                    cpu0, t0 = m.cpu_seconds(), time.monotonic()
                    result = await offered_load(
                        client, rate=rate, seconds=seconds, duration=duration, notes=notes
                    )
                    result["manager_cpu_share"] = round(
                        (m.cpu_seconds() - cpu0) / (time.monotonic() - t0), 3
                    )
                    for key, value in result.items():
                        out[f"{key}_at_{rate}"] = value
                    await cluster.wait_settled(client, timeout=60)
        finally:
            await fleet.close()
    p99 = out.get("running_p99_ms_at_500", float("nan"))
    return {
        "name": "latency",
        "params": params,
        "figures": out,
        "ratios": {
            f"running_p50_at_{r}_over_echo_rtt_p50": figures.ratio(
                out[f"running_p50_ms_at_{r}"], out["echo_rtt_p50_ms"]
            )
            for r in loads
        },
        "goal": GOAL,
        "met": (p99 <= 20 and out.get("never_running_at_500", 1) == 0) if 500 in loads else None,
        "submit_errors": notes,
    }


QUICK = {"loads": [100, 500, 1000], "seconds": 4.0}
FULL = {"loads": [100, 500, 1000], "seconds": 20.0}


async def run(quick: bool) -> dict[str, Any]:
    return await measure(**(QUICK if quick else FULL), workers=100, duration=0.2)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__)
    parser.add_argument("--loads", default="100,500,1000", help="tasks/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=QUICK["seconds"])
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--duration", type=float, default=0.2, help="fake task run time (s)")
    a = parser.parse_args()
    loads = [int(x) for x in a.loads.split(",") if x]
    harness.standalone(
        asyncio.run(measure(loads=loads, seconds=a.seconds, workers=a.workers, duration=a.duration))
    )


if __name__ == "__main__":
    main()
