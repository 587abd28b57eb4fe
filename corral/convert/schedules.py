"""``corral.v1`` schedule messages <-> the domain types of ``corral.schedules``.

The client, the schedule servicer and the schedule store convert here. The
store keeps specs and run results as the proto's JSON mapping (readable with
``sqlite3``, and it grows with the proto), so the JSON codecs live here too.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from corral.convert import (
    body_fields,
    body_from,
    duration,
    enum_from,
    enum_to,
    seconds,
    spec_from,
    spec_to,
    state_from,
    state_to,
    time_from,
    timestamp,
)
from corral.model import HttpResult, TaskId, TaskState
from corral.schedules import (
    DEFAULT_DEADLINE,
    DEFAULT_HISTORY,
    DEFAULT_TIMEOUT,
    ConcurrencyPolicy,
    CronTrigger,
    Endpoint,
    EndpointResult,
    HttpAction,
    IntervalTrigger,
    Run,
    RunOutcome,
    Schedule,
    ScheduleSpec,
    ScheduleState,
    ScheduleStatus,
    TaskAction,
    Trigger,
    Window,
)
from corral.v1 import schedules_pb2 as pb

_STATE_NAMES = {
    ScheduleState.IDLE: "SCHEDULE_STATE_IDLE",
    ScheduleState.RUNNING: "SCHEDULE_STATE_RUNNING",
    ScheduleState.STOPPED: "SCHEDULE_STATE_STOPPED",
}


# Proto3 enum zero: no run has finished yet.
_NO_OUTCOME: Any = pb.RUN_OUTCOME_UNSPECIFIED


# -- spec ------------------------------------------------------------------------


def endpoint_from(m: pb.Endpoint) -> Endpoint:
    return Endpoint(
        name=m.name,
        url=m.url,
        host=m.host,
        port=m.port,
        path=m.path,
        method=(m.method or "GET").upper(),
        headers=dict(m.headers),
        body=m.body,
        timeout=seconds(m.timeout) if m.HasField("timeout") else DEFAULT_TIMEOUT,
        expected_status=tuple(m.expected_status),
    )


def endpoint_to(e: Endpoint) -> pb.Endpoint:
    return pb.Endpoint(
        name=e.name,
        method=e.method,
        url=e.url,
        host=e.host,
        port=e.port,
        path=e.path,
        headers=dict(e.headers),
        body=e.body,
        timeout=duration(e.timeout),
        expected_status=list(e.expected_status),
    )


def window_from(m: pb.Window) -> Window:
    timed = m.HasField("start_time") or m.HasField("end_time")
    return Window(
        m.start_hour,
        m.end_hour,
        m.time_zone,
        start_time=round(seconds(m.start_time)) if timed else None,
        end_time=round(seconds(m.end_time)) if timed else None,
    )


def window_to(w: Window) -> pb.Window:
    out = pb.Window(start_hour=w.start_hour, end_hour=w.end_hour, time_zone=w.time_zone)
    if w.start_time is not None:
        out.start_time.CopyFrom(duration(w.start_time))
    if w.end_time is not None:
        out.end_time.CopyFrom(duration(w.end_time))
    return out


def _trigger_from(m: pb.Schedule) -> Trigger:
    which = m.WhichOneof("trigger")
    if which == "interval":
        return IntervalTrigger(seconds(m.interval), after_run=m.interval_after_run)
    # No trigger at all reads as an empty cron expression, which validation names.
    return CronTrigger(m.cron.expression, m.cron.time_zone)


def spec_of(m: pb.Schedule) -> ScheduleSpec:
    """The spec a user sent; unset fields take their defaults. Not validated."""
    action: HttpAction | TaskAction
    if m.WhichOneof("action") == "task":
        action = TaskAction(spec_from(m.task))
    else:
        action = HttpAction(tuple(endpoint_from(e) for e in m.http.endpoints))
    policy = enum_from(
        pb.ConcurrencyPolicy,
        m.concurrency_policy,
        ConcurrencyPolicy,
        "CONCURRENCY_POLICY_",
        ConcurrencyPolicy.FORBID,
    )
    return ScheduleSpec(
        name=m.name,
        trigger=_trigger_from(m),
        action=action,
        window=window_from(m.window) if m.HasField("window") else None,
        concurrency_policy=policy,
        starting_deadline=(
            seconds(m.starting_deadline) if m.HasField("starting_deadline") else DEFAULT_DEADLINE
        ),
        history_limit=m.history_limit or DEFAULT_HISTORY,
    )


def spec_message(s: ScheduleSpec) -> pb.Schedule:
    out = pb.Schedule(
        name=s.name,
        concurrency_policy=enum_to(
            pb.ConcurrencyPolicy, s.concurrency_policy, "CONCURRENCY_POLICY_"
        ),
        starting_deadline=duration(s.starting_deadline),
        history_limit=s.history_limit,
    )
    if isinstance(s.trigger, CronTrigger):
        out.cron.CopyFrom(
            pb.CronTrigger(expression=s.trigger.expression, time_zone=s.trigger.time_zone)
        )
    else:
        out.interval.CopyFrom(duration(s.trigger.seconds))
        out.interval_after_run = s.trigger.after_run
    if s.window is not None:
        out.window.CopyFrom(window_to(s.window))
    if isinstance(s.action, HttpAction):
        out.http.CopyFrom(pb.HttpAction(endpoints=[endpoint_to(e) for e in s.action.endpoints]))
    else:
        out.task.CopyFrom(spec_to(s.action.template))
    return out


def schedule_to(s: Schedule) -> pb.Schedule:
    out = spec_message(s.spec)
    created = timestamp(s.created_at)
    if created is not None:
        out.created_at.CopyFrom(created)
    st = s.status
    out.status.CopyFrom(
        pb.ScheduleStatus(
            state=pb.ScheduleState.Value(_STATE_NAMES[st.state]),
            last_run_at=timestamp(st.last_run_at),
            next_run_at=timestamp(st.next_run_at),
            active_runs=st.active_runs,
            last_outcome=outcome_to(st.last_outcome) if st.last_outcome else _NO_OUTCOME,
        )
    )
    return out


def schedule_from(m: pb.Schedule) -> Schedule:
    """For clients that want the domain view back (the CLI)."""
    st = m.status
    status = ScheduleStatus(
        state=enum_from(
            pb.ScheduleState, st.state, ScheduleState, "SCHEDULE_STATE_", ScheduleState.IDLE
        ),
        last_run_at=time_from(st.last_run_at),
        next_run_at=time_from(st.next_run_at),
        active_runs=st.active_runs,
        last_outcome=outcome_from(st.last_outcome) if st.last_outcome else None,
    )
    return Schedule(spec=spec_of(m), status=status, created_at=time_from(m.created_at) or 0.0)


# -- runs -------------------------------------------------------------------------


def outcome_to(o: RunOutcome) -> Any:
    return enum_to(pb.RunOutcome, o, "RUN_OUTCOME_")


def outcome_from(number: int) -> RunOutcome:
    return enum_from(pb.RunOutcome, number, RunOutcome, "RUN_OUTCOME_", RunOutcome.RUNNING)


def result_to(r: EndpointResult) -> pb.EndpointResult:
    return pb.EndpointResult(
        name=r.name,
        task_id=r.task_id or "",
        ok=r.ok,
        status_code=r.result.status_code,
        latency_ms=r.result.latency_ms,
        error=r.result.error,
        state=state_to(r.state),
        body_truncated=r.result.body_truncated,
        **body_fields(r.result.body),
    )


def result_from(m: pb.EndpointResult) -> EndpointResult:
    return EndpointResult(
        name=m.name,
        task_id=TaskId(m.task_id) if m.task_id else None,
        ok=m.ok,
        state=state_from(m.state) if m.state else TaskState.PENDING,
        result=HttpResult(
            m.status_code, m.latency_ms, body_from(m.body, m.body_text), m.body_truncated, m.error
        ),
    )


def run_to(r: Run) -> pb.Run:
    return pb.Run(
        id=r.id,
        schedule=r.schedule,
        trigger=r.trigger,
        scheduled_at=timestamp(r.scheduled_at),
        started_at=timestamp(r.started_at),
        finished_at=timestamp(r.finished_at),
        outcome=outcome_to(r.outcome),
        results=[result_to(x) for x in r.results],
    )


def run_from(m: pb.Run) -> Run:
    return Run(
        id=m.id,
        schedule=m.schedule,
        trigger=m.trigger,
        scheduled_at=time_from(m.scheduled_at) or 0.0,
        started_at=time_from(m.started_at) or 0.0,
        finished_at=time_from(m.finished_at),
        outcome=outcome_from(m.outcome),
        results=tuple(result_from(x) for x in m.results),
    )


# -- storage codecs ----------------------------------------------------------------


def spec_json(s: ScheduleSpec) -> str:
    return json_format.MessageToJson(spec_message(s), indent=None)


def spec_from_json(text: str) -> ScheduleSpec:
    return spec_of(json_format.Parse(text, pb.Schedule()))


def results_json(results: tuple[EndpointResult, ...]) -> str:
    run = pb.Run(results=[result_to(r) for r in results])
    return json_format.MessageToJson(run, indent=None)


def results_from_json(text: str) -> tuple[EndpointResult, ...]:
    return tuple(result_from(m) for m in json_format.Parse(text, pb.Run()).results)
