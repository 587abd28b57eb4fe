"""A damaged SQLite store: the manager refuses to start naming the file, or starts
with everything it acknowledged (recovered from the WAL); never silently empty.

One store is made by a real manager (tasks submitted, then SIGKILL, so the last
commits live only in the WAL), copied, and damaged a different way per case.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fleet import Figures, Fleet, Proc, free_port
from waiting import eventually

from corral.client import Client
from corral.model import TaskSpec

TASKS = 200


def truncate_to_zero(db: Path) -> None:
    db.write_bytes(b"")
    db.with_name(db.name + "-wal").unlink(missing_ok=True)


def truncate_to_half(db: Path) -> None:
    _checkpoint(db)
    with db.open("r+b") as f:
        f.truncate(db.stat().st_size // 2)


def garbage_in_a_page(db: Path) -> None:
    _checkpoint(db)
    with db.open("r+b") as f:
        f.seek(2 * 4096)
        f.write(os.urandom(4096))


def garbage_header(db: Path) -> None:
    _checkpoint(db)
    with db.open("r+b") as f:
        f.write(os.urandom(100))


def wal_only(db: Path) -> None:
    """Not damage: the commits since the last checkpoint are only in the WAL."""
    assert db.with_name(db.name + "-wal").stat().st_size > 0


def _checkpoint(db: Path) -> None:
    # Fold the WAL in first, so that the damage hits the tasks themselves.
    import sqlite3

    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manager data dir holding TASKS acknowledged tasks, left by a SIGKILL."""
    root = tmp_path_factory.mktemp("made")
    fleet = Fleet(root, f"127.0.0.1:{free_port()}")
    try:

        async def fill() -> None:
            manager = fleet.start_manager()
            await fleet.ready(manager)
            async with Client(fleet.manager_address) as client:
                for i in range(TASKS):
                    await client.submit(TaskSpec(name=f"kept-{i}", command=("true",)), id=f"k{i}")
            manager.kill()

        asyncio.run(fill())
    finally:
        fleet.close()
    return root / "m"


@pytest.mark.parametrize(
    "damage", [truncate_to_zero, truncate_to_half, garbage_in_a_page, garbage_header, wal_only]
)
def test_a_damaged_store_is_refused_by_name_or_recovered_whole(
    made: Path, tmp_path: Path, damage: Callable[[Path], None], figures: Figures
) -> None:
    data = tmp_path / "m"
    shutil.copytree(made, data)
    db = data / "manager.db"
    damage(db)
    fleet = Fleet(tmp_path, f"127.0.0.1:{free_port()}")
    try:
        manager = fleet.start_manager()
        found = asyncio.run(_tasks_served(fleet, manager))
        if found is None:
            output = manager.output()
            figures.add(f"store damage: {damage.__name__}", "refused, naming the file")
            assert manager.popen.returncode != 0
            assert str(db) in output and "refusing to start" in output, output
            return
        figures.add(f"store damage: {damage.__name__}", f"started with {found}/{TASKS} tasks")
        assert found == TASKS
    finally:
        fleet.close()


async def _tasks_served(fleet: Fleet, manager: Proc) -> int | None:
    """How many tasks the manager serves, or None when it exited instead."""
    async with Client(fleet.manager_address) as client:

        async def served_or_exited() -> tuple[int | None] | None:
            if manager.popen.poll() is not None:
                return (None,)
            if await client.healthy(timeout=0.5):
                return (len(await client.list_tasks()),)
            return None

        (count,) = await eventually(
            served_or_exited,
            timeout=60,
            interval=0.1,
            what=lambda: f"the manager serving or exiting:\n{manager.output()}",
        )
        return count
