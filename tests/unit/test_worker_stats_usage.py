"""A runtime whose usage() fails is left out of the heartbeat's figures, and the
worker says so once when it starts failing and once when it answers again."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from worker import stats


class Flaky:
    """Reports 0.5 cores and 100 bytes, or raises while ``broken``."""

    name = "flaky"

    def __init__(self) -> None:
        self.broken = False

    async def usage(self) -> tuple[float, int]:
        if self.broken:
            raise RuntimeError("backend down")
        return 0.5, 100


async def test_a_failing_usage_is_logged_once_and_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = Flaky()
    caplog.set_level(logging.INFO, logger="worker.stats")
    ok = await stats.node_stats(tmp_path, [runtime], 1)  # type: ignore[list-item]
    assert (ok.container_cpu, ok.container_memory_bytes) == (0.5, 100)

    runtime.broken = True
    for _ in range(3):
        down = await stats.node_stats(tmp_path, [runtime], 1)  # type: ignore[list-item]
        assert (down.container_cpu, down.container_memory_bytes) == (0.0, 0)
    warnings = [r for r in caplog.records if "left out of heartbeats" in r.getMessage()]
    assert len(warnings) == 1 and "backend down" in warnings[0].getMessage()

    runtime.broken = False
    back = await stats.node_stats(tmp_path, [runtime], 1)  # type: ignore[list-item]
    assert back.container_cpu == 0.5
    assert sum("reported again" in r.getMessage() for r in caplog.records) == 1
