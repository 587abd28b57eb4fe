"""The manager's Prometheus metrics, served on ``--metrics-listen``.

Two kinds, chosen by cost on the hot path:

- What happened (submitted, placed, completed... tasks; submit-to-RUNNING
  latency; store commits) is counted as it happens: the counters follow the
  event hub synchronously (``EventHub.listeners``, no queue, a dict lookup
  per event) and the store reports each group commit.
- What is (tasks by state, pending tasks by reason, nodes by status,
  heartbeat age and lateness, open streams, allocations) is read from the
  core's memory when Prometheus scrapes, so it costs nothing in between and
  is never stale. The scrape runs on the manager's event loop
  (``corral.metrics``), so it reads a consistent state.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from corral.model import Event, NodeStatus, TaskState
from manager.core import NO_FIT, TaskManager

# Seconds from submit to RUNNING: a process starts in milliseconds, a queue can take hours.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000)
# Final (and LOST) states counted by corral_tasks_<state>_total.
_ENDINGS = (TaskState.COMPLETED, TaskState.FAILED, TaskState.LOST, TaskState.STOPPED)


class ManagerMetrics:
    """Every metric of one manager, in a registry of its own."""

    def __init__(self, core: TaskManager) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.submitted = Counter("corral_tasks_submitted", "Tasks submitted.", registry=r)
        self.placed = Counter(
            "corral_tasks_placed", "Attempts placed on a node (restarts included).", registry=r
        )
        self.ended = {
            state: Counter(
                f"corral_tasks_{state.value}",
                f"Attempts that ended {state.name} (a LOST one may be placed again).",
                registry=r,
            )
            for state in _ENDINGS
        }
        self.latency = Histogram(
            "corral_placement_latency_seconds",
            "Seconds from a task's submission to its first RUNNING.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "corral_store_commit_seconds",
            "Seconds one group commit of the store took.",
            buckets=COMMIT_BUCKETS,
            registry=r,
        )
        self.batch_rows = Histogram(
            "corral_store_batch_rows",
            "Rows (tasks, statuses, attempts, nodes, events) written by one group commit.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        r.register(_CoreState(core))

    def follow(self, core: TaskManager) -> None:
        """Count from now on: the hub's events and the store's commits."""
        core.hub.listeners.append(self.saw)
        core.store.on_commit = self.committed

    def committed(self, seconds: float, rows: int) -> None:
        self.commit_seconds.observe(seconds)
        self.batch_rows.observe(rows)

    def saw(self, events: Sequence[Event]) -> None:
        for event in events:
            task = event.task
            if task is None:
                continue
            if event.kind == "task.submitted":
                self.submitted.inc()
                continue
            if event.kind != "task.state":
                continue
            status = task.status
            state = status.state
            if state is TaskState.SCHEDULED:
                self.placed.inc()
            elif state is TaskState.RUNNING:
                if status.attempts == 1 and status.started_at and status.created_at:
                    self.latency.observe(max(0.0, status.started_at - status.created_at))
            elif state in self.ended:
                self.ended[state].inc()


def pending_reason(message: str, next_attempt_at: float | None, now: float) -> str:
    """A PENDING task's reason as a label: few values, whatever the message says."""
    if next_attempt_at is not None and next_attempt_at > now:
        return "backoff"
    if message.startswith(NO_FIT):
        return "no_fit"
    if message.startswith("waiting for placement"):
        return "not_tried"
    if "depend" in message:
        return "dependencies"
    return "other"


class _CoreState(Collector):
    """Gauges read from the core at scrape time."""

    def __init__(self, core: TaskManager) -> None:
        self.core = core

    def collect(self) -> Iterator[GaugeMetricFamily]:
        core = self.core
        yield from self._tasks(core)
        yield from self._nodes(core)

    def _tasks(self, core: TaskManager) -> Iterator[GaugeMetricFamily]:
        by_state = GaugeMetricFamily("corral_tasks", "Tasks by state.", labels=["state"])
        for state in TaskState:
            by_state.add_metric([state.name], core.catalog.count(state))
        yield by_state
        now = time.time()
        reasons: Tally[str] = Tally()
        for task_id in list(core.pending):
            entry = core.catalog.by_id.get(task_id)
            if entry is not None:
                status = entry.task.status
                reasons[pending_reason(status.message, status.next_attempt_at, now)] += 1
        pending = GaugeMetricFamily(
            "corral_tasks_pending", "PENDING tasks by why they wait.", labels=["reason"]
        )
        for reason in ("not_tried", "no_fit", "backoff", "dependencies", "other"):
            pending.add_metric([reason], reasons[reason])
        yield pending

    def _nodes(self, core: TaskManager) -> Iterator[GaugeMetricFamily]:
        statuses: Tally[str] = Tally(record.status.name for record in core.registry)
        nodes = GaugeMetricFamily("corral_nodes", "Registered nodes by status.", labels=["status"])
        for status in NodeStatus:
            nodes.add_metric([status.name], statuses[status.name])
        yield nodes
        age = GaugeMetricFamily(
            "corral_node_heartbeat_age_seconds",
            "Seconds since each node's last message.",
            labels=["node_id", "node"],
        )
        late = GaugeMetricFamily(
            "corral_node_heartbeat_lateness_seconds",
            "Seconds each node's heartbeat is overdue (0 when on time; DOWN after the TTL).",
            labels=["node_id", "node"],
        )
        allocated = GaugeMetricFamily(
            "corral_node_allocated",
            "What the manager placed on each node (cores; bytes).",
            labels=["node_id", "node", "resource"],
        )
        capacity = GaugeMetricFamily(
            "corral_node_capacity",
            "What each node offers (cores; bytes).",
            labels=["node_id", "node", "resource"],
        )
        now = time.monotonic()
        interval = core.config.heartbeat_interval
        connected = 0
        for record in core.registry:
            ids = [record.id, record.name or record.id]
            seconds = max(0.0, now - record.last_seen)
            age.add_metric(ids, seconds)
            late.add_metric(ids, max(0.0, seconds - interval))
            for resource, have, used in (
                ("cpu", record.capacity.cpu, record.allocated.cpu),
                ("memory", record.capacity.memory_bytes, record.allocated.memory_bytes),
                ("disk", record.capacity.disk_bytes, record.allocated.disk_bytes),
            ):
                capacity.add_metric([*ids, resource], have)
                allocated.add_metric([*ids, resource], used)
            connected += record.session is not None
        yield from (age, late, allocated, capacity)
        streams = GaugeMetricFamily(
            "corral_open_streams",
            "Open streams: workers' Connect streams and event watchers.",
            labels=["kind"],
        )
        streams.add_metric(["worker"], connected)
        streams.add_metric(["events"], core.hub.watcher_count)
        yield streams
