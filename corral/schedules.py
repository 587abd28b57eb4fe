"""Domain types of schedules and runs, apart from the ``corral.v1`` messages.

A ``ScheduleSpec`` is what an operator defines and never changes behind their
back; ``Timing`` is what the loop persists to fire each slot once (the anchor
of interval triggers, the last slot it handled, the window end at which it
finishes); ``ScheduleStatus`` is what an operator sees. Times are POSIX
seconds, durations seconds, as in ``corral.model``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from corral.model import HttpResult, TaskId, TaskSpec, TaskState

DEFAULT_TIMEOUT = 10.0
DEFAULT_DEADLINE = 60.0
DEFAULT_HISTORY = 20


class ScheduleState(enum.Enum):
    IDLE = "Idle"
    RUNNING = "Running"
    STOPPED = "Stopped"


class ConcurrencyPolicy(enum.Enum):
    FORBID = "forbid"
    ALLOW = "allow"
    REPLACE = "replace"


class RunOutcome(enum.Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIALLY_FAILED = "partially-failed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class CronTrigger:
    expression: str
    time_zone: str = ""  # UTC when empty


@dataclass(frozen=True, slots=True)
class IntervalTrigger:
    seconds: float
    # Wait the interval after each run ends (the .NET orchestrator's loop:
    # run, then Task.Delay(TaskInterval)), rather than fire every interval from the start.
    after_run: bool = False


Trigger = CronTrigger | IntervalTrigger


@dataclass(frozen=True, slots=True)
class Window:
    """Firings happen only in hours [start_hour, end_hour) of each day.

    Or, when ``start_time`` and ``end_time`` (seconds since local midnight) are
    set, in [start_time, end_time] with the end inclusive to the second: the
    .NET orchestrator's ``StartHour``/``EndHour`` TimeSpans, checked as
    ``TimeOfDay >= StartHour && TimeOfDay <= EndHour``.
    """

    start_hour: int = 0
    end_hour: int = 24
    time_zone: str = ""  # the cron trigger's zone, else UTC, when empty
    start_time: int | None = None
    end_time: int | None = None

    @property
    def timed(self) -> bool:
        return self.start_time is not None and self.end_time is not None

    @property
    def start_second(self) -> int:
        """Seconds since midnight at which the window opens."""
        return self.start_time if self.start_time is not None else self.start_hour * 3600

    @property
    def end_second(self) -> int:
        """Seconds since midnight at which the window is closed (exclusive bound)."""
        return self.end_time + 1 if self.end_time is not None else self.end_hour * 3600

    def describe(self) -> str:
        if self.timed:
            return f"{_clock(self.start_second)}-{_clock(self.end_second - 1)}"
        return f"{self.start_hour:02d}-{self.end_hour:02d}h"


def _clock(second: int) -> str:
    return f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    url: str = ""
    host: str = ""
    port: int = 0
    path: str = ""
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    timeout: float = DEFAULT_TIMEOUT
    expected_status: tuple[int, ...] = ()

    @property
    def target(self) -> str:
        """The URL called: ``url``, else http://host:port/path."""
        if self.url:
            return self.url
        path = self.path if self.path.startswith("/") else "/" + self.path
        port = f":{self.port}" if self.port else ""
        return f"http://{self.host}{port}{path}"


@dataclass(frozen=True, slots=True)
class HttpAction:
    endpoints: tuple[Endpoint, ...]


@dataclass(frozen=True, slots=True)
class TaskAction:
    template: TaskSpec


Action = HttpAction | TaskAction


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    name: str
    trigger: Trigger
    action: Action
    window: Window | None = None
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.FORBID
    starting_deadline: float = DEFAULT_DEADLINE
    history_limit: int = DEFAULT_HISTORY
    # Set by the manager from the creator's token (``default`` unless scoped); not on the
    # wire. The tasks of its runs go there, and only callers of it see the schedule.
    namespace: str = ""

    @property
    def time_zone(self) -> str:
        """The zone of the window's hours."""
        if self.window is not None and self.window.time_zone:
            return self.window.time_zone
        if isinstance(self.trigger, CronTrigger):
            return self.trigger.time_zone
        return ""


@dataclass(frozen=True, slots=True)
class Timing:
    """What the loop persists so that a restart fires each slot at most once."""

    # When the loop was started; interval triggers fire at started_at + k * interval.
    started_at: float | None = None
    # The window end at which the loop finishes (goes Idle); None without a window.
    run_until: float | None = None
    # The last slot handled (run or skipped); written before the run starts.
    last_scheduled_at: float | None = None


@dataclass(frozen=True, slots=True)
class ScheduleStatus:
    state: ScheduleState = ScheduleState.IDLE
    last_run_at: float | None = None
    next_run_at: float | None = None
    active_runs: int = 0
    last_outcome: RunOutcome | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    spec: ScheduleSpec
    status: ScheduleStatus = field(default_factory=ScheduleStatus)
    timing: Timing = field(default_factory=Timing)
    created_at: float = 0.0

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True, slots=True)
class EndpointResult:
    name: str
    task_id: TaskId | None = None
    ok: bool = False
    state: TaskState = TaskState.PENDING
    result: HttpResult = field(default_factory=HttpResult)


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    schedule: str
    trigger: str  # "schedule", "manual" or "catch-up"
    scheduled_at: float
    started_at: float
    finished_at: float | None = None
    outcome: RunOutcome = RunOutcome.RUNNING
    results: tuple[EndpointResult, ...] = ()


def outcome_of(results: tuple[EndpointResult, ...]) -> RunOutcome:
    """Succeeded when every result is ok, failed when none is, partially failed between."""
    ok = sum(1 for r in results if r.ok)
    if results and ok == len(results):
        return RunOutcome.SUCCEEDED
    return RunOutcome.FAILED if ok == 0 else RunOutcome.PARTIALLY_FAILED
