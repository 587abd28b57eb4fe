"""Bad input through REST against a real manager: 4xx naming the field, never a 500,
and the keep-alive connection survives (the issue's list, one test each)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.server import serve
from tests.integration.test_manager_dispatch import start, target


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    manager = await start(tmp_path / "m")
    gw = await serve(target(manager), "127.0.0.1:0")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.port}", timeout=30) as c:
            yield c
    finally:
        await gw.stop()
        await manager.stop(0)


def field_of(r: httpx.Response) -> str:
    body = r.json()
    return str(body["details"][0]["fieldViolations"][0]["field"])


@pytest.mark.parametrize("route", ["/v1/tasks", "/v1/jobs", "/tasks", "/jobs", "/start"])
async def test_deeply_nested_json_is_a_400_and_the_connection_stays(
    http: httpx.AsyncClient, route: str
) -> None:
    deep = "[" * 5000 + "]" * 5000
    r = await http.post(route, content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert "nested deeper than" in r.text
    again = await http.get("/v1/tasks")  # same keep-alive connection
    assert again.status_code == 200


async def test_an_undefined_enum_number_is_a_400_naming_it(http: httpx.AsyncClient) -> None:
    body = {"spec": {"name": "odd", "command": ["true"], "restartPolicy": {"mode": 99}}}
    r = await http.post("/v1/tasks", json=body)
    assert r.status_code == 400, r.text
    assert field_of(r) == "spec.restartPolicy.mode"


async def test_null_is_not_the_default(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1/jobs", json={"cmd": None, "name": ""})
    assert r.status_code == 400, r.text
    assert field_of(r) == "cmd"
    assert (await http.get("/v1/jobs")).json().get("jobs", []) == []


async def test_a_verb_route_is_never_taken_for_an_id(http: httpx.AsyncClient) -> None:
    r = await http.get("/v1/nodes/x:drain")
    assert r.status_code == 405, r.text
    assert (await http.get("/v1/nodes/x")).status_code == 404


async def test_a_huge_id_is_answered_with_a_bounded_error(http: httpx.AsyncClient) -> None:
    r = await http.get("/v1/tasks/" + "a" * 10_000)
    assert r.status_code in (400, 404), r.status_code
    assert len(r.content) < 4096
