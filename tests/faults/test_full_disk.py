"""A full disk under a worker's logs (a 1 MiB tmpfs the test mounts and unmounts):
tasks keep running, their logs are cut with a marker, nothing crashes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fleet import Figures, Fleet, free_port
from waiting import eventually

from corral.client import Client
from corral.model import NodeStatus, TaskSpec, TaskState

# Writes 64 KiB every 10 ms and ignores ENOSPC: a task that outlives a full disk.
NOISY = (
    "import os, time\n"
    "while True:\n"
    "    try: os.write(1, b'x' * 65535 + b'\\n')\n"
    "    except OSError: pass\n"
    "    time.sleep(0.01)\n"
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    logs = tmp_path / "w1" / "logs"
    logs.mkdir(parents=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        if os.environ.get("CI"):
            pytest.fail("the full-disk test needs root to mount a tmpfs in CI")
        pytest.skip("needs root to mount a tmpfs")
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "corral-full-disk", str(logs)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    try:
        yield logs
    finally:
        subprocess.run(["umount", "-l", str(logs)], check=False, capture_output=True, timeout=30)


async def test_a_full_log_disk_cuts_logs_and_crashes_nothing(
    tmp_path: Path, small_disk: Path, figures: Figures
) -> None:
    fleet = Fleet(tmp_path, f"127.0.0.1:{free_port()}")
    try:
        manager = fleet.start_manager()
        await fleet.ready(manager)
        worker = fleet.start_worker("w1")
        async with Client(fleet.manager_address) as client:
            node = await fleet.node(client, "w1")
            noisy = await client.submit(
                TaskSpec(name="noisy", command=(sys.executable, "-c", NOISY))
            )
            quiet = await client.submit(fleet.sleeper("quiet"))
            log = await _eventually(lambda: _marked(small_disk, noisy.id))
            cut_at = time.monotonic()
            # The disk keeps filling; a few more cuts must go just as well.
            await _eventually(
                lambda: time.monotonic() - cut_at > 3 and _marked(small_disk, noisy.id)
            )
            for task in (noisy, quiet):
                assert (await client.get_task(task.id)).status.state is TaskState.RUNNING
            assert worker.popen.poll() is None and manager.popen.poll() is None
            assert (await client.get_node(node.id)).status is NodeStatus.READY
            head = _head(log)
            figures.add("full disk: log head after the cut", head)
            free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
            figures.add("full disk: tasks running / worker up", "2/2 / yes")
            figures.add("full disk: free bytes on the 1 MiB tmpfs", free)
            assert "bytes of earlier output cut" in head
            await client.stop_task(noisy.id)
    finally:
        fleet.close()


def _head(log: Path) -> str:
    with log.open("rb") as f:
        return f.read(200).split(b"\n", 1)[0].decode(errors="replace")


def _marked(logs: Path, task_id: str) -> Path | None:
    for path in (logs / task_id).glob("*.log"):
        with path.open("rb") as f:
            if b"earlier output cut" in f.read(200):
                return path
    return None


async def _eventually(check: Callable[[], Path | None], timeout: float = 60.0) -> Path:
    return await eventually(check, timeout=timeout, interval=0.1)
