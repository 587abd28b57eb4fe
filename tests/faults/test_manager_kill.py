"""Manager SIGKILL in the middle of 1,000 submits: every acknowledged task is there
after the restart, and retries (same id, same spec) are idempotent: none fails with
ALREADY_EXISTS, none creates a second task."""

from __future__ import annotations

import asyncio
import time

from fleet import Figures, Fleet

from corral.client import Client
from corral.errors import AlreadyExists, CorralError
from corral.model import TaskSpec

TASKS = 1000
SUBMITTERS = 20
KILL_AFTER = 300


async def test_acknowledged_submits_survive_a_manager_kill_and_retries_are_idempotent(
    fleet: Fleet, figures: Figures
) -> None:
    manager = fleet.start_manager()
    await fleet.ready(manager)
    acked: set[str] = set()
    retried: set[str] = set()
    conflicts: list[str] = []
    killed = asyncio.Event()
    back = asyncio.Event()  # the restarted manager serves
    killed_at = [float("inf")]
    # Retries answered with the task an unacknowledged attempt had already made.
    found_made: list[str] = []

    async def submit_one(client: Client, i: int) -> None:
        spec = TaskSpec(name=f"m-{i}", command=("true",))
        deadline = time.monotonic() + 120
        while True:
            try:
                task = await client.submit(spec, id=f"m{i}")
                acked.add(f"m{i}")
                created = task.status.created_at or 0.0
                if f"m{i}" in retried and created < killed_at[0]:
                    found_made.append(task.id)
                return
            except AlreadyExists as err:
                conflicts.append(f"m{i}: {err}")
                return
            except CorralError:
                # The manager is down: try again once the restarted one serves.
                retried.add(f"m{i}")
                left = deadline - time.monotonic()
                assert left > 0, f"m{i} never acknowledged"
                try:
                    await asyncio.wait_for(back.wait(), left)
                except TimeoutError:
                    raise AssertionError(f"m{i}: the manager never came back") from None

    async def submitter(client: Client, k: int) -> None:
        for i in range(k, TASKS, SUBMITTERS):
            await submit_one(client, i)
            if len(acked) >= KILL_AFTER and not killed.is_set():
                killed.set()

    # No retries inside the client: this test retries, and counts.
    async with Client(fleet.manager_address, timeout=5, retries=0) as client:
        work = asyncio.gather(*(submitter(client, k) for k in range(SUBMITTERS)))
        await killed.wait()
        killed_at[0] = time.time()
        manager.kill()
        acked_at_kill = len(acked)
        fleet.procs.remove(manager)
        restarted = fleet.start_manager()
        await fleet.ready(restarted)
        back.set()
        await work
        tasks = await client.list_tasks(page_size=1000)
    ids = [t.id for t in tasks]
    figures.add("manager kill -9: submits / acknowledged at the kill", f"{TASKS} / {acked_at_kill}")
    figures.add(
        "manager kill -9: retried / of them already made / ALREADY_EXISTS",
        f"{len(retried)} / {len(found_made)} / {len(conflicts)}",
    )
    figures.add("manager kill -9: tasks after the restart", f"{len(ids)} ({len(set(ids))} ids)")
    assert conflicts == [], conflicts[:5]
    assert acked <= set(ids), sorted(acked - set(ids))[:10]
    assert len(ids) == len(set(ids)) == TASKS
