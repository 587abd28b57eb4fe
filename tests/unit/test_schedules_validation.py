"""Bad schedules are refused naming the field; files (YAML, JSON, appsettings.json) parse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.errors import ValidationError
from corral.schedule_validation import validate_schedule
from corral.schedulefiles import load_file, parse_duration, parse_schedule
from corral.schedules import (
    ConcurrencyPolicy,
    CronTrigger,
    Endpoint,
    HttpAction,
    IntervalTrigger,
    ScheduleSpec,
    TaskAction,
    Window,
)

GOOD = ScheduleSpec(
    name="nightly",
    trigger=CronTrigger("*/5 * * * *", "Europe/Madrid"),
    action=HttpAction((Endpoint(name="a", url="http://127.0.0.1:8080/x"),)),
    window=Window(8, 18),
)


def bad(**changes: object) -> ScheduleSpec:
    from dataclasses import replace

    return replace(GOOD, **changes)  # type: ignore[arg-type]


def test_a_good_schedule_passes() -> None:
    assert validate_schedule(GOOD) is GOOD


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (bad(name="Not Valid"), "schedule.name"),
        (bad(trigger=CronTrigger("61 * * * *")), "schedule.cron.expression"),
        (bad(trigger=CronTrigger("every minute")), "schedule.cron.expression"),
        (bad(trigger=CronTrigger("* * * * *", "Mars/Olympus")), "schedule.cron.time_zone"),
        (bad(trigger=IntervalTrigger(0)), "schedule.interval"),
        (bad(window=Window(18, 8)), "schedule.window.end_hour"),
        (bad(window=Window(8, 8)), "schedule.window.end_hour"),
        (bad(window=Window(8, 25)), "schedule.window.end_hour"),
        (bad(window=Window(8, 18, "Nowhere/City")), "schedule.window.time_zone"),
        (bad(action=HttpAction(())), "schedule.http.endpoints"),
        (
            bad(action=HttpAction((Endpoint(name="a", url="ftp://127.0.0.1/x"),))),
            "schedule.http.endpoints[0].url",
        ),
        (
            bad(action=HttpAction((Endpoint(name="a", host="", path="/x"),))),
            "schedule.http.endpoints[0].url",
        ),
        (
            bad(
                action=HttpAction(
                    (Endpoint(name="a", url="http://h/"), Endpoint(name="a", url="http://h/"))
                )
            ),
            "schedule.http.endpoints[1].name",
        ),
        (bad(history_limit=0), "schedule.history_limit"),
    ],
)
def test_bad_input_names_the_field(spec: ScheduleSpec, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        validate_schedule(spec)
    assert err.value.field == field


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("00:05:00", 300),
        ("1.02:00:00", 93600),
        ("90s", 90),
        ("1h30m", 5400),
        ("250ms", 0.25),
        (7, 7),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text, "x") == seconds


def test_a_bad_duration_names_its_key() -> None:
    with pytest.raises(ValidationError) as err:
        parse_schedule({"name": "a", "interval": "soon", "endpoints": []})
    assert err.value.field == "interval"


def test_the_originals_appsettings_json_reads_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "appsettings.json"
    path.write_text(
        json.dumps(
            {
                "Logging": {"LogLevel": {"Default": "Information"}},
                "AllowedHosts": "*",
                "CronJobSettings": {"StartHour": 8, "EndHour": 20, "TaskInterval": "00:00:30"},
                "HttpOrchestratorSettings": {
                    "Host": "localhost",
                    "Port": 5001,
                    "Endpoints": [
                        {"Name": "Worker1", "Path": "/api/worker1"},
                        {"Name": "Worker2", "Path": "/api/worker2"},
                    ],
                },
            }
        )
    )
    spec = load_file(path, name="default")
    assert spec.name == "default"
    assert spec.trigger == IntervalTrigger(30.0, after_run=True)
    # The original's hours are times of day; the end is inclusive (TimeOfDay <= EndHour).
    assert spec.window == Window(start_time=8 * 3600, end_time=20 * 3600)
    assert isinstance(spec.action, HttpAction)
    assert [e.target for e in spec.action.endpoints] == [
        "http://localhost:5001/api/worker1",
        "http://localhost:5001/api/worker2",
    ]
    assert [e.name for e in spec.action.endpoints] == ["Worker1", "Worker2"]
    validate_schedule(spec)


def test_corrals_yaml_form(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        """
name: reports
cron: "*/5 * * * *"
timeZone: Europe/Madrid
window: {startHour: 8, endHour: 18}
concurrency_policy: replace
startingDeadline: 2m
historyLimit: 5
host: 127.0.0.1
port: 9000
endpoints:
  - {name: users, path: /users}
  - name: billing
    url: https://127.0.0.1:9443/run
    method: post
    headers: {X-Token: abc}
    body: {"a": 1}
    timeout: 5s
    expectedStatus: [200, 202]
"""
    )
    spec = load_file(path)
    assert spec.name == "reports"
    assert spec.trigger == CronTrigger("*/5 * * * *", "Europe/Madrid")
    assert spec.concurrency_policy is ConcurrencyPolicy.REPLACE
    assert spec.starting_deadline == 120 and spec.history_limit == 5
    assert isinstance(spec.action, HttpAction)
    users, billing = spec.action.endpoints
    assert users.target == "http://127.0.0.1:9000/users"
    assert billing.target == "https://127.0.0.1:9443/run" and billing.method == "POST"
    assert (
        billing.body == b'{"a": 1}'
        and billing.timeout == 5
        and billing.expected_status == (200, 202)
    )
    validate_schedule(spec)


def test_a_task_template(tmp_path: Path) -> None:
    spec = parse_schedule(
        {
            "name": "t",
            "interval": "1m",
            "task": {"name": "job", "runtime": "process", "command": ["true"]},
        }
    )
    assert isinstance(spec.action, TaskAction) and spec.action.template.command == ("true",)
    validate_schedule(spec)


def test_unknown_keys_are_named() -> None:
    with pytest.raises(ValidationError) as err:
        parse_schedule({"name": "a", "interval": 60, "endpoint": []})
    assert err.value.field == "endpoint"


@pytest.mark.parametrize("name", ["schedules.example.yaml", "appsettings.example.json"])
def test_the_shipped_examples_are_valid(name: str) -> None:
    path = Path(__file__).parents[2] / "deploy" / name
    spec = validate_schedule(load_file(path))
    assert isinstance(spec.action, HttpAction) and spec.action.endpoints
