"""The .NET cron orchestrator's configuration, read the way ASP.NET reads it.

Sources are layered as ``WebApplication.CreateBuilder`` layers them: each file
in order (``appsettings.json``, then ``appsettings.{Environment}.json``), then
environment variables such as ``CronJobSettings__StartHour`` or
``HttpOrchestratorSettings__Endpoints__0__Path``. As in .NET, keys are
case-insensitive paths, a later source replaces single values and array items
merge by index, so a Production file holding only ``Port`` keeps the base
file's endpoints.

The two sections are read in every form the original has used:

- ``StartHour``/``EndHour`` as TimeSpans (``"05:00"``, ``"23:59:59"``) or as
  the earlier whole hours (``5``, ``18``); the end is inclusive to the second
  (the original checks ``TimeOfDay <= EndHour``).
- ``TaskInterval`` as a TimeSpan (``"00:20"`` is 20 minutes, ``hh:mm[:ss]``
  or ``d.hh:mm:ss``; a bare number is days, as ``TimeSpan.Parse`` reads it),
  or the earlier ``TaskIntervalMinutes``. The interval counts from the end of
  each run, as the original's ``Task.Delay(TaskInterval)`` after each round.
- ``HttpOrchestratorSettings``: ``Host`` (``http://svc``), ``Port`` (a number
  or a string, ``"8080"``) and ``Endpoints`` of ``{Name, Path}``.

A key in these two sections that Corral does not understand is an error that
names it. Other sections (Logging, Serilog, Kestrel, ...) are not Corral's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from corral.errors import ValidationError
from corral.schedules import HttpAction, IntervalTrigger, ScheduleSpec, Window

SECTIONS = ("CronJobSettings", "HttpOrchestratorSettings")
_CRON_KEYS = {
    "starthour": "StartHour",
    "endhour": "EndHour",
    "taskinterval": "TaskInterval",
    "taskintervalminutes": "TaskIntervalMinutes",
    "timezone": "TimeZone",
}
_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?", re.ASCII)
DEFAULT_INTERVAL = 60.0

Flat = dict[tuple[str, ...], tuple[tuple[str, ...], Any]]


# -- layering ---------------------------------------------------------------------------


def _flatten(value: Any, path: tuple[str, ...], out: Flat) -> None:
    if isinstance(value, Mapping):
        for key, child in value.items():
            _flatten(child, (*path, str(key)), out)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            _flatten(child, (*path, str(i)), out)
    else:
        lowered = tuple(p.lower() for p in path)
        spelled = out[lowered][0] if lowered in out else path
        out[lowered] = (spelled, value)


def _unflatten(flat: Flat, *, arrays: bool = True) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for spelled, value in flat.values():
        node = root
        for part in spelled[:-1]:
            node = _child(node, part)
        node[_spelling(node, spelled[-1])] = value
    return _lists(root) if arrays else root


def _spelling(node: dict[str, Any], key: str) -> str:
    # The first spelling of a key wins, as keys are case-insensitive.
    return next((k for k in node if k.lower() == key.lower()), key)


def _child(node: dict[str, Any], key: str) -> dict[str, Any]:
    key = _spelling(node, key)
    if not isinstance(node.get(key), dict):
        node[key] = {}
    return node[key]  # type: ignore[no-any-return]


def _lists(value: Any) -> Any:
    """Objects whose keys are all indexes become arrays, ordered by index (as the binder does)."""
    if not isinstance(value, dict):
        return value
    items = {k: _lists(v) for k, v in value.items()}
    if items and all(k.isascii() and k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def environment_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``CronJobSettings__StartHour=06:00`` and the like, as one nested document."""
    flat: Flat = {}
    for name, value in sorted(environ.items()):
        parts = tuple(re.split(r"__|:", name))
        if len(parts) > 1 and parts[0].lower() in {s.lower() for s in SECTIONS}:
            _flatten(value, parts, flat)
    # Indexes stay keys ("2" is the third endpoint even without a second): layer() makes arrays.
    return _unflatten(flat, arrays=False)


def layer(documents: Iterable[Any]) -> dict[str, Any]:
    """Later documents override earlier ones key by key (arrays by index)."""
    flat: Flat = {}
    for doc in documents:
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            raise ValidationError("file", "must be a mapping of keys to values")
        _flatten(doc, (), flat)
    return _unflatten(flat)


def environment_file(path: Path, environ: Mapping[str, str]) -> Path | None:
    """``appsettings.{Environment}.json`` beside ``appsettings.json``, as ASP.NET adds it.

    The environment is ``ASPNETCORE_ENVIRONMENT`` or ``DOTNET_ENVIRONMENT``,
    ``Production`` when neither is set (ASP.NET's default).
    """
    if path.name.lower() != "appsettings.json":
        return None
    name = environ.get("ASPNETCORE_ENVIRONMENT") or environ.get("DOTNET_ENVIRONMENT") or ""
    candidate = path.with_name(f"appsettings.{name or 'Production'}.json")
    return candidate if candidate.is_file() else None


def is_appsettings(d: Mapping[str, Any]) -> bool:
    return any(str(k).lower() in {s.lower() for s in SECTIONS} for k in d)


# -- the two sections -----------------------------------------------------------------


def parse_timespan(value: Any, field: str) -> float:
    """Seconds of a .NET TimeSpan text: ``hh:mm``, ``hh:mm:ss[.f]``, ``d.hh:mm:ss`` or ``d``."""
    text = str(value).strip()
    if text.isascii() and text.isdigit():
        return int(text) * 86400.0
    m = _TIMESPAN.fullmatch(text)
    if m is None:
        raise ValidationError(field, f"is not a TimeSpan such as 05:00 or 00:20:00, got {value!r}")
    days, hours, minutes, secs, fraction = m.groups()
    if int(hours) > 23 or int(minutes) > 59 or int(secs or 0) > 59:
        raise ValidationError(
            field, f"is out of range (hours 0-23, minutes and seconds 0-59): {text}"
        )
    whole = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(secs or 0)
    return whole + (float("0." + fraction) if fraction else 0.0)


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)
    return None


def time_of_day(value: Any, field: str) -> int:
    """A StartHour/EndHour: whole hours (the earlier int form) or a TimeSpan, in seconds."""
    hours = _whole(value)
    if hours is not None:
        if not 0 <= hours <= 23:
            raise ValidationError(field, f"must be an hour from 0 to 23, got {value!r}")
        return hours * 3600
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a time of day such as 05:00, got {value!r}")
    seconds = parse_timespan(value, field)
    if seconds >= 86400:
        raise ValidationError(field, f"must be a time of day before 24:00, got {value!r}")
    return int(seconds)


def _section(d: Mapping[str, Any], name: str) -> dict[str, Any]:
    for key, value in d.items():
        if str(key).lower() == name.lower():
            if value is None:
                return {}
            if not isinstance(value, Mapping):
                raise ValidationError(name, "must be an object")
            return {str(k): v for k, v in value.items()}
    return {}


def _cron_keys(section: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    """Lower-case name -> (the key as written, value); unknown keys refused."""
    out: dict[str, tuple[str, Any]] = {}
    for key, value in section.items():
        lowered = key.lower()
        if lowered not in _CRON_KEYS:
            known = ", ".join(v for k, v in _CRON_KEYS.items() if k != "timezone")
            raise ValidationError(
                f"CronJobSettings.{key}", f"is not a key Corral understands (known: {known})"
            )
        out[lowered] = (key, value)
    return out


def _interval(keys: Mapping[str, tuple[str, Any]]) -> float:
    if "taskinterval" in keys and "taskintervalminutes" in keys:
        raise ValidationError(
            f"CronJobSettings.{keys['taskintervalminutes'][0]}",
            "give either TaskInterval or TaskIntervalMinutes, not both",
        )
    if "taskintervalminutes" in keys:
        key, value = keys["taskintervalminutes"]
        minutes = _whole(value)
        if minutes is None or not 1 <= minutes <= 1440:
            raise ValidationError(
                f"CronJobSettings.{key}", f"must be whole minutes from 1 to 1440, got {value!r}"
            )
        return minutes * 60.0
    if "taskinterval" in keys:
        key, value = keys["taskinterval"]
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValidationError(f"CronJobSettings.{key}", f"must be a TimeSpan, got {value!r}")
        return parse_timespan(value, f"CronJobSettings.{key}")
    return DEFAULT_INTERVAL


def _window(keys: Mapping[str, tuple[str, Any]], environ: Mapping[str, str]) -> Window | None:
    if "starthour" not in keys and "endhour" not in keys:
        return None
    start = end = None
    if "starthour" in keys:
        key, value = keys["starthour"]
        start = time_of_day(value, f"CronJobSettings.{key}")
    if "endhour" in keys:
        key, value = keys["endhour"]
        end = time_of_day(value, f"CronJobSettings.{key}")
    if start is not None and end is not None and start > end:
        key, value = keys["endhour"]
        raise ValidationError(
            f"CronJobSettings.{key}",
            f"must not be before StartHour ({keys['starthour'][1]!r}), got {value!r}",
        )
    zone = keys["timezone"][1] if "timezone" in keys else _local_zone(environ)
    return Window(
        time_zone=str(zone or ""),
        start_time=0 if start is None else start,
        end_time=86399 if end is None else end,
    )


def _local_zone(environ: Mapping[str, str]) -> str:
    # The original reads DateTime.Now: the zone of its container (its Dockerfile sets TZ).
    tz = environ.get("TZ", "").lstrip(":")
    return tz if "/" in tz or tz == "UTC" else ""


def parse_appsettings(
    d: Mapping[str, Any],
    *,
    name: str,
    endpoints: Any,
    environ: Mapping[str, str] | None = None,
) -> ScheduleSpec:
    """The two sections as a schedule; ``endpoints`` reads the endpoint list.

    ``endpoints(raw_list, defaults)`` is the Corral-form endpoint reader, given
    the section's Host and Port as defaults.
    """
    environ = os.environ if environ is None else environ
    keys = _cron_keys(_section(d, "CronJobSettings"))
    window, interval = _window(keys, environ), _interval(keys)
    http = _section(d, "HttpOrchestratorSettings")
    defaults: dict[str, Any] = {}
    raw: Any = []
    for key, value in http.items():
        lowered = key.lower()
        if lowered in ("host", "port"):
            defaults[lowered] = value
        elif lowered == "endpoints":
            raw = value if value is not None else []
        else:
            raise ValidationError(
                f"HttpOrchestratorSettings.{key}",
                "is not a key Corral understands (known: Host, Port, Endpoints)",
            )
    if not isinstance(raw, list):
        raise ValidationError("HttpOrchestratorSettings.Endpoints", "must be a list")
    action: HttpAction = endpoints(raw, defaults)
    if not action.endpoints:
        raise ValidationError(
            "HttpOrchestratorSettings.Endpoints",
            "no endpoint is configured (give Endpoints in a file, or "
            "HttpOrchestratorSettings__Endpoints__0__Path and __Name in the environment)",
        )
    return ScheduleSpec(
        name=name,
        trigger=IntervalTrigger(interval, after_run=True),
        action=action,
        window=window,
    )
