"""Usage sampling: CPU cores and memory bytes of this worker's running containers.

The engine answers a stats request at its next collection tick (up to a
second), so ``usage`` returns the latest sample at once and refreshes it in
the background: a heartbeat never waits on the engine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from worker.runtimes.docker.engine import Engine

USAGE_CACHE = 2.0
USAGE_CONCURRENCY = 8


class UsageSampler:
    def __init__(self, engine: Engine, running: Callable[[], list[str]]) -> None:
        self._engine = engine
        self._running = running
        self._usage: tuple[float, tuple[float, int]] = (-USAGE_CACHE, (0.0, 0))
        self._refresh_task: asyncio.Task[None] | None = None
        self._cpu_samples: dict[str, tuple[float, float]] = {}

    def usage(self) -> tuple[float, int]:
        sampled_at, cached = self._usage
        stale = time.monotonic() - sampled_at >= USAGE_CACHE
        if stale and (self._refresh_task is None or self._refresh_task.done()):
            self._refresh_task = asyncio.create_task(self._refresh())
        return cached

    def cancel(self) -> asyncio.Task[None] | None:
        """Cancel a refresh in flight; the task, for the caller to await."""
        if self._refresh_task is not None:
            self._refresh_task.cancel()
        return self._refresh_task

    async def _refresh(self) -> None:
        running = self._running()
        for gone in set(self._cpu_samples) - set(running):
            del self._cpu_samples[gone]
        client, _ = await self._engine.clients()
        gate = asyncio.Semaphore(USAGE_CONCURRENCY)

        async def sample(container_id: str) -> tuple[float, int]:
            async with gate:
                return await self._engine.run_long(self._sample, client, container_id)

        samples = await asyncio.gather(*map(sample, running), return_exceptions=True)
        cpu, memory = 0.0, 0
        for one in samples:
            if isinstance(one, tuple):
                cpu += one[0]
                memory += one[1]
        self._usage = (time.monotonic(), (cpu, memory))

    def _sample(self, client: Any, container_id: str) -> tuple[float, int]:
        """One-shot stats; CPU cores from the change since this container's previous sample."""
        # The engine reads "one-shot" literally as "true"; docker-py would send "True" and
        # the engine would then sample twice, a second apart.
        stats = client.api.stats(container_id, stream=False, one_shot="true")
        now = time.monotonic()
        total = float(((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage", 0))
        previous = self._cpu_samples.get(container_id)
        self._cpu_samples[container_id] = (now, total)
        cpu = 0.0
        if previous is not None and now > previous[0]:
            cpu = max(0.0, (total - previous[1]) / 1e9 / (now - previous[0]))
        memory_stats = stats.get("memory_stats") or {}
        detail = memory_stats.get("stats") or {}
        # Page cache is reclaimable: count what `docker stats` counts.
        cache = detail.get("inactive_file", detail.get("total_inactive_file", 0))
        return cpu, max(0, int(memory_stats.get("usage", 0)) - int(cache))
