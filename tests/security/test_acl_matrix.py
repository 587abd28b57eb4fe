"""The role x operation matrix, through gRPC and through REST, from ONE table.

``ACCESS`` says, for every RPC the manager serves, the least role that may
call it. Every REST route is checked against the same table through the RPC
it calls: canonical routes name theirs in their ``google.api.http``
annotation, the originals' routes are listed in ``COMPAT``. Each cell is one
real call with one principal: every role, no token, an unknown token and a
revoked one. An RPC missing from ``ACCESS`` (added after this table) is
expected to be admin-only, which is what the manager does with an RPC nobody
classified.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from acl_stack import ROLES, AclStack, acl_stack

import gateway.compat
from corral.model import TaskSpec
from corral.serving import channel
from gateway.bindings import bindings_of, corral_files

LADDER = ("reader", "submitter", "operator", "admin")

# THE table. "public": anyone, without a token; a role of LADDER: it and those above it;
# "node": workers only.
ACCESS: dict[str, dict[str, str]] = {
    "corral.v1.ManagerService": {
        "SubmitTask": "submitter",
        "SubmitTasks": "submitter",
        "GetTask": "reader",
        "ListTasks": "reader",
        "StopTask": "submitter",
        "WatchEvents": "reader",
        "GetTaskLogs": "reader",
        "GetLogs": "reader",
        "ListNodes": "reader",
        "GetNode": "reader",
        "ExplainTask": "reader",
        "ListTaskAttempts": "reader",
        "DrainNode": "operator",
        "UndrainNode": "operator",
        "Connect": "node",
    },
    "corral.v1.JobService": {
        "RunJob": "submitter",
        "GetJob": "reader",
        "ListJobs": "reader",
        "GetJobLogs": "reader",
    },
    "corral.v1.ScheduleService": {
        "CreateSchedule": "operator",
        "GetSchedule": "reader",
        "ListSchedules": "reader",
        "DeleteSchedule": "operator",
        "StartSchedule": "operator",
        "StopSchedule": "operator",
        "RunScheduleOnce": "submitter",
        "ListRuns": "reader",
        "GetRun": "reader",
    },
    "corral.v1.EnvironmentService": {
        "StartEnvironment": "submitter",
        "StopEnvironment": "submitter",
        "GetEnvironment": "reader",
        "ListEnvironments": "reader",
    },
    "corral.v1.AclService": {
        "Bootstrap": "public",
        "CreateToken": "admin",
        "ListTokens": "admin",
        "RevokeToken": "admin",
    },
    "grpc.health.v1.Health": {"Check": "public", "Watch": "public", "List": "public"},
}
CUBE_EVENT = {
    "ID": "8c1c2d5e-0000-4000-8000-000000000001",
    "State": 1,
    "Task": {"ID": "8c1c2d5e-0000-4000-8000-000000000002", "Name": "matrix", "Image": "busybox"},
}
# The originals' routes: the RPC each one calls (service/method) and a body it accepts.
COMPAT: dict[tuple[str, str], tuple[str, Any]] = {
    ("POST", "/tasks"): ("corral.v1.ManagerService/SubmitTask", CUBE_EVENT),
    ("GET", "/tasks"): ("corral.v1.ManagerService/ListTasks", None),
    ("GET", "/tasks/{id}"): ("corral.v1.ManagerService/GetTask", None),
    ("DELETE", "/tasks/{id}"): ("corral.v1.ManagerService/StopTask", None),
    ("POST", "/task"): ("corral.v1.ManagerService/SubmitTask", CUBE_EVENT),
    ("GET", "/task"): ("corral.v1.ManagerService/ListTasks", None),
    ("GET", "/task/{id}"): ("corral.v1.ManagerService/GetTask", None),
    ("DELETE", "/task/{id}"): ("corral.v1.ManagerService/StopTask", None),
    ("GET", "/nodes"): ("corral.v1.ManagerService/ListNodes", None),
    ("GET", "/stats"): ("corral.v1.ManagerService/ListNodes", None),
    ("GET", "/"): ("public", None),
    ("POST", "/jobs"): ("corral.v1.JobService/RunJob", {"cmd": "true"}),
    ("GET", "/jobs"): ("corral.v1.JobService/ListJobs", None),
    ("GET", "/jobs/{job}"): ("corral.v1.JobService/GetJob", None),
    ("GET", "/jobs/{job}/status"): ("corral.v1.JobService/GetJob", None),
    ("GET", "/jobs/{job}/logs"): ("corral.v1.JobService/GetJobLogs", None),
    ("GET", "/api/cronjob/status"): ("corral.v1.ScheduleService/GetSchedule", None),
    ("GET", "/api/cronjob/start"): ("corral.v1.ScheduleService/StartSchedule", None),
    ("GET", "/api/cronjob/stop"): ("corral.v1.ScheduleService/StopSchedule", None),
    ("GET", "/api/cronjob/run-once"): ("corral.v1.ScheduleService/RunScheduleOnce", None),
    ("POST", "/start"): (
        "corral.v1.EnvironmentService/StartEnvironment",
        {"replId": "matrix", "language": "python"},
    ),
    ("POST", "/stop"): ("corral.v1.EnvironmentService/StopEnvironment", {"replId": "matrix"}),
    ("GET", "/health"): ("public", None),
}
# Principals beside the roles: no token, a token the manager never made, a revoked one.
STRANGERS = ("none", "bogus", "revoked")
PRINCIPALS = (*(str(r) for r in ROLES), *STRANGERS)

OK, DENIED, UNAUTHENTICATED = "ok", "denied", "unauthenticated"


def access_of(rpc: str) -> str:
    service, method = rpc.lstrip("/").rsplit("/", 1)
    return ACCESS.get(service, {}).get(method, "admin")


def expected(access: str, who: str) -> str:
    if access == "public":
        return OK
    if who in STRANGERS:
        return UNAUTHENTICATED
    if access == "node" or who == "node":
        return OK if access == who else DENIED
    return OK if LADDER.index(who) >= LADDER.index(access) else DENIED


def verdict_of_code(code: grpc.StatusCode) -> str:
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return UNAUTHENTICATED
    return DENIED if code is grpc.StatusCode.PERMISSION_DENIED else OK


def verdict_of_http(status: int) -> str:
    return {401: UNAUTHENTICATED, 403: DENIED}.get(status, OK)


@dataclass(frozen=True)
class Rpc:
    path: str  # /pkg.Service/Method
    client_streaming: bool
    server_streaming: bool


def manager_rpcs() -> list[Rpc]:
    """Every RPC the manager serves: its corral.v1 services (not the worker's) and health."""
    from grpc_health.v1 import health_pb2

    files = [*corral_files(), health_pb2.DESCRIPTOR]
    return [
        Rpc(f"/{service.full_name}/{m.name}", m.client_streaming, m.server_streaming)
        for file in files
        for service in file.services_by_name.values()
        if service.name != "WorkerService"
        for m in service.methods
    ]


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""


async def grpc_verdict(ch: grpc.aio.Channel, rpc: Rpc, secret: str) -> str:
    metadata = (("authorization", f"Bearer {secret}"),) if secret else ()
    try:
        if rpc.client_streaming:
            call: Any = ch.stream_stream(rpc.path)(_empty(), metadata=metadata, timeout=2.0)
        elif rpc.server_streaming:
            call = ch.unary_stream(rpc.path)(b"", metadata=metadata, timeout=1.0)
        else:
            await ch.unary_unary(rpc.path)(b"", metadata=metadata, timeout=10.0)
            return OK
        async for _ in call:
            call.cancel()  # an answer at all means the call was let in
            return OK
        return OK
    except grpc.aio.AioRpcError as err:
        return verdict_of_code(err.code())


@dataclass(frozen=True)
class RestCase:
    method: str
    path: str
    body: Any
    rpc: str  # "public" or /pkg.Service/Method


def rest_cases(task_id: str) -> list[RestCase]:
    """Every route the gateway serves: annotated RPCs and the originals' routes.

    Ids name a real task: a route that looks a task up first (Cube's DELETE)
    must get as far as the RPC the table is about.
    """
    cases = []
    for b in bindings_of(corral_files()):
        path = b.path
        for name in b.path_fields:
            path = path.replace("{" + name + "}", task_id)
        cases.append(RestCase(b.http_method, path, {} if b.body else None, b.rpc_path))
    import importlib

    for module in gateway.compat.MODULES:
        for route in importlib.import_module(module).routes():
            for method in sorted(getattr(route, "methods", None) or ()):
                if method == "HEAD":
                    continue
                rpc, body = COMPAT.get((method, route.path), ("unlisted", None))
                path = route.path.replace("{id}", task_id).replace("{job}", "x")
                rpc = rpc if rpc in ("public", "unlisted") else "/" + rpc
                cases.append(RestCase(method, path, body, rpc))
    return cases


async def rest_verdict(http: httpx.AsyncClient, case: RestCase) -> str:
    content = json.dumps(case.body).encode() if case.body is not None else None
    headers = {"content-type": "application/json"} if content is not None else {}
    async with http.stream(case.method, case.path, content=content, headers=headers) as reply:
        return verdict_of_http(reply.status_code)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[AclStack]:
    async with acl_stack(tmp_path / "m") as s:
        s.make("gone", ROLES[0])
        s.tokens.revoke("gone")
        s.secrets["revoked"] = s.secrets.pop("gone")
        s.secrets["bogus"] = "corral_not-a-token-the-manager-made"
        s.secrets["none"] = ""
        yield s


async def test_every_rpc_for_every_principal_through_grpc(stack: AclStack) -> None:
    rpcs = manager_rpcs()
    assert len(rpcs) >= 30  # the corral services and health were found
    wrong = []
    async with channel(stack.target) as ch:
        for who in PRINCIPALS:
            got = await asyncio.gather(*(grpc_verdict(ch, r, stack.secrets[who]) for r in rpcs))
            for rpc, verdict in zip(rpcs, got, strict=True):
                want = expected(access_of(rpc.path), who)
                if verdict != want:
                    wrong.append(f"{who} {rpc.path}: {verdict}, expected {want}")
    assert not wrong, "\n".join(wrong)
    print(f"gRPC matrix: {len(rpcs)} RPCs x {len(PRINCIPALS)} principals")


async def test_every_rest_route_for_every_principal(stack: AclStack) -> None:
    async with stack.client("admin") as admin:
        task = await admin.submit(TaskSpec(name="target", runtime="fake"))
    cases = rest_cases(task.id)
    assert len(cases) >= 40
    wrong = []
    for who in PRINCIPALS:
        async with stack.http(who if stack.secrets[who] else None) as http:
            for case in cases:
                if case.rpc == "unlisted" and who != "admin":
                    continue  # a route added after this table: only sure an admin may use it
                access = (
                    "admin"
                    if case.rpc == "unlisted"
                    else ("public" if case.rpc == "public" else access_of(case.rpc))
                )
                verdict = await rest_verdict(http, case)
                want = expected(access, who)
                if verdict != want:
                    wrong.append(f"{who} {case.method} {case.path}: {verdict}, expected {want}")
    assert not wrong, "\n".join(wrong)
    print(f"REST matrix: {len(cases)} routes x {len(PRINCIPALS)} principals")


def test_the_manager_rules_agree_with_the_table() -> None:
    """The manager's own table (manager.acl.authorizing.RULES) says the same, RPC by RPC."""
    from manager.acl import GRANTS, Role
    from manager.acl.authorizing import permission_of

    for rpc in manager_rpcs():
        permission = permission_of(rpc.path)
        access = access_of(rpc.path)
        if access == "public":
            assert permission is None, rpc.path
            continue
        assert permission is not None, rpc.path
        allowed = {str(role) for role in Role if permission in GRANTS[role]}
        assert allowed == {str(r) for r in Role if expected(access, str(r)) == OK}, rpc.path
