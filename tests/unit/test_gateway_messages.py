"""Bindings read from the corral.v1 annotations, and parameter/JSON binding."""

from __future__ import annotations

import importlib.util

import httpx
import pytest
from openapi_spec_validator import validate

import gateway.compat
from corral.v1 import manager_pb2, types_pb2
from gateway.app import create_app
from gateway.bindings import bindings_of, corral_files
from gateway.errors import UpstreamError
from gateway.messages import bind, enum_prefix, parse_into


def test_every_annotated_corral_rpc_has_a_binding() -> None:
    bindings = {(b.http_method, b.template): b for b in bindings_of(corral_files())}
    assert bindings[("POST", "/v1/tasks/{id}:stop")].path == "/v1/tasks/{id}:stop"
    assert bindings[("GET", "/v1/tasks/{id}/logs")].streaming
    assert bindings[("POST", "/v1/tasks")].response_body == "task"
    assert bindings[("POST", "/v1/schedules")].body == "schedule"
    assert ("GET", "/v1/jobs/{name}") in bindings
    services = {b.method.containing_service.name for b in bindings.values()}
    assert {"ManagerService", "JobService", "ScheduleService", "EnvironmentService"} <= services
    # Connect has no annotation: no route.
    assert all(b.method.name != "Connect" for b in bindings.values())


def test_bind_enums_repeated_and_errors() -> None:
    request = manager_pb2.ListTasksRequest()
    bind(request, "states", ["running", "TASK_STATE_FAILED", "4"], "query")
    assert list(request.states) == [
        types_pb2.TASK_STATE_RUNNING,
        types_pb2.TASK_STATE_FAILED,
        types_pb2.TASK_STATE_COMPLETED,
    ]
    bind(request, "pageSize", ["5"], "query")
    assert request.page_size == 5
    with pytest.raises(UpstreamError) as err:
        bind(request, "states", ["sleepy"], "query")
    assert err.value.field() == "states" and "TASK_STATE_RUNNING" in err.value.message
    with pytest.raises(UpstreamError) as err:
        bind(request, "page_size", ["99999999999"], "query")
    assert err.value.field() == "page_size"
    assert enum_prefix(types_pb2.TaskState.DESCRIPTOR) == "TASK_STATE_"


def test_parse_into_names_nested_fields() -> None:
    message = manager_pb2.SubmitTaskRequest()
    with pytest.raises(UpstreamError) as err:
        parse_into({"spec": {"ports": [{"containerPort": 1}, {"hostPrt": 2}]}}, message)
    assert err.value.field() == "spec.ports[1].hostPrt"
    with pytest.raises(UpstreamError) as err:
        parse_into({"spec": {"resources": {"cpu": "lots"}}}, message)
    assert err.value.field() == "spec.resources.cpu"
    parse_into({"spec": {"name": "a", "stopGrace": "1.5s", "env": {"A": "b"}}}, message)
    assert message.spec.stop_grace.nanos == 500_000_000


async def test_openapi_of_the_whole_app_validates() -> None:
    # Every compat module that exists in this checkout (others land in parallel).
    modules = [m for m in gateway.compat.MODULES if importlib.util.find_spec(m) is not None]
    assert {"gateway.compat.cube", "gateway.compat.jobs"} <= set(modules)
    app = create_app("127.0.0.1:1", compat_modules=modules)
    # No lifespan runs under ASGITransport: /openapi.json needs no channel.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        document = (await c.get("/openapi.json")).json()
    validate(document)
    paths = document["paths"]
    assert {"/v1/tasks", "/v1/tasks/{id}:stop", "/v1/events", "/tasks/{id}", "/task"} <= set(paths)
    assert {"/", "/jobs", "/jobs/{job}/logs", "/nodes", "/stats"} <= set(paths)
    assert set(paths["/tasks"]) == {"get", "post"}
    logs = paths["/v1/tasks/{id}/logs"]["get"]["responses"]["200"]["content"]
    assert logs.keys() == {"text/plain"}
    assert "text/event-stream" in paths["/v1/events"]["get"]["responses"]["200"]["content"]
    assert paths["/jobs"]["post"]["summary"].startswith("Run `sh -c cmd`")
