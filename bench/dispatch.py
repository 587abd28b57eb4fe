"""dispatch: many tasks through SubmitTasks batches to many simulated workers.

Figures: ``placements_per_s`` (submit start → the last task's RUNNING update
written by its worker, i.e. the assignment arrived and was acked),
``completed_per_s`` (submit start → the manager reports no task left
PENDING/SCHEDULED/RUNNING), the submit rate, and the manager's CPU share. The
batched fan-out floor (``bench.floor``) is measured in the same run with the
same streams and client processes, so ``placements_over_fanout_floor`` survives
a noisy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import grpc
import psutil

from bench import cluster, figures, floor, harness, pgcluster, spawning
from bench.simworkers import Fleet

GOAL = ">= 20,000 placements/s and >= 0.4 of the batched fan-out floor"


async def fanout_floor(*, ids: int, streams: int, procs: int, per_channel: int) -> float:
    server = spawning.spawn(floor._server_main)
    try:
        port = await server.answer(30)
        rates = await floor.fanout_rate(
            f"127.0.0.1:{port}",
            ids=ids,
            streams=streams,
            procs=procs,
            per_channel=per_channel,
            rounds=3,
        )
    finally:
        await server.close()
    return statistics.median(rates)


def fleet_cpu(fleet: Fleet) -> float:
    """CPU seconds of the simulated workers' processes (to show they are not the limit)."""
    total = 0.0
    for pid in fleet.pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


async def measure(
    *,
    workers: int,
    tasks: int,
    batch: int,
    procs: int,
    per_channel: int,
    strategy: str,
    failure_rate: float = 0.0,
    store: str = "",
    floor_rate: float | None = None,
) -> dict[str, Any]:
    params = {
        "workers": workers,
        "tasks": tasks,
        "batch": batch,
        "batches_in_flight": 2,
        "client_procs": procs,
        "streams_per_channel": per_channel,
        "strategy": strategy,
        "failure_rate": failure_rate,
        "task_cpu": 0.1,
        "worker_cpu": max(2.0, tasks / workers * 0.1),
    }
    if floor_rate is None:
        floor_rate = await fanout_floor(
            ids=tasks, streams=workers, procs=procs, per_channel=per_channel
        )
    async with cluster.manager(strategy=strategy, store=store) as m:
        fleet = await Fleet.start(
            m.target,
            workers=workers,
            procs=procs,
            per_channel=per_channel,
            cpu=float(params["worker_cpu"]),
        )
        try:
            async with grpc.aio.insecure_channel(m.target) as channel:
                client = cluster.stub(channel)
                names = [f"d-{i}" for i in range(tasks)]
                cpu0 = m.cpu_seconds()
                fleet0 = fleet_cpu(fleet)
                started = time.time()
                await cluster.submit_batches(client, names, batch=batch, failure_rate=failure_rate)
                submitted = time.time()
                settled = await cluster.wait_settled(client, timeout=300)
                cpu_share = (m.cpu_seconds() - cpu0) / (settled - started)
                fleet_share = (fleet_cpu(fleet) - fleet0) / (settled - started)
                counts = await cluster.count_states(client)
            seen = await fleet.snapshot()
        finally:
            await fleet.close()
    times = list(seen["tasks"].values())
    running = [t[1] for t in times if t[1]]
    if len(running) < tasks:
        return {
            "name": "dispatch",
            "params": params,
            "error": f"only {len(running)} of {tasks} tasks reached RUNNING; states {counts}",
        }
    placements = tasks / (max(running) - started)
    assign_latency = [t[0] - started for t in times]
    result_figures = {
        "placements_per_s": round(placements),
        "completed_per_s": round(tasks / (settled - started)),
        "submitted_per_s": round(tasks / (submitted - started)),
        "fanout_floor_ids_per_s": round(floor_rate),
        "manager_cpu_share": round(cpu_share, 3),
        "simworkers_cpu_share": round(fleet_share, 3),
        "last_assign_s": round(max(assign_latency), 3),
        "completed_tasks": counts.get("completed", 0),
        "failed_tasks": counts.get("failed", 0),
        "stream_errors": len(seen["errors"]),
    }
    ratio = figures.ratio(placements, floor_rate)
    return {
        "name": "dispatch",
        "params": params,
        "figures": result_figures,
        "ratios": {"placements_over_fanout_floor": ratio},
        "goal": GOAL,
        "met": placements >= 20_000 and ratio >= 0.4,
    }


QUICK = {"workers": 1000, "tasks": 20_000}
FULL = {"workers": 1000, "tasks": 100_000}


PG_GOAL = ">= 5,000 placements/s with the state in PostgreSQL on the same machine"


async def run(quick: bool) -> dict[str, Any]:
    shape = {**(QUICK if quick else FULL), "batch": 2000, "procs": 2, "per_channel": 10}
    result = await measure(**shape, strategy="binpack")
    if "error" in result or pgcluster.binaries() is None:
        return result
    return await with_postgresql(result, shape)


async def with_postgresql(sqlite: dict[str, Any], shape: dict[str, Any]) -> dict[str, Any]:
    """The same workload with ``--store postgresql://``, in the same run; both figures."""
    with pgcluster.running() as pg:
        url = pg.create_database("dispatch")
        floor_rate = float(sqlite["figures"]["fanout_floor_ids_per_s"])
        pg_result = await measure(**shape, strategy="binpack", store=url, floor_rate=floor_rate)
    if "error" in pg_result:
        return {**sqlite, "error": f"on PostgreSQL: {pg_result['error']}"}
    sqlite_rate = float(sqlite["figures"]["placements_per_s"])
    pg_rate = float(pg_result["figures"]["placements_per_s"])
    return {
        **sqlite,
        "figures": {
            **sqlite["figures"],
            "postgresql_placements_per_s": round(pg_rate),
            "postgresql_completed_per_s": pg_result["figures"]["completed_per_s"],
            "postgresql_manager_cpu_share": pg_result["figures"]["manager_cpu_share"],
        },
        "ratios": {
            **sqlite["ratios"],
            "postgresql_over_sqlite_placements": figures.ratio(pg_rate, sqlite_rate),
        },
        "goal": f"{GOAL}; {PG_GOAL}",
        "met": bool(sqlite["met"]) and pg_rate >= 5_000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dispatch", description=__doc__)
    parser.add_argument("--workers", type=int, default=QUICK["workers"])
    parser.add_argument("--tasks", type=int, default=QUICK["tasks"])
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--per-channel", type=int, default=10)
    parser.add_argument("--strategy", default="binpack")
    parser.add_argument("--failure-rate", type=float, default=0.0, help="fake tasks that fail")
    parser.add_argument("--store", default="", help="postgresql://... (default: SQLite)")
    a = parser.parse_args()
    harness.standalone(
        asyncio.run(
            measure(
                workers=a.workers,
                tasks=a.tasks,
                batch=a.batch,
                procs=a.procs,
                per_channel=a.per_channel,
                strategy=a.strategy,
                failure_rate=a.failure_rate,
                store=a.store,
            )
        )
    )


if __name__ == "__main__":
    main()
