"""A worker's Prometheus metrics, served on ``--metrics-listen``.

The supervisor reports what happens to attempts (``AttemptMetrics``): an
attempt that reaches a state, how long its runtime took to start it, each
health probe's outcome. What is simply there (attempts running now, bytes of
kept output) is read when Prometheus scrapes, so it is never stale and costs
nothing between scrapes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# Seconds: a process starts in milliseconds, an image pull can take minutes.
START_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class AttemptMetrics:
    """What the supervisor counts; one per worker, in its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.attempts = Counter(
            "corral_worker_attempts",
            "Attempts that reached a state on this worker, by runtime and state.",
            ["runtime", "state"],
            registry=self.registry,
        )
        self.start_seconds = Histogram(
            "corral_worker_start_seconds",
            "Seconds a runtime took to start an attempt, by runtime and outcome.",
            ["runtime", "outcome"],
            buckets=START_BUCKETS,
            registry=self.registry,
        )
        self.probes = Counter(
            "corral_worker_health_probes",
            "Health probes run, by probe kind and outcome (healthy or unhealthy).",
            ["probe", "outcome"],
            registry=self.registry,
        )

    def reached(self, runtime: str, state: str) -> None:
        self.attempts.labels(runtime, state).inc()

    def started(self, runtime: str, seconds: float, *, ok: bool) -> None:
        self.start_seconds.labels(runtime, "started" if ok else "failed").observe(seconds)

    def probed(self, probe: str, healthy: bool) -> None:
        self.probes.labels(probe, "healthy" if healthy else "unhealthy").inc()

    def watch(self, running: Callable[[], dict[str, int]], logs: Path) -> None:
        """Also report, at each scrape, what ``running`` counts and the bytes under ``logs``."""
        self.registry.register(_Present(running, logs))


class _Present(Collector):
    """Gauges read at scrape time: attempts running per runtime, bytes of kept logs."""

    def __init__(self, running: Callable[[], dict[str, int]], logs: Path) -> None:
        self.running = running
        self.logs = logs

    def collect(self) -> Iterator[GaugeMetricFamily]:
        running = GaugeMetricFamily(
            "corral_worker_attempts_running",
            "Attempts running on this worker now, by runtime.",
            labels=["runtime"],
        )
        for runtime, count in sorted(self.running().items()):
            running.add_metric([runtime], count)
        yield running
        yield GaugeMetricFamily(
            "corral_worker_log_bytes",
            "Bytes of attempt output kept on this worker's disk.",
            value=log_bytes(self.logs),
        )


def log_bytes(root: Path) -> int:
    """The size of every ``<task>/<generation>.log`` under ``root`` (0 when there is none)."""
    total = 0
    try:
        tasks = list(os.scandir(root))
    except OSError:
        return 0
    for task in tasks:
        if not task.is_dir():
            continue
        try:
            total += sum(f.stat().st_size for f in os.scandir(task.path) if f.is_file())
        except OSError:
            continue  # removed while we looked
    return total
