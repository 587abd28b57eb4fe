"""Manager + worker (kubernetes runtime) + gateway in-process, against the fake API server.

``/start`` creates exactly the template's Deployment, Service and Ingress and
``/stop`` removes them; ``POST /jobs`` becomes a batch/v1 Job whose logs come
back through ``/jobs/{job}/logs``; bad replIds never reach the API server;
a backend failure is a 500 with its reason; the RBAC file grants exactly the
verbs the runtime used.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fakekube import FakeKube
from waiting import eventually

from corral.client import Client
from corral.model import NodeId, TaskId, TaskSpec, TaskState
from gateway.server import RunningGateway
from gateway.server import serve as serve_gateway
from manager.config import ManagerConfig
from manager.environments.specs import environment_spec
from manager.environments.templates import load_templates, render_manifests
from manager.server import RunningManager
from manager.server import serve as serve_manager
from worker.config import WorkerConfig
from worker.runtimes.base import Assignment, AttemptRef
from worker.runtimes.kubernetes import KubernetesRuntime
from worker.server import RunningWorker
from worker.server import serve as serve_worker

ROOT = Path(__file__).resolve().parents[2]
NS = "corral-envs"
JOBS_NS = "corral-jobs"


@dataclass
class Stack:
    fake: FakeKube
    manager: RunningManager
    worker: RunningWorker
    gateway: RunningGateway
    http: httpx.AsyncClient
    target: str


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    server = FakeKube()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def stack(fake: FakeKube, tmp_path: Path) -> AsyncIterator[Stack]:
    config = ManagerConfig(
        listen="127.0.0.1:0",
        data_dir=tmp_path / "manager",
        heartbeat_interval=0.2,
        ttl=2.0,
        jobs_runtime="kubernetes",
        jobs_image="python:3.12-alpine",
        environments_runtime="kubernetes",
        environments_domain="envs.example.com",
        environments_namespace=NS,
        stop_grace=0.5,
    )
    manager = await serve_manager(config)
    target = f"127.0.0.1:{manager.port}"
    worker = await serve_worker(
        WorkerConfig(
            manager=target,
            listen="127.0.0.1:0",
            data_dir=tmp_path / "worker",
            name="kw1",
            runtimes=("kubernetes",),
            kubeconfig=str(fake.kubeconfig(tmp_path)),
            namespace=JOBS_NS,
            reconnect_initial=0.05,
            reconnect_max=0.2,
        )
    )
    gateway = await serve_gateway(target, "127.0.0.1:0")
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=60)
    async with Client(target) as client:

        async def registered() -> bool:
            return any(n.name == "kw1" for n in await client.list_nodes())

        await eventually(registered, what="node kw1 registered")
    stack = Stack(fake, manager, worker, gateway, http, target)
    try:
        yield stack
    finally:
        await http.aclose()
        # Each part is stopped even when another fails: a leaked gRPC server
        # would complain in whichever test the garbage collector finds it.
        failures = [
            err
            for err in [
                await bounded_stop("gateway", gateway.stop()),
                await bounded_stop("worker", stack.worker.stop()),  # the test may replace it
                await bounded_stop("manager", manager.stop(0.5)),
            ]
            if err
        ]
        assert not failures, failures


async def bounded_stop(name: str, stopping: Coroutine[Any, Any, None]) -> str:
    """A stop that hangs fails fast, with every task's stack to say where."""
    try:
        await asyncio.wait_for(stopping, 20)
    except TimeoutError:
        for task in asyncio.all_tasks():
            task.print_stack(file=sys.stderr)
        return f"the {name} did not stop in 20s"
    return ""


def names(fake: FakeKube, resource: str, namespace: str = NS) -> list[str]:
    return [o["metadata"]["name"] for o in fake.list(resource, namespace)]


def strip(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as Corral sent it, minus what the server and the runtime added."""
    out = json.loads(json.dumps(obj))
    meta = out["metadata"]
    for key in ("uid", "resourceVersion", "creationTimestamp", "namespace", "annotations"):
        meta.pop(key, None)
    meta["labels"] = {k: v for k, v in meta.get("labels", {}).items() if "corral." not in k}
    template = out.get("spec", {}).get("template", {}).get("metadata")
    if template:
        template["labels"] = {k: v for k, v in template["labels"].items() if "corral." not in k}
    out.pop("status", None)
    return out


async def test_start_and_stop_make_exactly_the_template(stack: Stack) -> None:
    fake, http = stack.fake, stack.http
    reply = await http.post("/start", json={"replId": "proj-1", "language": "nodejs"})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"success": True, "podCreated": True}
    assert names(fake, "deployments") == ["proj-1"]
    assert names(fake, "services") == ["proj-1"]
    assert names(fake, "ingresses") == ["proj-1"]
    expected = render_manifests(
        load_templates()["nodejs"], repl_id="proj-1", host="proj-1.envs.example.com", namespace=NS
    )
    for resource, want in zip(("deployments", "services", "ingresses"), expected, strict=True):
        got = fake.get(resource, NS, "proj-1")
        assert got is not None
        assert strip(got) == strip(want), resource
        assert got["metadata"]["labels"]["corral.worker"] == "kw1"
    ingress = fake.get("ingresses", NS, "proj-1")
    assert ingress is not None
    assert ingress["spec"]["rules"][0]["host"] == "proj-1.envs.example.com"
    deployment = fake.get("deployments", NS, "proj-1")
    assert deployment is not None
    pod_spec = deployment["spec"]["template"]["spec"]
    assert pod_spec["initContainers"][0]["name"] == "fetch-project"
    assert pod_spec["containers"][0]["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}

    # Idempotent: the same answer, nothing created twice.
    again = await http.post("/start", json={"replId": "proj-1", "language": "nodejs"})
    assert again.status_code == 200 and again.json()["success"] is True
    assert len(fake.calls_to("create", "deployments")) == 1

    async with Client(stack.target) as client:
        got_env = await client.get_environment("proj-1")
        assert got_env.host == "proj-1.envs.example.com"
        assert got_env.namespace == NS

    # The canonical routes of EnvironmentService, from its google.api.http annotations.
    listed = (await http.get("/v1/environments")).json()
    assert [e["replId"] for e in listed["environments"]] == ["proj-1"]
    one = (await http.get("/v1/environments/proj-1")).json()
    assert one["state"] == "TASK_STATE_RUNNING" and one["runtime"] == "kubernetes"

    stopped = await http.post("/stop", json={"replId": "proj-1"})
    assert stopped.status_code == 200 and stopped.json() == {"success": True}
    # The manager records the stop and tells the worker, which deletes at once.
    await eventually(
        lambda: not any(names(fake, r) for r in ("deployments", "services", "ingresses", "pods"))
    )
    deletes = [c for c in fake.calls if c.verb == "delete"]
    assert {c.resource for c in deletes} == {"deployments", "services", "ingresses"}
    assert all(c.query.get("propagationPolicy") == "Background" for c in deletes)
    missing = await http.post("/stop", json={"replId": "proj-1"})
    assert missing.status_code == 404 and missing.json()["success"] is False


@pytest.mark.parametrize(
    "repl_id",
    ["../x", "a b", "x\n- y", "x" * 64, "Upper", "x}{y", "{replId}", "-x", "x.y", "x/y"],
)
async def test_bad_repl_ids_never_reach_the_cluster(stack: Stack, repl_id: str) -> None:
    before = len(stack.fake.calls)
    reply = await stack.http.post("/start", json={"replId": repl_id, "language": "python"})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"].startswith("replId:")
    stop = await stack.http.post("/stop", json={"replId": repl_id})
    assert stop.status_code == 400
    writes = [c for c in stack.fake.calls[before:] if c.verb in ("create", "delete")]
    assert writes == []


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"language": "python"}, 400, "replId: is required"),
        ({"replId": "p"}, 400, "language: is required"),
        ({"replId": "p", "language": "cobol"}, 400, "language: unknown language 'cobol'"),
        ({"replId": 5, "language": "python"}, 400, "replId: must be a string"),
    ],
)
async def test_start_bad_bodies(
    stack: Stack, body: dict[str, Any], status: int, error: str
) -> None:
    reply = await stack.http.post("/start", json=body)
    assert reply.status_code == status
    assert reply.json()["success"] is False and reply.json()["error"].startswith(error)
    assert not stack.fake.calls_to("create", "deployments")


async def test_backend_failure_is_500_with_the_reason(stack: Stack) -> None:
    stack.fake.failures[("ingresses", "create")] = (403, "ingresses.networking.k8s.io is forbidden")
    reply = await stack.http.post("/start", json={"replId": "proj-2", "language": "python"})
    assert reply.status_code == 500
    assert "403" in reply.json()["error"] and "forbidden" in reply.json()["error"]
    # Nothing half-made: the Deployment and Service were rolled back, and the
    # environment does not keep restarting behind the 500.
    assert names(stack.fake, "deployments") == [] and names(stack.fake, "services") == []
    async with Client(stack.target) as client:
        tasks = await client.list_tasks()
        assert [t.status.state for t in tasks] == [TaskState.STOPPED]
    assert (await stack.http.get("/health")).status_code == 200


async def test_jobs_run_as_kubernetes_jobs(stack: Stack) -> None:
    fake, http = stack.fake, stack.http
    reply = await http.post("/jobs", json={"cmd": "python3 -c 'import this'"})
    assert reply.status_code == 200, reply.text
    name = reply.json()["metadata"]["name"]
    jobs = await eventually(lambda: fake.list("jobs", JOBS_NS))
    container = jobs[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["sh", "-c", "python3 -c 'import this'"]
    assert container["image"] == "python:3.12-alpine"
    assert jobs[0]["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    pod = (await eventually(lambda: fake.list("pods", JOBS_NS)))[0]["metadata"]["name"]
    fake.write_log(JOBS_NS, pod, b"The Zen of Python, by Tim Peters\n")
    fake.set_pod(JOBS_NS, pod, "Running")
    fake.set_pod(JOBS_NS, pod, "Succeeded", exit_code=0)

    async def succeeded() -> dict[str, Any] | None:
        status = (await http.get(f"/jobs/{name}/status")).json()
        return dict(status) if status.get("succeeded") else None

    status = await eventually(succeeded, what=f"job {name} succeeded")
    assert status["conditions"][0]["type"] == "Complete"
    logs = await http.get(f"/jobs/{name}/logs")
    assert logs.text == "The Zen of Python, by Tim Peters\n"


def rbac_rules() -> dict[tuple[str, str], set[str]]:
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "rbac.yaml").read_text()))
    roles = [d for d in docs if d and d["kind"] in ("Role", "ClusterRole")]
    granted: dict[tuple[str, str], set[str]] = {}
    for role in roles:
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


async def test_rbac_grants_exactly_the_verbs_used(stack: Stack, tmp_path: Path) -> None:
    """Every flow that talks to the cluster, then the calls compared with deploy/."""
    fake, http = stack.fake, stack.http
    ok = await http.post("/start", json={"replId": "rbac-1", "language": "python"})
    assert ok.status_code == 200, ok.text
    assert (await http.post("/stop", json={"replId": "rbac-1"})).status_code == 200
    await eventually(lambda: not names(fake, "deployments"))
    job = (await http.post("/jobs", json={"cmd": "echo hi"})).json()["metadata"]["name"]
    pod = (await eventually(lambda: fake.list("pods", JOBS_NS)))[0]["metadata"]["name"]
    fake.set_pod(JOBS_NS, pod, "Running")
    fake.set_pod(JOBS_NS, pod, "Failed", exit_code=1)

    async def failed() -> bool:
        return bool((await http.get(f"/jobs/{job}/status")).json().get("failed"))

    await eventually(failed, what=f"job {job} failed")
    # Tenant namespaces, the orphan sweep, and a start redelivered to a restarted
    # worker (409 -> get: it is its own object), through the runtime directly.
    tenant_config = replace(stack.manager.core.config, tenant_namespaces=True)
    spec = environment_spec(
        load_templates()["python"], repl_id="rbac-2", tenant="acme", config=tenant_config
    )
    env = Assignment(AttemptRef(TaskId("rbac-env"), 1), spec, NodeId("n"))
    batch = Assignment(
        AttemptRef(TaskId("rbac-job"), 1),
        TaskSpec(name="j", runtime="kubernetes", image="busybox", command=("true",)),
        NodeId("n"),
    )
    config = WorkerConfig(
        data_dir=tmp_path / "again",
        kubeconfig=str(fake.kubeconfig(tmp_path)),
        namespace=JOBS_NS,
        name="kw1",
    )
    for _ in range(2):
        runtime = KubernetesRuntime(config)
        await runtime.start(env)
        await runtime.start(batch)
        await runtime.close()
    assert names(fake, "deployments", "acme") == ["rbac-2"]
    runtime = KubernetesRuntime(config, sweep_grace=0)
    await runtime.adopt()
    assert await runtime.sweep() == []
    await runtime.stop(env.ref, 0)
    await runtime.stop(batch.ref, 0)
    await runtime.close()

    used: dict[tuple[str, str], set[str]] = {}
    for call in fake.calls:
        used.setdefault((call.group, call.resource), set()).add(call.verb)
    assert rbac_rules() == used


async def test_restarted_worker_adopts_and_reconciles_orphans(stack: Stack, tmp_path: Path) -> None:
    """Objects outlive their worker; the next one adopts them by label, and those whose
    environment was stopped meanwhile are deleted through the manager's Reconcile."""
    fake, http = stack.fake, stack.http
    for repl_id in ("keep-me", "drop-me"):
        reply = await http.post("/start", json={"replId": repl_id, "language": "python"})
        assert reply.status_code == 200, reply.text
    await stack.worker.stop()
    assert sorted(names(fake, "deployments")) == ["drop-me", "keep-me"]  # still there
    # Stopped while no worker listens: only the manager knows.
    assert (await http.post("/stop", json={"replId": "drop-me"})).status_code == 200
    assert sorted(names(fake, "deployments")) == ["drop-me", "keep-me"]

    stack.worker = await serve_worker(
        WorkerConfig(
            manager=stack.target,
            listen="127.0.0.1:0",
            data_dir=tmp_path / "worker",
            name="kw1",
            runtimes=("kubernetes",),
            kubeconfig=str(fake.kubeconfig(tmp_path)),
            namespace=JOBS_NS,
            reconnect_initial=0.05,
            reconnect_max=0.2,
        )
    )
    await eventually(
        lambda: all(names(fake, r) == ["keep-me"] for r in ("deployments", "services", "ingresses"))
    )
    assert len(fake.calls_to("create", "deployments")) == 2  # adopted, not recreated
    async with Client(stack.target) as client:
        env = await client.get_environment("keep-me")
        assert env.state is TaskState.RUNNING
    assert (await http.post("/stop", json={"replId": "keep-me"})).status_code == 200
    await eventually(lambda: not names(fake, "deployments"))
