"""A simulated day of a schedule firing every minute: with retention the manager's
tasks, events, store file and memory stay flat (``manager.retention``).

A real manager (in this process, so that its memory is measured) and a simulated
worker: each simulated minute a task is submitted, as the schedule would, the
worker runs it and reports it COMPLETED at the simulated time, and one
retention pass runs with the injected clock. 1,440 minutes take seconds.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
from fleet import Figures

from corral import convert
from corral.model import TaskSpec
from corral.serving import channel
from corral.v1 import manager_pb2, manager_pb2_grpc
from manager.server import RunningManager
from tests.integration.test_manager_dispatch import start, target
from tests.simworker import COMPLETED, SimWorker

MINUTES = 24 * 60
RETAIN = 3600.0
EVENTS = 2000


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[RunningManager]:
    running = await start(
        tmp_path / "m", retain_finished=RETAIN, retain_events=EVENTS, gc_every=3600.0
    )
    yield running
    await running.stop(0)


def store_bytes(data_dir: Path) -> int:
    """The database file once its WAL is folded in (freed pages are reused, so it is flat
    when what it holds is); a simulated day passes faster than the manager checkpoints."""
    db = sqlite3.connect(data_dir / "manager.db")
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return (data_dir / "manager.db").stat().st_size


async def test_a_day_of_minutely_runs_keeps_the_manager_flat(
    manager: RunningManager, tmp_path: Path, figures: Figures
) -> None:
    clock = Clock()
    manager.core.collector.clock = clock
    worker = SimWorker(target(manager), "n1", auto_ack=True, auto_run=True)
    await worker.connect()
    me = psutil.Process()
    samples: dict[int, tuple[int, int, int, int]] = {}
    try:
        async with channel(target(manager)) as ch:
            stub = manager_pb2_grpc.ManagerServiceStub(ch)
            for minute in range(1, MINUTES + 1):
                spec = convert.spec_to(TaskSpec(name=f"tick-{minute}", command=("true",)))
                reply = await stub.SubmitTask(manager_pb2.SubmitTaskRequest(spec=spec))
                task_id = reply.task.id
                assign = await worker.next("assign")
                generation = assign.assign.assignments[0].generation
                clock.now += 60
                done = manager_pb2.TaskUpdate(
                    task_id=task_id,
                    generation=generation,
                    state=COMPLETED,
                    exit_code=0,
                    time=convert.timestamp(clock.now),
                )
                await worker.send(
                    manager_pb2.WorkerMessage(updates=manager_pb2.TaskUpdates(updates=[done]))
                )
                await manager.core.wait(task_id, lambda t: t.status.state.final, timeout=10)
                await manager.core.collector.collect()
                if minute % 120 == 0:
                    events = manager.core.hub.published - manager.core.collector.trimmed_below
                    samples[minute // 60] = (
                        len(manager.core.ledger.catalog),
                        events,
                        store_bytes(tmp_path / "m"),
                        me.memory_info().rss,
                    )
    finally:
        await worker.close()
    # From 14 h on, both caps bind (an hour of tasks, EVENTS events): nothing may grow.
    first, last = samples[14], samples[24]
    mib = 1 << 20
    figures.add("retention: simulated minutes / tasks forgotten", f"{MINUTES} / "
                f"{manager.core.collector.forgotten}")  # fmt: skip
    figures.add(
        "retention: tasks kept at 14 h / 24 h", f"{first[0]} / {last[0]} (retain {RETAIN:g}s)"
    )
    figures.add("retention: events kept at 14 h / 24 h", f"{first[1]} / {last[1]}")
    figures.add("retention: store bytes at 14 h / 24 h", f"{first[2]} / {last[2]}")
    figures.add("retention: RSS MiB at 14 h / 24 h", f"{first[3] / mib:.1f} / {last[3] / mib:.1f}")
    assert all(kept <= 62 for kept, *_ in samples.values()), samples
    assert all(events <= EVENTS for _, events, *_ in samples.values()), samples
    assert last[2] <= first[2] * 1.1, samples
    assert last[3] - first[3] < 8 * mib, samples
