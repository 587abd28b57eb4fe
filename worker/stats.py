"""What a node offers (capacity) and how busy it is (stats), measured with psutil.

Host figures are sampled at most once per ``HOST_SAMPLE_TTL`` per process:
a benchmark hosts a thousand simulated workers in one process, and each of
their heartbeats must not walk /proc again. ``cpu_percent`` is measured
between two samples (never with a blocking interval).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from corral.model import NodeStats, Resources
from worker.runtimes.base import Runtime

log = logging.getLogger(__name__)
# Runtimes whose usage() failed at the last heartbeat.
_failing: set[str] = set()

HOST_SAMPLE_TTL = 0.5


def capacity(configured: Resources, data_dir: Path) -> Resources:
    """The configured capacity, with zero fields measured on this host."""
    cpu = configured.cpu or float(psutil.cpu_count() or 1)
    memory = configured.memory_bytes or psutil.virtual_memory().total
    disk = configured.disk_bytes or _disk(data_dir).total
    return Resources(cpu, memory, disk)


@dataclass(frozen=True, slots=True)
class _HostSample:
    taken: float
    stats: NodeStats


_cache: dict[Path, _HostSample] = {}


def host_stats(data_dir: Path) -> NodeStats:
    """CPU, memory, the data dir's disk and load averages; cached briefly."""
    now = time.monotonic()
    cached = _cache.get(data_dir)
    if cached is not None and now - cached.taken < HOST_SAMPLE_TTL:
        return cached.stats
    memory = psutil.virtual_memory()
    disk = _disk(data_dir)
    load1, load5, load15 = os.getloadavg()
    stats = NodeStats(
        cpu_percent=psutil.cpu_percent(interval=None),
        memory_used_bytes=memory.total - memory.available,
        memory_total_bytes=memory.total,
        disk_used_bytes=disk.used,
        disk_total_bytes=disk.total,
        load1=load1,
        load5=load5,
        load15=load15,
    )
    _cache[data_dir] = _HostSample(now, stats)
    return stats


async def node_stats(data_dir: Path, runtimes: Iterable[Runtime], task_count: int) -> NodeStats:
    """Host figures plus what the runtimes report their attempts use."""
    cached = _cache.get(data_dir)
    if cached is not None and time.monotonic() - cached.taken < HOST_SAMPLE_TTL:
        host = cached.stats
    else:
        host = await asyncio.to_thread(host_stats, data_dir)
    cpu, memory = 0.0, 0
    for runtime in runtimes:
        # A slow or broken backend must not stop heartbeats: its share is left out, and said
        # so once when it starts failing and once when it answers again (not every beat).
        name = type(runtime).__name__
        try:
            async with asyncio.timeout(2.0):
                used_cpu, used_memory = await runtime.usage()
        except Exception as err:
            if name not in _failing:
                _failing.add(name)
                log.warning("%s usage left out of heartbeats: %s", name, err or type(err).__name__)
            continue
        if name in _failing:
            _failing.discard(name)
            log.info("%s usage reported again", name)
        cpu += used_cpu
        memory += used_memory
    return replace(host, task_count=task_count, container_cpu=cpu, container_memory_bytes=memory)


def _disk(data_dir: Path) -> _Disk:
    # The data dir may not exist yet: measure the nearest existing parent.
    path = data_dir.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = psutil.disk_usage(str(path))
    return _Disk(usage.used, usage.total)


@dataclass(frozen=True, slots=True)
class _Disk:
    used: int
    total: int
