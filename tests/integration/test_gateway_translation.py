"""Generic translation: a proto that exists only in the tests gets its routes
from its annotations, with path, query and body binding, proto3 JSON, the
status table, metadata and deadlines, streams, and the gateway's own errors."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import grpc
import httpx
import pytest
from gateway_things import compile_things, things_server
from openapi_spec_validator import validate

from gateway.errors import HTTP_STATUS
from gateway.server import serve


@pytest.fixture(scope="module")
def pb(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return compile_things(tmp_path_factory.mktemp("things"))


@pytest.fixture
async def http(pb: ModuleType) -> AsyncIterator[httpx.AsyncClient]:
    async with things_server(pb) as target:
        gw = await serve(target, "127.0.0.1:0", files=[pb.DESCRIPTOR], compat_modules=[])
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.port}") as client:
                yield client
        finally:
            await gw.stop()


async def test_path_variable_and_response_body(http: httpx.AsyncClient) -> None:
    r = await http.get("/v1test/things/box")
    assert r.status_code == 200
    # response_body: only the thing, proto3 JSON (int64 as a string, zero values present).
    assert r.json() == {"name": "box", "size": "3", "colors": [], "labels": {}}


async def test_nested_path_named_body_and_query(http: httpx.AsyncClient) -> None:
    body = {"name": "a", "size": 5, "colors": ["COLOR_RED"], "labels": {"k": "v"}}
    r = await http.post("/v1test/shelves/s%201/things?validate_only=true", json=body)
    assert r.status_code == 200, r.text
    got = r.json()["received"]
    assert got["shelf"] == {"id": "s 1"}
    assert got["thing"]["size"] == "5" and got["thing"]["colors"] == ["COLOR_RED"]
    assert got["validateOnly"] is True


async def test_query_binding_repeated_enums_nested_and_well_known(
    http: httpx.AsyncClient,
) -> None:
    query = [
        ("colors", "red"),
        ("colors", "COLOR_GREEN"),
        ("colors", "1"),
        ("filter.min_size", "10"),
        ("filter.after", "2024-01-02T03:04:05Z"),
        ("all", "true"),
        ("pageSize", "7"),
        ("words", "a"),
        ("words", "b"),
    ]
    r = await http.get("/v1test/things", params=query)
    assert r.status_code == 200, r.text
    got = r.json()["received"]
    assert got["colors"] == ["COLOR_RED", "COLOR_GREEN", "COLOR_RED"]
    assert got["filter"] == {"minSize": "10", "after": "2024-01-02T03:04:05Z"}
    assert got["all"] is True and got["pageSize"] == 7 and got["words"] == ["a", "b"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("colors=purple", "colors"),
        ("page_size=-1", "page_size"),
        ("page_size=x", "page_size"),
        ("nope=1", "nope"),
        ("filter.nope=1", "filter.nope"),
        ("all=maybe", "all"),
        ("filter.after=yesterday", "filter.after"),
    ],
)
async def test_bad_query_is_400_naming_the_parameter(
    http: httpx.AsyncClient, query: str, field: str
) -> None:
    r = await http.get(f"/v1test/things?{query}")
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert body["message"].startswith(field + ":")
    assert body["details"][0]["fieldViolations"][0]["field"] == field


async def test_custom_verb_and_additional_binding(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1test/things/x:patch", json={"size": 9})
    assert r.status_code == 200, r.text
    assert r.json()["received"] == {"name": "x", "size": "9"}
    r = await http.put("/v1test/things/y", json={"size": "1"})
    assert r.json()["received"] == {"name": "y", "size": "1"}
    # The plain GET route of the same path is another RPC.
    assert (await http.get("/v1test/things/x")).json()["name"] == "x"


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b'{"sise": 1}', "sise"),
        (b'{"size": "abc"}', "size"),
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
    ],
)
async def test_bad_body_is_400_naming_the_field(
    http: httpx.AsyncClient, content: bytes, field: str
) -> None:
    r = await http.post("/v1test/things/x:patch", content=content)
    assert r.status_code == 400
    assert r.json()["details"][0]["fieldViolations"][0]["field"] == field


async def test_nested_unknown_field_named_by_path(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1test/shelves/s/things", json={"name": "a", "shelf": {"idd": "x"}})
    assert r.status_code == 400
    assert r.json()["message"].startswith("thing.shelf.idd: unknown field of gatewaytest.v1.Shelf")


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK])
async def test_status_table(http: httpx.AsyncClient, code: grpc.StatusCode) -> None:
    r = await http.post("/v1test/fail", json={"code": code.value[0]})
    expected = {
        "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
        "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403,
        "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400, "ABORTED": 409,
        "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503,
        "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
    }  # fmt: skip
    assert r.status_code == expected[code.name] == HTTP_STATUS[code]
    number = code.value[0]
    assert r.json() == {"code": number, "message": f"failing with {number}", "details": []}


async def test_rich_status_details_become_json(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1test/fail", json={"field": "spec.command[0]"})
    assert r.status_code == 400
    assert r.json() == {
        "code": 3,
        "message": "spec.command[0]: is wrong",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "spec.command[0]", "description": "is wrong"}],
            }
        ],
    }


async def test_authorization_and_deadline_travel(http: httpx.AsyncClient) -> None:
    r = await http.get("/v1test/whoami", headers={"Authorization": "Bearer t0k"})
    assert r.json()["authorization"] == "Bearer t0k"
    assert 25 < r.json()["timeRemaining"] <= 30.5  # the default unary deadline
    r = await http.get("/v1test/whoami", headers={"grpc-timeout": "5S"})
    assert 3 < r.json()["timeRemaining"] <= 5.5
    r = await http.get("/v1test/whoami", headers={"X-Request-Timeout": "2.5"})
    assert 1 < r.json()["timeRemaining"] <= 3
    r = await http.get("/v1test/whoami", headers={"grpc-timeout": "soon"})
    assert r.status_code == 400 and r.json()["message"].startswith("grpc-timeout:")


async def test_server_stream_as_ndjson_with_error_line(http: httpx.AsyncClient) -> None:
    r = await http.get("/v1test/things:stream", params={"count": 3})
    assert r.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [x["thing"]["name"] for x in lines] == ["t0", "t1", "t2"]
    r = await http.get("/v1test/things:stream", params={"count": 2, "then_fail": 9})
    *things, last = [json.loads(line) for line in r.text.splitlines()]
    assert len(things) == 2
    assert last["error"]["code"] == 9
    # An error before the first message is a plain error response.
    r = await http.get("/v1test/things:stream", params={"count": 0, "then_fail": 5})
    assert r.status_code == 404


async def test_routing_errors(http: httpx.AsyncClient) -> None:
    r = await http.get("/v1test/nothing/here")
    assert r.status_code == 404 and r.json()["code"] == 5
    r = await http.delete("/v1test/fail")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    r = await http.delete("/v1test/things/x")  # GET and PUT are two RPCs on one path
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, PUT"
    r = await http.post("/v1test/fail", content=b"{" + b" " * (2 << 20) + b"}")
    assert r.status_code == 413


async def test_openapi_describes_the_test_service_and_validates(
    http: httpx.AsyncClient,
) -> None:
    spec = (await http.get("/openapi.json")).json()
    validate(spec)
    assert set(spec["paths"]) >= {
        "/v1test/things/{name}",
        "/v1test/shelves/{shelf.id}/things",
        "/v1test/things",
        "/v1test/things/{name}:patch",
        "/v1test/things:stream",
    }
    assert set(spec["paths"]["/v1test/things/{name}"]) == {"get", "put"}
    params = {p["name"] for p in spec["paths"]["/v1test/things"]["get"]["parameters"]}
    assert {"colors", "all", "page_size", "words"} <= params
    thing = spec["components"]["schemas"]["gatewaytest.v1.Thing"]["properties"]
    assert thing["size"] == {"type": "string", "format": "int64"}
    assert thing["colors"]["items"]["enum"] == ["COLOR_UNSPECIFIED", "COLOR_RED", "COLOR_GREEN"]
    docs = await http.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text and "https://" not in docs.text


async def test_manager_down_is_a_quick_503(pb: ModuleType, closed_port: int) -> None:
    closed = f"127.0.0.1:{closed_port}"
    gw = await serve(closed, "127.0.0.1:0", files=[pb.DESCRIPTOR], compat_modules=[])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.port}", timeout=20) as c:
            for path in ("/v1test/things/a", "/v1test/things:stream"):
                started = time.monotonic()
                r = await c.get(path)
                assert r.status_code == 503
                assert time.monotonic() - started < 5
                body: dict[str, Any] = r.json()
                assert body["code"] == 14 and closed in body["message"]
    finally:
        await gw.stop()


async def test_manager_going_away_is_a_quick_503(pb: ModuleType) -> None:
    gw = None
    try:
        async with things_server(pb) as target:
            gw = await serve(target, "127.0.0.1:0", files=[pb.DESCRIPTOR], compat_modules=[])
            base = f"http://127.0.0.1:{gw.port}"
            async with httpx.AsyncClient(base_url=base, timeout=20) as c:
                assert (await c.get("/v1test/things/a")).status_code == 200
        # The server is gone now; the gateway's channel was connected to it.
        async with httpx.AsyncClient(base_url=base, timeout=20) as c:
            started = time.monotonic()
            r = await c.get("/v1test/things/a")
            assert r.status_code == 503, r.text
            assert time.monotonic() - started < 5
    finally:
        if gw is not None:
            await gw.stop()
