"""The .NET cron orchestrator's own settings files and its loop, day after day.

The files below have the shapes of the original's appsettings*.json across
its history (TimeSpan strings, the earlier whole hours and
TaskIntervalMinutes, a Production file holding only the port as a string);
the loop runs against a hand-moved clock for three simulated days.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from schedules_fakes import Endpoints, FakeTasks
from waiting import eventually

from corral.errors import ValidationError
from corral.schedulefiles import load_files
from corral.schedules import IntervalTrigger, ScheduleState, Window
from manager.config import ManagerConfig
from manager.schedules import SchedulesExtension
from manager.schedules.timing import ManualClock

UTC = ZoneInfo("UTC")

# appsettings.json of the original, with the orchestrator's endpoints.
BASE: dict[str, Any] = {
    "Logging": {"LogLevel": {"Default": "Information", "Microsoft.AspNetCore": "Warning"}},
    "Serilog": {"MinimumLevel": {"Default": "Information"}, "WriteTo": [{"Name": "Console"}]},
    "HttpOrchestratorSettings": {
        "Host": "http://127.0.0.1",
        "Port": 5000,
        "Endpoints": [{"Name": "worker-a", "Path": "/ok"}, {"Name": "worker-b", "Path": "/b"}],
    },
    "AllowedHosts": "*",
}
# Its appsettings.Production.json: TimeSpans, and only the port (as a string).
PRODUCTION: dict[str, Any] = {
    "Serilog": {
        "MinimumLevel": {"Default": "Warning", "Override": {"Orchestrator": "Information"}}
    },
    "CronJobSettings": {"StartHour": "05:00", "EndHour": "18:00", "TaskInterval": "00:20"},
    "HttpOrchestratorSettings": {"Port": "8080"},
}
# Its appsettings.Development.json.
DEVELOPMENT: dict[str, Any] = {
    "CronJobSettings": {"StartHour": "00:00", "EndHour": "23:59:59", "TaskInterval": "00:01"}
}
# The earlier form: whole hours and minutes.
EARLIER: dict[str, Any] = {
    "Logging": {"LogLevel": {"Default": "Information"}},
    "CronJobSettings": {"StartHour": 5, "EndHour": 18, "TaskIntervalMinutes": 20},
    "HttpOrchestratorSettings": BASE["HttpOrchestratorSettings"],
    "AllowedHosts": "*",
}


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc, indent=2))
    return path


def test_the_production_layering(tmp_path: Path) -> None:
    base = write(tmp_path / "appsettings.json", BASE)
    write(tmp_path / "appsettings.Production.json", PRODUCTION)
    # ASP.NET's default environment is Production: appsettings.json brings it along.
    spec = load_files([base], environ={})
    assert spec.trigger == IntervalTrigger(1200.0, after_run=True)
    assert spec.window == Window(start_time=5 * 3600, end_time=18 * 3600)
    urls = [e.target for e in spec.action.endpoints]  # type: ignore[union-attr]
    assert urls == ["http://127.0.0.1:8080/ok", "http://127.0.0.1:8080/b"]


def test_the_development_file_and_the_environment_overrides(tmp_path: Path) -> None:
    base = write(tmp_path / "appsettings.json", BASE)
    write(tmp_path / "appsettings.Development.json", DEVELOPMENT)
    environ = {
        "ASPNETCORE_ENVIRONMENT": "Development",
        "CronJobSettings__StartHour": "06:30",
        "HttpOrchestratorSettings__Endpoints__0__Path": "/override",
        "HttpOrchestratorSettings__Endpoints__2__Name": "worker-c",
        "HttpOrchestratorSettings__Endpoints__2__Path": "/c",
        "UNRELATED__Thing": "x",
    }
    spec = load_files([base], environ=environ)
    assert spec.trigger == IntervalTrigger(60.0, after_run=True)
    assert spec.window == Window(start_time=6 * 3600 + 1800, end_time=86399)
    endpoints = spec.action.endpoints  # type: ignore[union-attr]
    assert [(e.name, e.path) for e in endpoints] == [
        ("worker-a", "/override"),
        ("worker-b", "/b"),
        ("worker-c", "/c"),
    ]


def test_several_files_merge_in_order(tmp_path: Path) -> None:
    files = [
        write(tmp_path / "a.json", BASE),
        write(tmp_path / "b.json", PRODUCTION),
        write(tmp_path / "c.json", {"CronJobSettings": {"TaskInterval": "00:05:30"}}),
    ]
    spec = load_files(files, environ={})
    assert spec.trigger == IntervalTrigger(330.0, after_run=True)
    assert spec.window == Window(start_time=5 * 3600, end_time=18 * 3600)


def test_the_earlier_whole_hours_and_minutes(tmp_path: Path) -> None:
    spec = load_files([write(tmp_path / "settings.json", EARLIER)], environ={})
    # Every 20 minutes (it read as every 60 s before), 05:00 to 18:00 inclusive.
    assert spec.trigger == IntervalTrigger(1200.0, after_run=True)
    assert spec.window == Window(start_time=5 * 3600, end_time=18 * 3600)


@pytest.mark.parametrize(
    ("cron", "field", "words"),
    [
        ({"StartHour": "05:00", "Typo": 1}, "CronJobSettings.Typo", "not a key"),
        ({"StartHour": "05:00", "TaskIntervalMinutes": 20, "TaskInterval": "00:20"},
         "CronJobSettings.TaskIntervalMinutes", "either"),
        ({"StartHour": "25:00"}, "CronJobSettings.StartHour", "out of range"),
        ({"StartHour": "soon"}, "CronJobSettings.StartHour", "TimeSpan"),
        ({"StartHour": 24}, "CronJobSettings.StartHour", "hour from 0 to 23"),
        ({"TaskIntervalMinutes": 0}, "CronJobSettings.TaskIntervalMinutes", "1 to 1440"),
        ({"StartHour": "18:00", "EndHour": "05:00"}, "CronJobSettings.EndHour", "before"),
    ],
)  # fmt: skip
def test_bad_keys_and_values_are_named(
    tmp_path: Path, cron: dict[str, Any], field: str, words: str
) -> None:
    doc = {**BASE, "CronJobSettings": cron}
    with pytest.raises(ValidationError) as err:
        load_files([write(tmp_path / "s.json", doc)], environ={})
    assert err.value.field == field and words in err.value.problem


def test_an_unknown_key_of_the_http_section_is_named(tmp_path: Path) -> None:
    doc = {"HttpOrchestratorSettings": {**BASE["HttpOrchestratorSettings"], "Hots": "x"}}
    with pytest.raises(ValidationError) as err:
        load_files([write(tmp_path / "s.json", doc)], environ={})
    assert err.value.field == "HttpOrchestratorSettings.Hots"


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> float:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC).timestamp()


@pytest.fixture
async def endpoints() -> AsyncIterator[Endpoints]:
    async with Endpoints() as ep:
        yield ep


def _settings(tmp_path: Path, ep: Endpoints, endpoint: str = "ok") -> Path:
    doc = {
        "CronJobSettings": {"StartHour": "05:00", "EndHour": "18:00", "TaskInterval": "00:20"},
        "HttpOrchestratorSettings": {
            "Host": "http://127.0.0.1",
            "Port": str(ep.port),
            "Endpoints": [{"Name": "worker", "Path": f"/{endpoint}"}],
        },
    }
    return write(tmp_path / "appsettings.json", doc)


async def _extension(
    tmp_path: Path, files: tuple[Path, ...], clock: ManualClock, **config: Any
) -> tuple[SchedulesExtension, FakeTasks]:
    tasks = FakeTasks()
    cfg = ManagerConfig(data_dir=tmp_path, schedules_file=files, **config)
    ext = SchedulesExtension(tasks, cfg, clock)
    await ext.start()
    return ext, tasks


async def test_the_loop_runs_in_the_window_every_day(tmp_path: Path, endpoints: Endpoints) -> None:
    clock = ManualClock(at(10, 4))  # the service starts at 04:00, before the window
    ext, tasks = await _extension(tmp_path, (_settings(tmp_path, endpoints),), clock)
    try:
        # Running from boot, waiting for 05:00.
        assert (await ext.loops.get("default")).status.state is ScheduleState.RUNNING
        await eventually(lambda: clock.sleepers == [at(10, 5)])
        fired: list[float] = []
        for _ in range(3 * 40):
            wake = clock.sleepers[0]
            clock.set(wake)
            fired.append(wake)
            calls = len(fired)
            # The round is over when the loop sleeps again (it waits for the run's end).
            await eventually(lambda n=calls: endpoints.hits.get("ok") == n and clock.sleepers)  # type: ignore[misc]
        # 05:00, 05:20, ..., 18:00 (inclusive) each day, then the next day's 05:00.
        days = {day: [t for t in fired if at(day, 0) <= t < at(day + 1, 0)] for day in (10, 11, 12)}
        for day, times in days.items():
            assert times[0] == at(day, 5) and times[-1] == at(day, 18), day
            assert len(times) == 40
            assert all(b - a == 1200 for a, b in itertools.pairwise(times))
        assert clock.sleepers == [at(13, 5)]
        assert (await ext.loops.get("default")).status.next_run_at == at(13, 5)
        assert endpoints.hits["ok"] == 120
    finally:
        await ext.close()
        await tasks.close()


async def test_the_interval_counts_from_the_end_of_each_run(
    tmp_path: Path, endpoints: Endpoints
) -> None:
    clock = ManualClock(at(10, 9))
    ext, tasks = await _extension(tmp_path, (_settings(tmp_path, endpoints, "gate"),), clock)
    try:
        await eventually(lambda: endpoints.hits.get("gate") == 1)
        clock.set(at(10, 9, 7))  # the round takes seven minutes
        endpoints.gate.set()
        await eventually(lambda: clock.sleepers == [at(10, 9, 27)])
    finally:
        await ext.close()
        await tasks.close()


async def test_autostart_can_be_turned_off(tmp_path: Path, endpoints: Endpoints) -> None:
    clock = ManualClock(at(10, 9))
    files = (_settings(tmp_path, endpoints),)
    ext, tasks = await _extension(tmp_path, files, clock, schedules_autostart=False)
    try:
        assert (await ext.loops.get("default")).status.state is ScheduleState.IDLE
        assert endpoints.hits == {}
    finally:
        await ext.close()
        await tasks.close()
