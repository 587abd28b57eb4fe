"""store: manager memory and restart-to-ready time with many tasks stored.

The store is filled through the API (SubmitTasks batches of 5,000; no worker
is connected, so every task stays PENDING and the restarted manager has to
load all of them as live work, the heavier case). Then the manager process is
stopped and a new one started over the same data dir; ``restart_ready_s`` runs
from spawning the process to the first answered ListTasks, as a user would
see it (interpreter start and imports included), ``restart_serve_s`` is the
part inside ``manager.server.serve``. Then SubmitTask and GetTask are timed
while the whole backlog still waits for a node (each submit asks for a
placement pass over the queue).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from bench import cluster, figures, harness
from corral.v1 import manager_pb2

GOAL = "<= 300 MB RSS and <= 3 s restart-to-ready with 100,000 tasks stored"
MB = 2**20


def dir_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


async def first_answer(target: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(target) as channel:
        client = cluster.stub(channel)
        while True:
            try:
                await client.ListTasks(manager_pb2.ListTasksRequest(page_size=1), timeout=5)
                return
            except grpc.aio.AioRpcError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.01)


async def calls_with_backlog(client: Any, count: int) -> dict[str, float]:
    """SubmitTask and GetTask latency while every stored task waits for a node."""
    submit, get = [], []
    for i in range(count):
        t0 = time.perf_counter()
        response = await client.SubmitTask(cluster.fake_task(f"late-{i}"), timeout=30)
        submit.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        await client.GetTask(manager_pb2.GetTaskRequest(id=response.task.id), timeout=30)
        get.append(time.perf_counter() - t0)
    return {
        "submit_p50_ms_with_backlog": figures.ms(figures.percentile(submit, 50)),
        "get_p50_ms_with_backlog": figures.ms(figures.percentile(get, 50)),
    }


async def measure(*, tasks: int, batch: int) -> dict[str, Any]:
    params = {"tasks": tasks, "batch": batch, "state": "pending (no workers)"}
    with tempfile.TemporaryDirectory(prefix="corral-bench-store-") as tmp:
        data = Path(tmp)
        first = await cluster.start_manager(data)
        try:
            async with grpc.aio.insecure_channel(first.target) as channel:
                client = cluster.stub(channel)
                started = time.monotonic()
                names = [f"s-{i}" for i in range(tasks)]
                await cluster.submit_batches(client, names, batch=batch, in_flight=2)
                fill_s = time.monotonic() - started
                await asyncio.sleep(1.0)
            rss_filled = first.rss_bytes()
        finally:
            await first.stop()
        db_bytes = dir_bytes(data)
        spawned = time.monotonic()
        second = await cluster.start_manager(data)
        try:
            await first_answer(second.target, 60)
            ready_s = time.monotonic() - spawned
            rss_restarted = second.rss_bytes()
            async with grpc.aio.insecure_channel(second.target) as channel:
                client = cluster.stub(channel)
                counts = await cluster.count_states(client)
                backlog = await calls_with_backlog(client, 50)
        finally:
            await second.stop()
    stored = sum(counts.values())
    worst_rss = max(rss_filled, rss_restarted) / MB
    return {
        "name": "store",
        "params": params,
        "figures": {
            "rss_filled_mb": round(rss_filled / MB, 1),
            "rss_restarted_mb": round(rss_restarted / MB, 1),
            "restart_ready_s": round(ready_s, 3),
            "restart_serve_s": round(second.ready_s, 3),
            "fill_tasks_per_s": round(tasks / fill_s),
            "data_dir_mb": round(db_bytes / MB, 1),
            "tasks_after_restart": stored,
            **backlog,
        },
        "ratios": {"rss_kb_per_task": round(worst_rss * 1024 / tasks, 2)},
        "goal": GOAL,
        "met": stored == tasks and worst_rss <= 300 and ready_s <= 3,
    }


QUICK = {"tasks": 100_000}
FULL = {"tasks": 100_000}


async def run(quick: bool) -> dict[str, Any]:
    return await measure(**(QUICK if quick else FULL), batch=5000)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__)
    parser.add_argument("--tasks", type=int, default=QUICK["tasks"])
    parser.add_argument("--batch", type=int, default=5000)
    a = parser.parse_args()
    harness.standalone(asyncio.run(measure(tasks=a.tasks, batch=a.batch)))


if __name__ == "__main__":
    main()
