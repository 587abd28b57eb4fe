"""failover: SIGKILL a simulated worker holding 100 tasks; time until all run elsewhere.

Each repetition starts a fresh manager (TTL 3 s, heartbeats every 1 s), puts
100 long fake tasks on a lone "victim" worker process, then starts spare
workers in another process and SIGKILLs the victim. The clock starts at the
kill and stops, per task, at the ``task.state`` RUNNING event that shows it on
another node (read from WatchEvents). The repetition's figure is the time
until the LAST of its tasks runs elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

import grpc

from bench import cluster, figures, harness
from bench.simworkers import Fleet
from corral.v1 import manager_pb2, types_pb2

GOAL = "p99 time until all 100 tasks RUNNING elsewhere <= 3.5 s with TTL 3 s"


async def wait_running(client: Any, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = await client.ListTasks(
            manager_pb2.ListTasksRequest(states=[types_pb2.TASK_STATE_RUNNING], page_size=1000),
            timeout=10,
        )
        if len(page.tasks) >= count:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{count} tasks not RUNNING after {timeout:.0f} s")


async def one_kill(rep: int, *, tasks: int, spares: int, ttl: float) -> list[float]:
    """Seconds from the kill to each task's RUNNING elsewhere (missing = never)."""
    async with cluster.manager(ttl=ttl, heartbeat_interval=1.0) as m:
        victim = await Fleet.start(
            m.target, workers=1, procs=1, prefix=f"victim{rep}-", cpu=tasks * 0.1
        )
        spare: Fleet | None = None
        try:
            async with grpc.aio.insecure_channel(m.target) as channel:
                client = cluster.stub(channel)
                names = [f"f{rep}-{i}" for i in range(tasks)]
                ids = set(await cluster.submit_batches(client, names, batch=tasks, duration=3600))
                await wait_running(client, tasks, 30)
                spare = await Fleet.start(
                    m.target, workers=spares, procs=1, prefix=f"spare{rep}-", cpu=tasks * 0.1
                )
                moved: dict[str, float] = {}
                done = asyncio.Event()
                watch = client.WatchEvents(manager_pb2.WatchEventsRequest(kinds=["task.state"]))

                async def follow() -> None:
                    async for response in watch:
                        task = response.event.task
                        if (
                            task.id in ids
                            and task.status.state == types_pb2.TASK_STATE_RUNNING
                            and task.status.node_id.startswith("spare")
                        ):
                            moved.setdefault(task.id, time.perf_counter())
                            if len(moved) == len(ids):
                                done.set()

                follower = asyncio.create_task(follow())
                await asyncio.sleep(0.2)  # the watch is registered
                killed = time.perf_counter()
                victim.kill()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), ttl + 30)
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                    await follower
                return [moved[i] - killed for i in ids if i in moved]
        finally:
            await victim.close()
            if spare is not None:
                await spare.close()


async def measure(*, reps: int, tasks: int, spares: int, ttl: float) -> dict[str, Any]:
    params = {"repetitions": reps, "tasks": tasks, "spare_workers": spares, "ttl_s": ttl}
    per_task: list[float] = []
    all_moved: list[float] = []
    never = 0
    for rep in range(reps):
        samples = await one_kill(rep, tasks=tasks, spares=spares, ttl=ttl)
        per_task.extend(samples)
        never += tasks - len(samples)
        if len(samples) == tasks:
            all_moved.append(max(samples))
    p99 = figures.percentile(all_moved, 99)
    return {
        "name": "failover",
        "params": params,
        "figures": {
            "replaced_p50_s": figures.rounded(figures.percentile(all_moved, 50)),
            "replaced_p99_s": figures.rounded(p99),
            "task_replaced_p50_s": figures.rounded(figures.percentile(per_task, 50)),
            "task_replaced_min_s": figures.rounded(min(per_task)) if per_task else float("nan"),
            "never_replaced": never,
        },
        "ratios": {"replaced_p99_over_ttl": figures.ratio(p99, ttl)},
        "goal": GOAL,
        "met": never == 0 and p99 <= 3.5,
    }


QUICK = {"reps": 3}
FULL = {"reps": 10}


async def run(quick: bool) -> dict[str, Any]:
    return await measure(**(QUICK if quick else FULL), tasks=100, spares=4, ttl=3.0)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__)
    parser.add_argument("--reps", type=int, default=QUICK["reps"])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--spares", type=int, default=4)
    parser.add_argument("--ttl", type=float, default=3.0)
    a = parser.parse_args()
    harness.standalone(asyncio.run(measure(reps=a.reps, tasks=a.tasks, spares=a.spares, ttl=a.ttl)))


if __name__ == "__main__":
    main()
