"""Schedules written in files: Corral's YAML/JSON form and the original's appsettings.json.

Keys are matched without regard to case, '_' or '-', so ``startHour``,
``start_hour`` and ``StartHour`` are one key: the .NET orchestrator's
``appsettings.json`` (``CronJobSettings`` + ``HttpOrchestratorSettings``) reads
as it is, next to Corral's own form::

    name: default
    interval: 5m            # or  cron: "*/5 * * * *"  with  timeZone: Europe/Madrid
    window: {startHour: 8, endHour: 18}
    concurrencyPolicy: forbid
    host: 127.0.0.1         # defaults for endpoints that give only a path
    port: 8081
    endpoints:
      - {name: users, path: /work}
      - {name: billing, url: "http://127.0.0.1:9000/run", method: POST, timeout: 5s}

Errors name the key as written in the file (``endpoints[1].timeout``); the
spec is then checked by ``validation`` like any other.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from google.protobuf.json_format import ParseError

from corral import appsettings
from corral.convert.specs import spec_from_dict
from corral.errors import ValidationError
from corral.schedules import (
    DEFAULT_DEADLINE,
    DEFAULT_HISTORY,
    DEFAULT_TIMEOUT,
    Action,
    ConcurrencyPolicy,
    CronTrigger,
    Endpoint,
    HttpAction,
    IntervalTrigger,
    ScheduleSpec,
    TaskAction,
    Trigger,
    Window,
)

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_UNIT_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", re.ASCII)
# .NET TimeSpan text: [d.]hh:mm:ss[.fffffff]
_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)", re.ASCII)

_TOP_KEYS = {
    "name", "cron", "schedule", "timezone", "interval", "window", "starthour", "endhour",
    "concurrencypolicy", "startingdeadline", "historylimit", "scheme", "host", "port",
    "endpoints", "task",
}  # fmt: skip
_ENDPOINT_KEYS = {
    "name", "url", "scheme", "host", "port", "path", "method", "headers", "body", "timeout",
    "expectedstatus",
}  # fmt: skip


def _key(text: str) -> str:
    return text.lower().replace("_", "").replace("-", "")


def _normal(data: Any, field: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ValidationError(field or "file", "must be a mapping of keys to values")
    return {_key(str(k)): v for k, v in data.items()}


def parse_duration(value: Any, field: str) -> float:
    """Seconds from a number, '90s' / '5m' / '1h30m' / '250ms', or a .NET 'hh:mm:ss'."""
    if isinstance(value, bool):
        raise ValidationError(field, f"is not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if m := _TIMESPAN.fullmatch(text):
        days, hours, minutes, secs = m.groups()
        return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(secs)
    parts = _UNIT_PART.findall(text)
    if parts and "".join(n + u for n, u in parts) == text:
        return sum(float(n) * _UNITS[u] for n, u in parts)
    raise ValidationError(field, f"is not a duration (use e.g. 30s, 5m, 1h or 00:05:00): {value!r}")


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationError(field, f"must be a whole number, got {value!r}")
    try:
        return int(value)
    except ValueError as err:
        raise ValidationError(field, f"must be a whole number, got {value!r}") from err


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValidationError(field, f"must be text, got {value!r}")
    return str(value)


def _unknown(data: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
    for key in data:
        if key not in allowed:
            raise ValidationError(f"{prefix}{key}", "is not a known key")


def _endpoint(raw: Any, field: str, defaults: Mapping[str, Any]) -> Endpoint:
    d = _normal(raw, field)
    _unknown(d, _ENDPOINT_KEYS, f"{field}.")
    name = _text(d.get("name", d.get("path", "")), f"{field}.name")
    url = _text(d.get("url", ""), f"{field}.url")
    host = port = None
    if not url:
        scheme = _text(d.get("scheme", defaults.get("scheme", "http")), f"{field}.scheme")
        host = _text(d.get("host", defaults.get("host", "")), f"{field}.host")
        port = _int(d.get("port", defaults.get("port", 0)), f"{field}.port")
        if "://" in host:  # a Host given as a base URL ("http://svc:8080")
            scheme, host = host.split("://", 1)
            host = host.rstrip("/")
        if scheme != "http" and host:
            path = _text(d.get("path", "/"), f"{field}.path")
            plain = Endpoint(name=name, host=host, port=port, path=path).target
            url = scheme + plain.removeprefix("http")
            host, port = "", 0
    body = d.get("body", b"")
    if isinstance(body, Mapping | list):
        body = json.dumps(body)
    expected = d.get("expectedstatus", [])
    expected = expected if isinstance(expected, list) else [expected]
    return Endpoint(
        name=name,
        url=url,
        host=host or "",
        port=port or 0,
        path=_text(d.get("path", ""), f"{field}.path") if not url else "",
        method=_text(d.get("method", "GET"), f"{field}.method").upper(),
        headers={
            str(k): _text(v, f"{field}.headers.{k}") for k, v in (d.get("headers") or {}).items()
        },
        body=body.encode() if isinstance(body, str) else bytes(body),
        timeout=parse_duration(d.get("timeout", DEFAULT_TIMEOUT), f"{field}.timeout"),
        expected_status=tuple(
            _int(c, f"{field}.expectedStatus[{i}]") for i, c in enumerate(expected)
        ),
    )


def _trigger(d: Mapping[str, Any]) -> Trigger:
    cron = d.get("cron", d.get("schedule"))
    if cron is not None and "interval" in d:
        raise ValidationError("interval", "give either cron or interval, not both")
    if cron is not None:
        return CronTrigger(_text(cron, "cron"), _text(d.get("timezone", ""), "timeZone"))
    if "interval" in d:
        return IntervalTrigger(parse_duration(d["interval"], "interval"))
    raise ValidationError("cron", "a schedule needs a cron expression or an interval")


def _window(d: Mapping[str, Any]) -> Window | None:
    if "window" in d:
        w = _normal(d["window"], "window")
        _unknown(w, {"starthour", "endhour", "timezone"}, "window.")
        return Window(
            _int(w.get("starthour", 0), "window.startHour"),
            _int(w.get("endhour", 24), "window.endHour"),
            _text(w.get("timezone", ""), "window.timeZone"),
        )
    if "starthour" in d or "endhour" in d:
        return Window(
            _int(d.get("starthour", 0), "startHour"), _int(d.get("endhour", 24), "endHour")
        )
    return None


def _action(d: Mapping[str, Any]) -> Action:
    if "task" in d and "endpoints" in d:
        raise ValidationError("task", "give either endpoints or a task, not both")
    if "task" in d:
        if not isinstance(d["task"], Mapping):
            raise ValidationError("task", "must be a task spec mapping")
        try:
            return TaskAction(spec_from_dict(dict(d["task"])))
        except ParseError as err:
            raise ValidationError("task", str(err)) from err
    raw = d.get("endpoints") or []
    if not isinstance(raw, list):
        raise ValidationError("endpoints", "must be a list")
    defaults = {k: d[k] for k in ("scheme", "host", "port") if k in d}
    return HttpAction(tuple(_endpoint(e, f"endpoints[{i}]", defaults) for i, e in enumerate(raw)))


def _policy(value: Any) -> ConcurrencyPolicy:
    try:
        return ConcurrencyPolicy(_text(value, "concurrencyPolicy").lower())
    except ValueError as err:
        raise ValidationError("concurrencyPolicy", "must be forbid, allow or replace") from err


def parse_schedule(
    data: Any, *, name: str = "", environ: Mapping[str, str] | None = None
) -> ScheduleSpec:
    """A spec from a parsed document (Corral's form or appsettings.json). Not yet validated."""
    d = _normal(data, "")
    if "cronjobsettings" in d or "httporchestratorsettings" in d:
        return appsettings.parse_appsettings(
            data, name=name or "default", endpoints=_appsettings_endpoints, environ=environ
        )
    _unknown(d, _TOP_KEYS, "")
    return ScheduleSpec(
        name=name or _text(d.get("name", ""), "name"),
        trigger=_trigger(d),
        action=_action(d),
        window=_window(d),
        concurrency_policy=_policy(d.get("concurrencypolicy", "forbid")),
        starting_deadline=parse_duration(
            d.get("startingdeadline", DEFAULT_DEADLINE), "startingDeadline"
        ),
        history_limit=_int(d.get("historylimit", DEFAULT_HISTORY), "historyLimit"),
    )


def _appsettings_endpoints(raw: list[Any], defaults: Mapping[str, Any]) -> HttpAction:
    return HttpAction(
        tuple(
            _endpoint(e, f"HttpOrchestratorSettings.Endpoints[{i}]", defaults)
            for i, e in enumerate(raw)
        )
    )


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValidationError(str(path), f"is not valid YAML or JSON: {err}") from err
    except OSError as err:
        raise ValidationError(str(path), f"cannot be read: {err.strerror}") from err


def load_file(path: Path, *, name: str = "") -> ScheduleSpec:
    """Read a YAML or JSON file (JSON is YAML, so one parser reads both)."""
    return parse_schedule(_read(path), name=name, environ={})


def load_files(
    paths: Sequence[Path], *, name: str = "", environ: Mapping[str, str] | None = None
) -> ScheduleSpec:
    """Several files merged in order, then environment overrides, as ASP.NET layers them.

    ``appsettings.json`` brings ``appsettings.{Environment}.json`` from beside it
    (unless that file is listed too); ``CronJobSettings__*`` and
    ``HttpOrchestratorSettings__*`` variables override the files.
    """
    environ = os.environ if environ is None else environ
    ordered: list[Path] = []
    for path in paths:
        ordered.append(path)
        extra = appsettings.environment_file(path, environ)
        if extra is not None and extra not in paths:
            ordered.append(extra)
    documents = [(path, _read(path)) for path in ordered]
    overrides = appsettings.environment_overrides(environ)
    if len(documents) == 1 and not overrides:
        return parse_schedule(documents[0][1], name=name, environ=environ)
    for path, doc in documents:
        if doc is not None and not isinstance(doc, Mapping):
            raise ValidationError(str(path), "must be a mapping of keys to values")
    merged = appsettings.layer([doc for _, doc in documents] + [overrides])
    return parse_schedule(merged, name=name, environ=environ)


def health_schedule(url: str, *, name: str = "default") -> ScheduleSpec:
    """The default of ``corral up`` without a file: call ``url`` every minute."""
    return ScheduleSpec(
        name=name,
        trigger=IntervalTrigger(60.0),
        action=HttpAction((Endpoint(name="health", url=url, timeout=DEFAULT_TIMEOUT),)),
    )
