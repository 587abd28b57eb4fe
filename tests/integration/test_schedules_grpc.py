"""ScheduleService over real gRPC, through the real gateway (/api/cronjob/* and
/v1/schedules) and the CLI: a grpc.aio server with the schedules extension whose http
tasks run in-process against real local endpoints."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
import typer
from schedules_fakes import Endpoints, FakeTasks
from typer.testing import CliRunner
from waiting import eventually

from corral.cli import schedules as schedules_cli
from corral.errors import ValidationError
from corral.serving import channel as open_channel
from corral.serving import start_server
from corral.v1 import schedules_pb2 as pb
from corral.v1.schedules_pb2_grpc import ScheduleServiceStub
from gateway.server import serve as serve_gateway
from manager.config import ManagerConfig
from manager.schedules import SchedulesExtension


@dataclass
class Stack:
    target: str
    stub: ScheduleServiceStub
    http: httpx.AsyncClient
    ep: Endpoints
    ext: SchedulesExtension


@asynccontextmanager
async def _stack(config: ManagerConfig, ep: Endpoints) -> AsyncIterator[Stack]:
    tasks = FakeTasks()
    ext = SchedulesExtension(tasks, config)
    server = await start_server("127.0.0.1:0", [ext.register])
    await ext.start()
    target = f"127.0.0.1:{server.port}"
    chan = open_channel(target)
    gw = await serve_gateway(target, "127.0.0.1:0", compat_modules=["gateway.compat.cronjob"])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.port}", timeout=30) as http:
            yield Stack(target, ScheduleServiceStub(chan), http, ep, ext)
    finally:
        await gw.stop()
        await chan.close()
        await ext.close()
        await server.stop(0)
        await tasks.close()


def appsettings(ep: Endpoints, path: Path, interval: str = "00:01:00") -> Path:
    path.write_text(
        json.dumps(
            {
                "CronJobSettings": {
                    "StartHour": "00:00",
                    "EndHour": "23:59:59",
                    "TaskInterval": interval,
                },
                "HttpOrchestratorSettings": {
                    "Host": "127.0.0.1",
                    "Port": ep.port,
                    "Endpoints": [
                        {"Name": "one", "Path": "/one"},
                        {"Name": "gate", "Path": "/gate"},
                    ],
                },
            }
        )
    )
    return path


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with Endpoints() as ep:
        config = ManagerConfig(
            data_dir=tmp_path,
            schedules_file=(appsettings(ep, tmp_path / "appsettings.json"),),
            schedules_autostart=False,
        )
        async with _stack(config, ep) as s:
            yield s


async def test_the_four_original_routes(stack: Stack) -> None:
    get = stack.http.get
    r = await get("/api/cronjob/status")
    assert (r.status_code, r.json()) == (200, {"status": "Idle"})
    r = await get("/api/cronjob/stop")
    assert (r.status_code, r.json()) == (400, {"message": "CronJob is not running"})

    stack.ep.gate.set()
    r = await get("/api/cronjob/run-once")
    assert (r.status_code, r.json()) == (200, {"message": "Job executed successfully"})
    runs = (await stack.stub.ListRuns(pb.ListRunsRequest(name="default"))).runs
    assert len(runs) == 1 and runs[0].outcome == pb.RUN_OUTCOME_SUCCEEDED
    assert sorted((x.name, x.status_code) for x in runs[0].results) == [("gate", 200), ("one", 200)]
    # Text bodies travel as text (JSON shows them as they are), not as base64 bytes.
    assert {x.body_text for x in runs[0].results} == {"hello from one", "opened"}
    assert {x.body for x in runs[0].results} == {b""}
    r = await get("/v1/schedules/default/runs")  # the canonical route, from the annotations
    assert r.status_code == 200 and r.json()["runs"][0]["id"] == runs[0].id

    r = await get("/api/cronjob/start")
    assert (r.status_code, r.json()) == (200, {"message": "CronJob started successfully"})
    r = await get("/api/cronjob/status")
    assert (r.status_code, r.json()) == (200, {"status": "Running"})
    r = await get("/api/cronjob/start")
    assert (r.status_code, r.json()) == (400, {"message": "CronJob is already running"})
    r = await get("/api/cronjob/run-once")
    assert r.status_code == 409
    assert r.json() == {"message": "Job could not run because CronJob is already running"}
    r = await get("/api/cronjob/stop")
    assert (r.status_code, r.json()) == (200, {"message": "CronJob stopped successfully"})
    r = await get("/api/cronjob/stop")
    assert (r.status_code, r.json()) == (400, {"message": "CronJob is not running"})
    r = await get("/api/cronjob/status")
    assert (r.status_code, r.json()) == (200, {"status": "Stopped"})


async def test_run_once_answers_after_the_run(stack: Stack) -> None:
    call = asyncio.ensure_future(stack.http.get("/api/cronjob/run-once"))
    await eventually(lambda: stack.ep.hits.get("gate") == 1)
    assert not call.done()
    stack.ep.gate.set()
    r = await call
    assert r.status_code == 200


async def test_without_a_default_schedule_the_routes_say_so(tmp_path: Path) -> None:
    async with Endpoints() as ep, _stack(ManagerConfig(data_dir=tmp_path), ep) as s:
        r = await s.http.get("/api/cronjob/status")
        assert r.status_code == 404 and "No schedule named 'default'" in r.json()["message"]


async def test_corral_up_default_calls_the_health_url(tmp_path: Path) -> None:
    async with Endpoints() as ep:
        config = ManagerConfig(data_dir=tmp_path, default_schedule_url=ep.url("health"))
        async with _stack(config, ep) as s:
            reply = await s.stub.GetSchedule(pb.GetScheduleRequest(name="default"))
            assert reply.schedule.interval.seconds == 60
            assert reply.schedule.http.endpoints[0].url == ep.url("health")
            r = await s.http.get("/api/cronjob/run-once")
            assert r.status_code == 200 and ep.hits["health"] == 1


async def test_bad_input_is_invalid_argument_naming_the_field(stack: Stack) -> None:
    bad = pb.Schedule(name="bad", cron=pb.CronTrigger(expression="* * *"))
    bad.http.endpoints.add(name="a", url="http://127.0.0.1:1/")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.CreateSchedule(pb.CreateScheduleRequest(schedule=bad))
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("schedule.cron.expression:")
    bad = pb.Schedule(name="bad", interval={"seconds": 60})
    bad.http.endpoints.add(name="a", url="file:///etc/passwd")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.CreateSchedule(pb.CreateScheduleRequest(schedule=bad))
    assert err.value.details().startswith("schedule.http.endpoints[0].url:")
    names = [s.name for s in (await stack.stub.ListSchedules(pb.ListSchedulesRequest())).schedules]
    assert names == ["default"]


async def test_the_cli(stack: Stack, tmp_path: Path) -> None:
    runner = CliRunner()
    app = typer.Typer()
    schedules_cli.register(app)

    def cli(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, [*args, "--manager", stack.target])
        return result.exit_code, result.output

    spec = tmp_path / "reports.yaml"
    spec.write_text(
        f"""
name: reports
cron: "*/5 * * * *"
host: 127.0.0.1
port: {stack.ep.port}
endpoints:
  - {{name: users, path: /users}}
  - {{name: broken, path: /fail}}
"""
    )
    code, out = await asyncio.to_thread(cli, "schedule", "create", str(spec))
    assert code == 0 and "schedule reports created" in out
    code, out = await asyncio.to_thread(cli, "schedule", "ls", "-o", "json")
    assert code == 0
    listed = {s["name"]: s for s in json.loads(out)}
    assert listed["reports"]["cron"]["expression"] == "*/5 * * * *"
    code, out = await asyncio.to_thread(cli, "schedule", "run-once", "reports", "-o", "json")
    assert code == 3  # partially failed: not a success for scripts
    run = json.loads(out)
    assert run["outcome"] == "RUN_OUTCOME_PARTIALLY_FAILED"
    assert {r["name"]: r.get("statusCode") for r in run["results"]} == {"users": 200, "broken": 500}
    # Text bodies show as text in the JSON view (they were base64).
    assert {r["name"]: r.get("bodyText") for r in run["results"]} == {
        "users": "hello from users",
        "broken": "boom",
    }
    stack.ep.gate.set()
    code, out = await asyncio.to_thread(cli, "schedule", "run-once", "default")
    assert code == 0 and "succeeded" in out
    code, out = await asyncio.to_thread(cli, "schedule", "runs", "reports")
    assert code == 0 and run["id"] in out and "partially-failed" in out
    code, out = await asyncio.to_thread(cli, "schedule", "runs", "reports", run["id"])
    assert code == 0 and "hello from users" in out and "boom" in out
    code, out = await asyncio.to_thread(cli, "schedule", "start", "reports")
    assert code == 0 and "started" in out
    code, out = await asyncio.to_thread(cli, "schedule", "get", "reports", "-o", "json")
    assert json.loads(out)["status"]["state"] == "SCHEDULE_STATE_RUNNING"
    code, out = await asyncio.to_thread(cli, "schedule", "start", "reports")
    assert code == 1 and "already running" in out
    code, out = await asyncio.to_thread(cli, "schedule", "stop", "reports")
    assert code == 0
    code, out = await asyncio.to_thread(cli, "schedule", "rm", "reports")
    assert code == 0
    code, out = await asyncio.to_thread(cli, "schedule", "get", "reports")
    assert code == 1 and "no schedule named 'reports'" in out

    spec.write_text(
        "name: bad\ncron: '* * *'\nendpoints: [{name: a, url: 'http://127.0.0.1:1/'}]\n"
    )
    code, out = await asyncio.to_thread(cli, "schedule", "create", str(spec))
    assert code == 1 and "schedule.cron.expression" in out


async def test_a_bad_schedules_file_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "appsettings.json"
    path.write_text('{"CronJobSettings": {"StartHour": 20, "EndHour": 8}}')
    config = ManagerConfig(data_dir=tmp_path, schedules_file=(path,))
    ext = SchedulesExtension(FakeTasks(), config)
    with pytest.raises(ValidationError) as err:
        await ext.start()
    assert err.value.field == f"{path}: CronJobSettings.EndHour"
    await ext.close()


async def test_the_files_schedule_is_running_from_boot(tmp_path: Path) -> None:
    async with Endpoints() as ep:
        settings = appsettings(ep, tmp_path / "appsettings.json", interval="01:00:00")
        config = ManagerConfig(data_dir=tmp_path, schedules_file=(settings,))
        async with _stack(config, ep) as s:
            r = await s.http.get("/api/cronjob/status")
            assert (r.status_code, r.json()) == (200, {"status": "Running"})
            got = await s.stub.GetSchedule(pb.GetScheduleRequest(name="default"))
            assert got.schedule.interval_after_run and got.schedule.window.HasField("end_time")
            assert got.schedule.window.end_time.seconds == 86399
            r = await s.http.get("/api/cronjob/run-once")
            assert r.status_code == 409
