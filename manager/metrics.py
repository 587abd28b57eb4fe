"""The manager's Prometheus metrics, served on ``--metrics-listen``.

Two kinds, chosen by cost on the hot path:

- What happened (submitted, placed, completed... tasks; submit-to-RUNNING
  latency; store commits) is counted as it happens: a ``Tally`` of plain
  numbers follows the event hub synchronously (``EventHub.listeners``, no
  queue) and the store reports each group commit.
- What is (tasks by state, pending tasks by reason, nodes by status,
  heartbeat age and lateness, open streams, allocations) is read from the
  core's memory when Prometheus scrapes, so it costs nothing in between and
  is never stale. The scrape runs on the manager's event loop
  (``corral.metrics``), so it reads a consistent state.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from corral.model import Event, NodeStatus, TaskState
from manager.core import TaskManager
from manager.placing import NO_FIT

# Seconds from submit to RUNNING: a process starts in milliseconds, a queue can take hours.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000)
# Final (and LOST) states counted by corral_tasks_<state>_total.
_ENDINGS = (
    TaskState.COMPLETED,
    TaskState.FAILED,
    TaskState.LOST,
    TaskState.STOPPED,
    TaskState.SKIPPED,
)


class Tally:
    """Counters and one histogram kept as plain numbers, exported at scrape time.

    The hub calls ``saw`` for every event, tens of thousands a second under
    load: prometheus-client's Counter and Histogram (a lock and a method call
    per change) cost about 6 us an event there, a quarter of a core at
    10,000 tasks/s; ints and a bisect cost well under 1 us.
    """

    def __init__(self) -> None:
        self.submitted = 0
        self.by_state: dict[TaskState, int] = dict.fromkeys(TaskState, 0)
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last is +Inf
        self.latency_sum = 0.0

    def saw(self, events: Sequence[Event]) -> None:
        by_state = self.by_state
        for event in events:
            task = event.task
            if task is None:
                continue
            kind = event.kind
            if kind == "task.state":
                status = task.status
                state = status.state
                by_state[state] += 1
                started, created = status.started_at, status.created_at
                if state is TaskState.RUNNING and status.attempts == 1 and started and created:
                    seconds = max(0.0, started - created)
                    self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
                    self.latency_sum += seconds
            elif kind == "task.submitted":
                self.submitted += 1


class ManagerMetrics:
    """Every metric of one manager, in a registry of its own."""

    def __init__(self, core: TaskManager) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.tally = Tally()
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
        r.register(_Counted(self.tally))
        r.register(_CoreState(core))

    def follow(self, core: TaskManager) -> None:
        """Count from now on: the hub's events and the store's commits."""
        core.hub.listeners.append(self.tally.saw)
        core.store.on_commit = self.committed

    def committed(self, seconds: float, rows: int) -> None:
        self.commit_seconds.observe(seconds)
        self.batch_rows.observe(rows)


class _Counted(Collector):
    """The tally as Prometheus counters and the submit-to-RUNNING histogram."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        t = self.tally
        yield CounterMetricFamily("corral_tasks_submitted", "Tasks submitted.", value=t.submitted)
        yield CounterMetricFamily(
            "corral_tasks_placed",
            "Attempts placed on a node (restarts included).",
            value=t.by_state[TaskState.SCHEDULED],
        )
        for state in _ENDINGS:
            yield CounterMetricFamily(
                f"corral_tasks_{state.value}",
                f"Tasks or attempts that reached {state.name} (a LOST one may be placed again).",
                value=t.by_state[state],
            )
        cumulative, buckets = 0, []
        for bound, count in zip((*LATENCY_BUCKETS, math.inf), t.buckets, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == math.inf else repr(float(bound)), cumulative))
        yield HistogramMetricFamily(
            "corral_placement_latency_seconds",
            "Seconds from a task's submission to its first RUNNING.",
            buckets=buckets,
            sum_value=t.latency_sum,
        )


def pending_reason(message: str, next_attempt_at: float | None, now: float) -> str:
    """A PENDING task's reason as a label: few values, whatever the message says."""
    if next_attempt_at is not None and next_attempt_at > now:
        return "backoff"
    if message.startswith(NO_FIT):
        return "no_fit"
    if message.startswith("waiting for placement"):
        return "not_tried"
    if message.startswith("waiting for "):  # "waiting for build (id...), running"
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
            by_state.add_metric([state.name], core.ledger.catalog.count(state))
        yield by_state
        now = time.time()
        reasons: Counter[str] = Counter()
        for task_id in list(core.ledger.pending()):
            task = core.ledger.find(task_id)
            if task is not None:
                status = task.status
                reasons[pending_reason(status.message, status.next_attempt_at, now)] += 1
        pending = GaugeMetricFamily(
            "corral_tasks_pending", "PENDING tasks by why they wait.", labels=["reason"]
        )
        for reason in ("not_tried", "no_fit", "backoff", "dependencies", "other"):
            pending.add_metric([reason], reasons[reason])
        yield pending

    def _nodes(self, core: TaskManager) -> Iterator[GaugeMetricFamily]:
        statuses: Counter[str] = Counter(record.status.name for record in core.ledger.registry)
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
        for record in core.ledger.registry:
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
