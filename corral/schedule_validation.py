"""Checks of a schedule before anything is stored; each error names its field.

Field paths follow the proto (``schedule.cron.expression``,
``schedule.http.endpoints[1].url``) so grpcurl, REST and CLI users see the
same name.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from corral.errors import ValidationError
from corral.model import HttpCall
from corral.schedules import (
    CronTrigger,
    Endpoint,
    HttpAction,
    IntervalTrigger,
    ScheduleSpec,
    TaskAction,
    Window,
)
from corral.validation import (
    check_http_call,
    check_name,
    check_seconds,
    check_text,
    validate_task_spec,
)

MAX_ENDPOINTS = 256
MAX_HISTORY = 1000
MIN_INTERVAL = 1.0


@lru_cache(maxsize=128)
def zone(name: str) -> ZoneInfo:
    """The IANA zone; UTC when empty. Raises ZoneInfoNotFoundError (a KeyError) when unknown."""
    return ZoneInfo(name or "UTC")


def check_zone(name: str, field: str) -> None:
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValidationError(field, f"unknown time zone {name!r}") from err


def check_cron(trigger: CronTrigger, field: str) -> None:
    expression = trigger.expression.strip()
    if not expression:
        raise ValidationError(f"{field}.expression", "is required (or give an interval instead)")
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise ValidationError(
            f"{field}.expression",
            f"{trigger.expression!r} is not a five-field cron expression (e.g. '*/5 * * * *')",
        )
    check_zone(trigger.time_zone, f"{field}.time_zone")


def check_window(window: Window, field: str) -> None:
    if window.start_time is not None or window.end_time is not None:
        _check_times(window, field)
        check_zone(window.time_zone, f"{field}.time_zone")
        return
    if not 0 <= window.start_hour <= 23:
        raise ValidationError(f"{field}.start_hour", "must be an hour between 0 and 23")
    if not 1 <= window.end_hour <= 24:
        raise ValidationError(f"{field}.end_hour", "must be an hour between 1 and 24")
    if window.start_hour >= window.end_hour:
        raise ValidationError(
            f"{field}.end_hour",
            f"must be greater than start_hour ({window.start_hour}), got {window.end_hour}",
        )
    check_zone(window.time_zone, f"{field}.time_zone")


def _check_times(window: Window, field: str) -> None:
    start, end = window.start_time, window.end_time
    if start is None:
        raise ValidationError(f"{field}.start_time", "is required with end_time")
    if end is None:
        raise ValidationError(f"{field}.end_time", "is required with start_time")
    for value, name in ((start, "start_time"), (end, "end_time")):
        if not 0 <= value < 86400:
            raise ValidationError(
                f"{field}.{name}", f"must be a time of day from 00:00:00 to 23:59:59, got {value}s"
            )
    if start > end:
        raise ValidationError(
            f"{field}.end_time",
            f"must not be before start_time ({window.describe()} never opens)",
        )


def call_of(endpoint: Endpoint) -> HttpCall:
    """The HTTP call an endpoint's task makes."""
    return HttpCall(
        url=endpoint.target,
        method=endpoint.method.upper() or "GET",
        headers=dict(endpoint.headers),
        body=endpoint.body,
        timeout=endpoint.timeout,
        expected_status=endpoint.expected_status,
    )


def check_endpoint(endpoint: Endpoint, field: str) -> None:
    if not endpoint.name:
        raise ValidationError(f"{field}.name", "is required")
    check_text(endpoint.name, f"{field}.name", limit=128)
    if not endpoint.url and not endpoint.host:
        raise ValidationError(f"{field}.url", "is required (or give host, port and path)")
    if endpoint.url and endpoint.host:
        raise ValidationError(f"{field}.host", "give either url or host, port and path")
    if endpoint.host and endpoint.port and not 1 <= endpoint.port <= 65535:
        raise ValidationError(f"{field}.port", f"must be between 1 and 65535, got {endpoint.port}")
    call = call_of(endpoint)
    try:
        check_http_call(call, field)
    except ValidationError as err:
        # The call's url is made from host+port+path when url is empty: name what the user gave.
        if err.field == f"{field}.url" and not endpoint.url:
            raise ValidationError(f"{field}.host", err.problem) from err
        raise


def validate_schedule(spec: ScheduleSpec, field: str = "schedule") -> ScheduleSpec:
    """Check every field; returns the spec unchanged or raises ValidationError."""
    check_name(spec.name, f"{field}.name")
    if isinstance(spec.trigger, CronTrigger):
        check_cron(spec.trigger, f"{field}.cron")
    elif isinstance(spec.trigger, IntervalTrigger):
        check_seconds(spec.trigger.seconds, f"{field}.interval", minimum=MIN_INTERVAL)
    if spec.window is not None:
        check_window(spec.window, f"{field}.window")
    check_seconds(spec.starting_deadline, f"{field}.starting_deadline")
    if not 1 <= spec.history_limit <= MAX_HISTORY:
        raise ValidationError(f"{field}.history_limit", f"must be between 1 and {MAX_HISTORY}")
    if isinstance(spec.action, HttpAction):
        endpoints = spec.action.endpoints
        if not endpoints:
            raise ValidationError(f"{field}.http.endpoints", "must list at least one endpoint")
        if len(endpoints) > MAX_ENDPOINTS:
            raise ValidationError(f"{field}.http.endpoints", f"has more than {MAX_ENDPOINTS}")
        seen: set[str] = set()
        for i, endpoint in enumerate(endpoints):
            check_endpoint(endpoint, f"{field}.http.endpoints[{i}]")
            if endpoint.name in seen:
                raise ValidationError(
                    f"{field}.http.endpoints[{i}].name", f"{endpoint.name!r} is used twice"
                )
            seen.add(endpoint.name)
    elif isinstance(spec.action, TaskAction):
        validate_task_spec(spec.action.template, f"{field}.task")
    return spec
