"""Canonical ManagerService routes through the real gateway, against an
in-process fake manager: submit, get, list, stop, logs (tail, follow as
written), events as SSE resumable with Last-Event-ID."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from gateway_fakes import FakeCore, gateway_over_fake
from waiting import eventually

from gateway import streaming


@pytest.fixture
async def stack() -> AsyncIterator[tuple[httpx.AsyncClient, FakeCore]]:
    async with gateway_over_fake() as pair:
        yield pair


async def _submit(http: httpx.AsyncClient, name: str, script: str) -> str:
    spec = {"name": name, "command": ["sh", "-c", script]}
    r = await http.post("/v1/tasks", json={"spec": spec})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def _until_state(http: httpx.AsyncClient, task_id: str, state: str) -> dict[str, object]:
    async def task() -> dict[str, object] | None:
        got = (await http.get(f"/v1/tasks/{task_id}")).json()
        return dict(got) if got["status"]["state"] == state else None

    return await eventually(task, what=f"{task_id} {state}")


async def test_submit_get_list_stop(stack: tuple[httpx.AsyncClient, FakeCore]) -> None:
    http, _ = stack
    r = await http.post(
        "/v1/tasks",
        json={"id": "my-id", "spec": {"name": "sleeper", "command": ["sleep", "30"]}},
    )
    assert r.status_code == 200
    task = r.json()
    assert task["id"] == "my-id" and task["spec"]["runtime"] == "process"
    await _until_state(http, "my-id", "TASK_STATE_RUNNING")
    by_name = await http.get("/v1/tasks/sleeper")
    assert by_name.json()["id"] == "my-id"
    listed = await http.get("/v1/tasks", params={"states": "running"})
    assert [t["id"] for t in listed.json()["tasks"]] == ["my-id"]
    assert (await http.get("/v1/tasks", params={"states": "completed"})).json()["tasks"] == []
    stopped = await http.post("/v1/tasks/my-id:stop", json={"reason": "test"})
    assert stopped.status_code == 200
    assert stopped.json()["status"]["state"] == "TASK_STATE_STOPPED"
    again = await http.post("/v1/tasks", json={"id": "my-id", "spec": task["spec"]})
    assert again.status_code == 409
    assert (await http.get("/v1/nodes")).json()["nodes"][0]["name"] == "node-1"
    assert (await http.get("/v1/nodes/node-1")).json()["name"] == "node-1"


async def test_bad_spec_names_the_field(stack: tuple[httpx.AsyncClient, FakeCore]) -> None:
    http, _ = stack
    r = await http.post("/v1/tasks", json={"spec": {"name": "Bad Name", "command": ["true"]}})
    assert r.status_code == 400
    assert r.json()["details"][0]["fieldViolations"][0]["field"] == "spec.name"
    r = await http.post("/v1/tasks", json={"spec": {"name": "a", "comand": ["true"]}})
    assert r.status_code == 400 and r.json()["message"].startswith("spec.comand: unknown field")
    r = await http.get("/v1/tasks/nope/logs")
    assert r.status_code == 404 and r.json()["code"] == 5


async def test_logs_tail_and_follow_stream_as_written(
    stack: tuple[httpx.AsyncClient, FakeCore], tmp_path: Path
) -> None:
    http, _ = stack
    flag = tmp_path / "go"
    script = f"echo one; echo two; while [ ! -e {flag} ]; do sleep 0.02; done; echo three"
    task_id = await _submit(http, "follower", script)
    await _until_state(http, task_id, "TASK_STATE_RUNNING")
    async with http.stream("GET", f"/v1/tasks/{task_id}/logs?follow=true") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        chunks = r.aiter_bytes()
        seen = b""
        while seen != b"one\ntwo\n":
            seen += await asyncio.wait_for(anext(chunks), 10)
        # The task is still running (it waits for the flag): the output came as written.
        assert (await http.get(f"/v1/tasks/{task_id}")).json()["status"]["state"] == (
            "TASK_STATE_RUNNING"
        )
        flag.touch()
        rest = b"".join([c async for c in chunks])
    assert rest == b"three\n"
    await _until_state(http, task_id, "TASK_STATE_COMPLETED")
    tail = await http.get(f"/v1/tasks/{task_id}/logs", params={"tail": 2})
    assert tail.text == "two\nthree\n"


async def _sse(http: httpx.AsyncClient, count: int, **kw: object) -> list[tuple[int, str]]:
    """The first ``count`` events as (id, data)."""
    out: list[tuple[int, str]] = []
    async with http.stream("GET", "/v1/events", **kw) as r:  # type: ignore[arg-type]
        assert r.headers["content-type"].startswith("text/event-stream")
        event_id = -1
        async for line in r.aiter_lines():
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                out.append((event_id, line[6:]))
                if len(out) == count:
                    break
    return out


async def test_events_as_sse_resume_with_last_event_id(
    stack: tuple[httpx.AsyncClient, FakeCore],
) -> None:
    http, core = stack
    for i in range(3):
        await _submit(http, f"quick-{i}", "true")
    await core.until(lambda: len(core.events) >= 9)  # submitted, running, completed x3
    first = await _sse(http, 4, params={"from_index": 1})
    assert [i for i, _ in first] == [1, 2, 3, 4]
    resumed = await _sse(http, 3, headers={"Last-Event-ID": "4"})
    assert [i for i, _ in resumed] == [5, 6, 7]
    assert '"index": "5"' in resumed[0][1]
    r = await http.get("/v1/events", headers={"Last-Event-ID": "x"})
    assert r.status_code == 400 and r.json()["message"].startswith("Last-Event-ID:")

    # Only new events without a position: the stream waits, then sends the next one.
    async def next_new() -> list[tuple[int, str]]:
        return await _sse(http, 1)

    opened = core.subscriptions
    waiting = asyncio.create_task(next_new())
    await core.until(lambda: core.subscriptions > opened)  # subscribed: what follows is new
    assert not waiting.done()
    await _submit(http, "late", "true")
    (late,) = await asyncio.wait_for(waiting, 10)
    assert late[0] >= 10 and '"late"' in late[1]


async def test_idle_event_stream_sends_keepalive_comments(
    stack: tuple[httpx.AsyncClient, FakeCore], monkeypatch: pytest.MonkeyPatch
) -> None:
    http, _ = stack
    monkeypatch.setattr(streaming, "SSE_KEEPALIVE", 0.1)
    async with http.stream("GET", "/v1/events") as r:
        lines = r.aiter_lines()
        assert await asyncio.wait_for(anext(lines), 5) == ": keepalive"
