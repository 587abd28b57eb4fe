"""A token scoped to one namespace sees nothing of another: answered as if absent."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from acl_stack import AclStack, acl_stack

from corral.convert import schedules as convert
from corral.errors import NotFound, PermissionDenied
from corral.model import TaskSpec
from corral.schedules import IntervalTrigger, ScheduleSpec, ScheduleState, TaskAction
from manager.acl import Role
from manager.schedules import store as schedule_store
from tests.waiting import eventually


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[AclStack]:
    async with acl_stack(tmp_path / "m") as s:
        s.make("a-submitter", Role.SUBMITTER, "team-a")
        s.make("b-submitter", Role.SUBMITTER, "team-b")
        yield s


def fake(name: str, namespace: str = "") -> TaskSpec:
    return TaskSpec(name=name, runtime="fake", namespace=namespace)


async def test_another_namespace_is_answered_as_absent(stack: AclStack) -> None:
    async with stack.client("a-submitter") as a, stack.client("b-submitter") as b:
        mine = await a.submit(fake("secret-project"))
        assert mine.spec.namespace == "team-a"  # filled in from the token
        with pytest.raises(NotFound) as hidden:
            await b.get_task(mine.id)
        with pytest.raises(NotFound) as absent:
            await b.get_task("00000000-0000-4000-8000-000000000000")
        # The same words as for an id that does not exist, but for the id itself.
        assert str(hidden.value).replace(mine.id, "X") == str(absent.value).replace(
            "00000000-0000-4000-8000-000000000000", "X"
        )
        assert mine.id not in {t.id for t in await b.list_tasks()}
        with pytest.raises(NotFound):
            await b.stop_task(mine.id)
        with pytest.raises(NotFound):
            async for _ in b.logs(mine.id):
                pass
        with pytest.raises(PermissionDenied, match="team-a"):
            await b.submit(fake("intruder", "team-a"))
        theirs = await b.submit(fake("their-project"))
        events = b.watch_events(from_index=1)
        seen: list[str] = []
        async with asyncio.timeout(10):
            async for event in events:
                if event.task is not None:
                    seen.append(event.task.id)
                    if event.task.id == theirs.id:
                        break
        assert mine.id not in seen and theirs.id in seen
        # The owner and an unscoped token still see it.
        assert (await a.get_task(mine.id)).id == mine.id
    async with stack.client("reader") as everyone:
        assert {mine.id, theirs.id} <= {t.id for t in await everyone.list_tasks()}


async def test_rest_hides_another_namespace_behind_404(stack: AclStack) -> None:
    async with stack.client("a-submitter") as a:
        mine = await a.submit(fake("rest-project"))
    async with stack.http("b-submitter") as b:
        reply = await b.get(f"/v1/tasks/{mine.id}")
        assert reply.status_code == 404, reply.text
        listed = await b.get("/v1/tasks")
        assert listed.status_code == 200 and mine.id not in listed.text
    async with stack.http("a-submitter") as a_http:
        assert (await a_http.get(f"/v1/tasks/{mine.id}")).status_code == 200


async def test_jobs_live_in_their_token_s_namespace(stack: AclStack) -> None:
    async with stack.client("a-submitter") as a, stack.client("b-submitter") as b:
        job = await a.run_job("true", name="a-job")
        assert (await a.get_task(job.task_id)).spec.namespace == "team-a"
        assert [j.name for j in await a.list_jobs()] == ["a-job"]
        assert await b.list_jobs() == []
        with pytest.raises(NotFound, match="job 'a-job' not found"):
            await b.get_job("a-job")
        with pytest.raises(NotFound):
            async for _ in b.job_logs("a-job"):
                pass


async def test_environments_live_in_their_token_s_namespace() -> None:
    from manager.acl import Principal, set_caller
    from tests.unit.test_environments_lifecycle import FakeTasks, environments, running

    envs = environments(FakeTasks(running))

    async def as_team(team: str, work: Any) -> Any:
        async def run() -> Any:  # a task of its own: its own caller, as each RPC has
            set_caller(Principal(f"{team}-submitter", Role.SUBMITTER, team))
            return await work()

        return await asyncio.create_task(run())

    env, _ = await as_team("team-a", lambda: envs.start("a-env", "python"))
    assert env.repl_id == "a-env"
    assert [e.repl_id for e in await as_team("team-a", envs.list_all)] == ["a-env"]
    assert await as_team("team-b", envs.list_all) == []
    with pytest.raises(NotFound, match="environment 'a-env' not found"):
        await as_team("team-b", lambda: envs.get("a-env"))
    with pytest.raises(NotFound):
        await as_team("team-b", lambda: envs.stop("a-env"))
    assert [e.repl_id for e in await envs.list_all()] == ["a-env"]  # ACLs off: all


def every_minute(name: str) -> ScheduleSpec:
    return ScheduleSpec(
        name=name,
        trigger=IntervalTrigger(60.0),
        action=TaskAction(TaskSpec(name="tick", runtime="fake")),
    )


@pytest.fixture
async def schedules(tmp_path: Path) -> AsyncIterator[AclStack]:
    # A default schedule (calling a closed loopback port) for the /api/cronjob routes.
    async with acl_stack(tmp_path / "m", default_schedule_url="http://127.0.0.1:9/health") as s:
        s.make("a-operator", Role.OPERATOR, "team-a")
        s.make("b-operator", Role.OPERATOR, "team-b")
        yield s


async def test_another_namespace_s_schedule_is_answered_as_absent(schedules: AclStack) -> None:
    async with schedules.client("a-operator") as a, schedules.client("b-operator") as b:
        await a.create_schedule(every_minute("a-nightly"))
        hidden: list[NotFound] = []
        for call in (
            b.get_schedule,
            b.start_schedule,
            b.stop_schedule,
            b.run_schedule_once,
            b.list_runs,
            b.delete_schedule,
        ):
            with pytest.raises(NotFound) as caught:
                await call("a-nightly")  # type: ignore[operator]
            hidden.append(caught.value)
        with pytest.raises(NotFound) as absent:
            await b.get_schedule("no-such")
        # The same words as for a name that does not exist.
        assert {str(e).replace("a-nightly", "X") for e in hidden} == {
            str(absent.value).replace("no-such", "X")
        }
        with pytest.raises(NotFound):
            await b.get_run("a-nightly", "0123456789ab")
        assert "a-nightly" not in {s.name for s in await b.list_schedules()}
        assert "default" not in {s.name for s in await b.list_schedules()}
        # Untouched by all of that, and its owner sees it.
        mine = await a.get_schedule("a-nightly")
        assert mine.status.state is ScheduleState.IDLE
        assert [s.name for s in await a.list_schedules()] == ["a-nightly"]
    async with schedules.client("admin") as admin:
        assert {"a-nightly", "default"} <= {s.name for s in await admin.list_schedules()}
        assert (await admin.get_schedule("a-nightly")).name == "a-nightly"


async def test_a_schedule_s_run_makes_tasks_in_its_namespace(schedules: AclStack) -> None:
    async with schedules.client("a-operator") as a, schedules.client("b-operator") as b:
        await a.create_schedule(every_minute("a-hourly"))
        # No worker runs fake tasks here: the run waits for its task, which is enough.
        run = asyncio.create_task(a.run_schedule_once("a-hourly"))
        try:
            tasks = await eventually(
                lambda: a.list_tasks(label_selector="corral.io/schedule=a-hourly"),
                what="the run's task",
            )
            assert [t.spec.namespace for t in tasks] == ["team-a"]
            assert await b.list_tasks(label_selector="corral.io/schedule=a-hourly") == []
        finally:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)


async def test_rest_hides_another_namespace_s_schedules(schedules: AclStack) -> None:
    async with schedules.client("a-operator") as a:
        await a.create_schedule(every_minute("a-weekly"))
    async with schedules.http("b-operator") as b:
        for method, path in (
            ("GET", "/v1/schedules/a-weekly"),
            ("POST", "/v1/schedules/a-weekly:start"),
            ("POST", "/v1/schedules/a-weekly:stop"),
            ("POST", "/v1/schedules/a-weekly:run"),
            ("GET", "/v1/schedules/a-weekly/runs"),
            ("DELETE", "/v1/schedules/a-weekly"),
            # The original's routes act on the default schedule, default's namespace.
            ("GET", "/api/cronjob/status"),
            ("GET", "/api/cronjob/start"),
            ("GET", "/api/cronjob/stop"),
            ("GET", "/api/cronjob/run-once"),
        ):
            reply = await b.request(method, path)
            assert reply.status_code == 404, (method, path, reply.text)
        listed = await b.get("/v1/schedules")
        assert listed.status_code == 200 and "a-weekly" not in listed.text
    async with schedules.http("admin") as admin:
        assert (await admin.get("/v1/schedules/a-weekly")).status_code == 200
        assert (await admin.get("/api/cronjob/status")).status_code == 200


def test_schedules_made_before_namespaces_belong_to_default(tmp_path: Path) -> None:
    path = tmp_path / "schedules.db"
    old = sqlite3.connect(path)
    for sql in schedule_store.MIGRATIONS[0]:
        old.execute(sql)
    old.execute(
        "INSERT INTO schedules (name, spec, state, created_at) VALUES (?, ?, 'Idle', 0)",
        ("old", convert.spec_json(every_minute("old"))),
    )
    old.execute("PRAGMA user_version=1")
    old.commit()
    old.close()
    store = schedule_store.ScheduleStore(path)
    try:
        assert store.get("old").spec.namespace == "default"
    finally:
        store.close()
