"""Task dependencies through gRPC, REST and the CLI, with a real manager and worker.

A graph goes in one SubmitTasks batch, its tasks naming each other by the ids
the client chose: ``build`` succeeds, ``flaky`` fails (after its restart
policy has run to its end), so ``deploy`` (needs flaky to succeed) is SKIPPED
while ``report`` (needs flaky to finish) and ``docs`` (needs build) run.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import inprocess
import pytest
from inprocess import manager_and_worker
from typer.testing import CliRunner
from waiting import eventually

from corral.cli import main
from corral.client import Client
from corral.convert import spec_to
from corral.model import (
    Dependency,
    DependencyCondition,
    RestartMode,
    RestartPolicy,
    TaskSpec,
    TaskState,
)
from corral.serving import channel
from corral.v1 import manager_pb2, manager_pb2_grpc
from gateway.server import serve as serve_gateway

FINISHED = DependencyCondition.FINISHED


def sh(name: str, script: str, *after: Dependency, **kw: object) -> TaskSpec:
    return TaskSpec(name=name, command=("sh", "-c", script), depends_on=after, **kw)  # type: ignore[arg-type]


def request(task_id: str, spec: TaskSpec) -> manager_pb2.SubmitTaskRequest:
    return manager_pb2.SubmitTaskRequest(id=task_id, spec=spec_to(spec))


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[str]:
    async with manager_and_worker(tmp_path) as address:
        yield address


async def _state(client: Client, task_id: str) -> TaskState:
    return (await client.get_task(task_id)).status.state


async def test_a_graph_with_a_failing_branch(target: str) -> None:
    retry = RestartPolicy(mode=RestartMode.ON_FAILURE, max_attempts=2, backoff=0.2)
    graph = [
        request("build", sh("build", "echo built")),
        request(
            "flaky", sh("flaky", "sleep 0.3; exit 1", Dependency("build"), restart_policy=retry)
        ),
        request("deploy", sh("deploy", "echo deployed", Dependency("flaky"))),
        request("report", sh("report", "echo reported", Dependency("flaky", FINISHED))),
        request("docs", sh("docs", "echo docs", Dependency("build"))),
    ]
    async with channel(target) as ch, Client(target) as client:
        stub = manager_pb2_grpc.ManagerServiceStub(ch)
        reply = await stub.SubmitTasks(manager_pb2.SubmitTasksRequest(tasks=graph), timeout=10)
        assert [t.id for t in reply.tasks] == ["build", "flaky", "deploy", "report", "docs"]
        # Waiting dependents say what they wait for.
        deploy = await client.get_task("deploy")
        assert deploy.status.state is TaskState.PENDING
        assert "waiting for flaky" in deploy.status.message
        await eventually(lambda: _is(client, "deploy", TaskState.SKIPPED), timeout=30)
        flaky = await client.get_task("flaky")
        # The dependency's restart policy ran to its end before the dependent was decided.
        assert flaky.status.state is TaskState.FAILED and flaky.status.attempts == 2
        deploy = await client.get_task("deploy")
        assert "flaky" in deploy.status.message and "failed" in deploy.status.message
        assert deploy.status.generation == 0  # it never ran
        for name in ("report", "docs", "build"):
            await eventually(lambda n=name: _is(client, n, TaskState.COMPLETED), timeout=30)
        listed = await client.list_tasks(states=[TaskState.SKIPPED])
        assert [t.id for t in listed] == ["deploy"]


async def _is(client: Client, task_id: str, state: TaskState) -> bool:
    return await _state(client, task_id) is state


async def test_cycles_and_unknown_ids_are_refused_at_submit(target: str) -> None:
    cycle = [
        request("a", sh("a", "true", Dependency("c"))),
        request("b", sh("b", "true", Dependency("a"))),
        request("c", sh("c", "true", Dependency("b"))),
    ]
    async with channel(target) as ch, Client(target) as client:
        stub = manager_pb2_grpc.ManagerServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SubmitTasks(manager_pb2.SubmitTasksRequest(tasks=cycle), timeout=10)
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details() == "tasks[0].spec.depends_on: cycle: a -> c -> b -> a"
        unknown = [request("x", sh("x", "true", Dependency("nowhere")))]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SubmitTasks(manager_pb2.SubmitTasksRequest(tasks=unknown), timeout=10)
        assert err.value.details().startswith("tasks[0].spec.depends_on[0].task_id: no task")
        assert await client.list_tasks() == []  # nothing half-written


async def test_rest_and_cli(target: str, tmp_path: Path) -> None:
    gateway = await serve_gateway(target, "127.0.0.1:0", compat_modules=[])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}") as http:
            body = {
                "tasks": [
                    {"id": "r1", "spec": {"name": "r1", "command": ["true"]}},
                    {
                        "id": "r2",
                        "spec": {
                            "name": "r2",
                            "command": ["true"],
                            "dependsOn": [
                                {"taskId": "r1", "condition": "DEPENDENCY_CONDITION_FINISHED"}
                            ],
                        },
                    },
                ]
            }
            r = await http.post("/v1/tasks:batch", json=body)
            assert r.status_code == 200, r.text
            loop = {"tasks": [{"id": "s", "spec": {"name": "s", "command": ["true"],
                                                     "dependsOn": [{"taskId": "s"}]}}]}  # fmt: skip
            r = await http.post("/v1/tasks:batch", json=loop)
            assert r.status_code == 400 and "cycle: s -> s" in r.text
            await eventually(lambda: _rest_state(http, "r2", "TASK_STATE_COMPLETED"), timeout=30)
    finally:
        await gateway.stop()

    def cli(*args: str) -> tuple[int, str]:
        # --manager before any "--": what follows that is the task's argv.
        result = CliRunner().invoke(main.build(), [args[0], "--manager", target, *args[1:]])
        return result.exit_code, result.output

    workflow = tmp_path / "workflow.yaml"
    workflow.write_text(
        """
tasks:
  - id: fetch
    spec: {name: fetch, command: [sh, -c, "exit 2"]}
  - id: crunch
    spec: {name: crunch, command: ["true"], dependsOn: [{taskId: fetch}]}
"""
    )
    code, out = await asyncio.to_thread(cli, "run", "-f", str(workflow), "-o", "json")
    assert code == 0, out
    assert [t["id"] for t in json.loads(out)] == ["fetch", "crunch"]
    code, out = await asyncio.to_thread(
        cli, "run", "--name", "after-fetch", "--after", "fetch=finished", "--", "true"
    )
    assert code == 0, out
    async with Client(target) as client:
        await eventually(lambda: _is(client, "crunch", TaskState.SKIPPED), timeout=30)
        after = await client.find_task("after-fetch")
        assert after.spec.depends_on == (Dependency("fetch", FINISHED),)
        await eventually(lambda: _is(client, after.id, TaskState.COMPLETED), timeout=30)
    code, out = await asyncio.to_thread(cli, "run", "--name", "z", "--after", "nope", "--", "true")
    assert code == 1 and "nope" in out


async def _rest_state(http: httpx.AsyncClient, task_id: str, state: str) -> bool:
    return (await http.get(f"/v1/tasks/{task_id}")).json()["status"]["state"] == state


async def test_held_tasks_stay_held_across_a_manager_restart(tmp_path: Path) -> None:
    async with inprocess.manager(tmp_path) as address, Client(address) as client:
        # No worker: "first" stays PENDING, so "second" waits on it.
        await client.submit_many(
            [(sh("first", "true"), "first"), (sh("second", "true", Dependency("first")), "second")]
        )
    async with manager_and_worker(tmp_path) as address, Client(address) as client:
        await eventually(lambda: _is(client, "second", TaskState.COMPLETED), timeout=30)
        first = await client.get_task("first")
        second = await client.get_task("second")
        assert first.status.finished_at is not None and second.status.started_at is not None
        assert second.status.started_at >= first.status.finished_at
