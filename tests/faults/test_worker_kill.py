"""Worker SIGKILL, ten times, with 20 long tasks on three workers (Nomad's ``clientstate``).

Copies are counted from outside every 100 ms (``fleet.Copies``): no sample may
show two copies of a task, and every task of a killed worker must run again
(a new process, on another worker) within TTL + 1 s of the kill. The killed
worker is started again afterwards on its data dir, so each round has three
workers; its orphans are gone by then (their launchers stopped them).
"""

from __future__ import annotations

import time

from fleet import TTL, Copies, Figures, Fleet, percentile, pids_by_argv
from waiting import eventually

from corral.client import Client
from corral.model import TaskState

TASKS = 20
ROUNDS = 10
WORKERS = ("w1", "w2", "w3")


async def test_killed_workers_never_leave_two_copies_and_their_tasks_return_within_ttl(
    fleet: Fleet, figures: Figures
) -> None:
    manager = fleet.start_manager()
    await fleet.ready(manager)
    workers = {name: fleet.start_worker(name) for name in WORKERS}
    async with Client(fleet.manager_address) as client:
        for name in WORKERS:
            await fleet.node(client, name)
        specs = [fleet.sleeper(f"long-{i}") for i in range(TASKS)]
        markers = [spec.command[1] for spec in specs]
        tasks = [await client.submit(spec) for spec in specs]
        await _all_running(client, [t.id for t in tasks])
        replaced: list[float] = []
        with Copies(markers) as copies:
            for round_ in range(ROUNDS):
                victim = WORKERS[round_ % len(WORKERS)]
                node = await fleet.node(client, victim)
                on_victim = [
                    m
                    for m, t in zip(markers, tasks, strict=True)
                    if (await client.get_task(t.id)).status.node_id == node.id
                ]
                before = pids_by_argv(on_victim)
                workers[victim].kill()
                killed_at = time.monotonic()
                for marker in on_victim:
                    took = await _running_again(copies, marker, killed_at, before[marker])
                    replaced.append(took)
                # Back on its data dir: a fresh node for the next rounds, adopting nothing.
                workers[victim] = fleet.start_worker(victim)
                await fleet.node(client, victim)
        figures.add("worker kill -9: rounds x tasks", f"{ROUNDS} x {TASKS} on {len(WORKERS)}")
        figures.add("worker kill -9: samples (100 ms)", copies.samples)
        figures.add("worker kill -9: samples with two copies", len(copies.duplicates))
        figures.add(
            "worker kill -9: replaced after (s)",
            f"n={len(replaced)} p50={percentile(replaced, 50):.2f} "
            f"p99={percentile(replaced, 99):.2f} max={max(replaced):.2f} (TTL {TTL:g})",
        )
        assert copies.duplicates == [], copies.duplicates[:5]
        assert replaced and max(replaced) <= TTL + 1.0, sorted(replaced)[-5:]


async def _all_running(client: Client, ids: list[str]) -> None:
    async def running() -> bool:
        states = [(await client.get_task(i)).status.state for i in ids]
        return all(s is TaskState.RUNNING for s in states)

    await eventually(running, timeout=60, interval=0.1, what="every task RUNNING")


async def _running_again(copies: Copies, marker: str, since: float, old: list[int]) -> float:
    took: float = await eventually(
        lambda: copies.running_again_after(marker, since, old),
        timeout=max(0.0, since + 4 * TTL - time.monotonic()),
        interval=0.05,
        what=f"{marker} running again {4 * TTL:g}s after its worker was killed",
    )
    return took
