"""The routes of the projects Corral replaces, with their own example bodies,
through the real gateway against the fake manager (whose JobService is the
real ``manager.jobs`` over a core that runs processes for real)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from gateway_fakes import FakeCore, gateway_over_fake
from waiting import eventually

# The README of go-orchestrator (Cube), verbatim.
CUBE_EVENT = {
    "ID": "266592cd-960d-4091-981c-8c25c44b1018",
    "State": 2,
    "Task": {
        "State": 1,
        "ID": "266592cd-960d-4091-981c-8c25c44b1018",
        "Name": "task-1",
        "Image": "strm/helloworld-http",
    },
}
# The book's fuller shape: resources, ports, restart policy, health check, timestamp.
CUBE_FULL = {
    "ID": "a7aa1d44-08f6-443e-9378-f5884311019e",
    "State": 1,
    "Timestamp": "2024-05-01T12:00:00Z",
    "Task": {
        "ID": "bb1d59ef-9fc1-4e4b-a44d-db571eeed203",
        "Name": "Echo Server 1",
        "State": 1,
        "Image": "timboring/echo-server:latest",
        "Cpu": 0.5,
        "Memory": 67108864,
        "Disk": 1,
        "ExposedPorts": {"7777/tcp": {}},
        "PortBindings": {"7777/tcp": "7777"},
        "RestartPolicy": "always",
        "HealthCheck": "/health",
    },
}
# gokube's own task.json (the file its README posts with curl), verbatim.
GOKUBE_EVENT = {
    "ID": "a7aa1d44-08f6-443e-9378-f5884311019e",
    "State": 2,
    "Task": {
        "State": 1,
        "ID": "bb1d59ef-9fc1-4e4b-a44d-db571eeed203",
        "Name": "test-chapter-9.1",
        "Image": "timboring/echo-server:latest",
        "ExposedPort": {"7777/tcp": {}},
        "PortBindings": {"7777/tcp": "7777"},
        "HealthCheck": "/health",
    },
}
CUBE_FIELDS = [
    "ID", "ContainerID", "Name", "State", "Image", "Cpu", "Memory", "Disk", "ExposedPorts",
    "HostPorts", "PortBindings", "RestartPolicy", "StartTime", "FinishTime", "HealthCheck",
    "RestartCount",
]  # fmt: skip
# gokube's task.Task: ExposedPort (singular), ContainerId, integer Memory and Disk, no Cpu.
GOKUBE_FIELDS = [
    "ID", "ContainerId", "Name", "State", "Image", "Memory", "Disk", "ExposedPort", "HostPorts",
    "PortBindings", "RestartPolicy", "StartTime", "FinishTime", "HealthCheck", "RestartCount",
]  # fmt: skip
ZEN = "The Zen of Python, by Tim Peters"


@pytest.fixture
async def stack() -> AsyncIterator[tuple[httpx.AsyncClient, FakeCore]]:
    async with gateway_over_fake() as pair:
        yield pair


@pytest.mark.parametrize(
    ("base", "fields", "status_key"),
    [("/tasks", CUBE_FIELDS, "HTTPStatusCode"), ("/task", GOKUBE_FIELDS, "HttpStatusCode")],
)
async def test_cube_task_lifecycle(
    stack: tuple[httpx.AsyncClient, FakeCore], base: str, fields: list[str], status_key: str
) -> None:
    http, core = stack
    r = await http.post(base, json=CUBE_EVENT)
    assert r.status_code == 201, r.text
    task = r.json()
    assert list(task) == fields
    assert task["ID"] == CUBE_EVENT["Task"]["ID"]  # type: ignore[index]
    assert task["Name"] == "task-1" and task["Image"] == "strm/helloworld-http"
    assert task["State"] == 0 and task["StartTime"] == "0001-01-01T00:00:00Z"
    assert task[fields[8] if base == "/tasks" else fields[7]] is None
    # The id the client sent is Corral's id; the task runs on the docker runtime.
    stored = core.tasks[task["ID"]]
    assert stored.spec.runtime == "docker" and stored.spec.image == "strm/helloworld-http"
    listed = (await http.get(base)).json()
    assert [t["ID"] for t in listed] == [task["ID"]]
    assert (await http.get(f"{base}/{task['ID']}")).json() == task
    r = await http.delete(f"{base}/{task['ID']}")
    assert r.status_code == 204 and r.content == b""
    assert (await http.get(f"{base}/{task['ID']}")).json()["State"] == 3  # stopped: Completed
    r = await http.get(f"{base}/0d9e1f4b-0000-4000-8000-000000000000")
    assert r.status_code == 404
    assert r.json()[status_key] == 404
    r = await http.delete(f"{base}/0d9e1f4b-0000-4000-8000-000000000000")
    assert r.status_code == 404


async def test_gokubes_own_task_json(stack: tuple[httpx.AsyncClient, FakeCore]) -> None:
    http, core = stack
    r = await http.post("/task", json=GOKUBE_EVENT)
    assert r.status_code == 201, r.text
    task = r.json()
    assert list(task) == GOKUBE_FIELDS
    assert task["ID"] == "bb1d59ef-9fc1-4e4b-a44d-db571eeed203"
    assert task["ExposedPort"] == {"7777/tcp": {}}
    assert task["PortBindings"] == {"7777/tcp": "7777"} and task["HealthCheck"] == "/health"
    stored = core.tasks[task["ID"]].spec
    assert [(p.container_port, p.host_port) for p in stored.ports] == [(7777, 7777)]
    assert [t["ID"] for t in (await http.get("/task")).json()] == [task["ID"]]
    # HostPorts (nat.PortMap) and integer Memory/Disk are gokube's too.
    event = {"Task": {"Name": "b", "Image": "busybox", "Memory": 1024, "Disk": 2048,
                      "HostPorts": {"80/tcp": [{"HostIp": "", "HostPort": "8081"}]}}}  # fmt: skip
    r = await http.post("/task", json=event)
    assert r.status_code == 201, r.text
    spec = core.tasks[r.json()["ID"]].spec
    assert spec.resources.memory_bytes == 1024 and spec.resources.disk_bytes == 2048
    assert [(p.container_port, p.host_port) for p in spec.ports] == [(80, 8081)]


@pytest.mark.parametrize(
    ("base", "body", "answer"),
    [
        # gokube's Task has no Cpu and decodes with unknown fields disallowed.
        ("/task", {"Task": {"Name": "a", "Image": "busybox", "Cpu": 0.5}},
         {"HttpStatusCode": 400,
          "Message": 'Error unmarshalling body: json: unknown field "Cpu"'}),
        ("/task", {"Task": {"Name": "a", "Image": "busybox", "ExposedPorts": {}}},
         {"HttpStatusCode": 400,
          "Message": 'Error unmarshalling body: json: unknown field "ExposedPorts"'}),
        ("/tasks", {"Task": {"Name": "a", "Image": "busybox", "ExposedPort": {}}},
         {"HTTPStatusCode": 400, "Message": 'json: unknown field "ExposedPort"'}),
        ("/task", {"Task": {"Name": "a", "Image": "busybox", "Memory": "1G"}},
         {"HttpStatusCode": 400, "Message": "Error unmarshalling body: json: cannot unmarshal "
          "string into Go struct field Task.Task.Memory of type int"}),
    ],
)  # fmt: skip
async def test_each_dialect_refuses_the_others_fields(
    stack: tuple[httpx.AsyncClient, FakeCore], base: str, body: Any, answer: Any
) -> None:
    http, core = stack
    r = await http.post(base, json=body)
    assert (r.status_code, r.json()) == (400, answer)
    assert core.tasks == {}


async def test_cube_full_task_shape(stack: tuple[httpx.AsyncClient, FakeCore]) -> None:
    http, core = stack
    r = await http.post("/tasks", json=CUBE_FULL)
    assert r.status_code == 201, r.text
    task = r.json()
    assert task["Name"] == "Echo Server 1"  # as sent; Corral's name is a label
    assert core.tasks[task["ID"]].spec.name == "echo-server-1"
    assert task["Cpu"] == 0.5 and task["Memory"] == 67108864 and task["Disk"] == 1
    assert task["ExposedPorts"] == {"7777/tcp": {}}
    assert task["PortBindings"] == {"7777/tcp": "7777"}
    assert task["RestartPolicy"] == "always" and task["HealthCheck"] == "/health"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "invalid JSON"),
        (b'{"ID": "x", "Task": {"Name": "a", "Image": "busybox", "Colour": 1}}', "Colour"),
        (b'{"Task": {"Name": "a", "Image": "busybox", "Cpu": "lots"}}', "Task.Task.Cpu"),
        (b'{"Task": {"Name": "a", "Image": "busybox", "Memory": 1.5}}', "Task.Task.Memory"),
        (b'{"Task": {"Name": "a", "Image": "busybox", "State": 9}}', "State"),
        (b'{"Task": {"ID": "not-a-uuid", "Name": "a", "Image": "busybox"}}', "Task.ID"),
        (b'{"Task": {"Name": "a", "Image": "Not An Image!"}}', "Task.Image"),
        (b'{"Task": {"Name": "a"}}', "Task.Image"),
        (b'{"Task": {"Name": "a", "Image": "busybox", "RestartPolicy": "sometimes"}}', "Restart"),
        (b'{"Task": {"Name": "a", "Image": "busybox", "ExposedPorts": {"http": {}}}}', "Exposed"),
        (b'{"ID": "266592cd-960d-4091-981c-8c25c44b1018"}', "Task"),
    ],
)
async def test_cube_malformed_body_is_400(
    stack: tuple[httpx.AsyncClient, FakeCore], body: bytes, needle: str
) -> None:
    http, core = stack
    r = await http.post("/tasks", content=body)
    assert r.status_code == 400, r.text
    assert r.json()["HTTPStatusCode"] == 400
    assert needle in r.json()["Message"]
    assert core.tasks == {}  # nothing half-written


async def test_cube_same_id_twice_is_409(stack: tuple[httpx.AsyncClient, FakeCore]) -> None:
    http, _ = stack
    assert (await http.post("/tasks", json=CUBE_EVENT)).status_code == 201
    r = await http.post("/tasks", json=CUBE_EVENT)
    assert r.status_code == 409 and r.json()["HTTPStatusCode"] == 409


async def test_cube_nodes_and_stats(stack: tuple[httpx.AsyncClient, FakeCore]) -> None:
    http, _ = stack
    (node,) = (await http.get("/nodes")).json()
    assert list(node) == [
        "Name", "Ip", "Api", "Memory", "MemoryAllocated", "Disk", "DiskAllocated", "Stats",
        "Role", "TaskCount",
    ]  # fmt: skip
    assert node["Name"] == "node-1" and node["Ip"] == "127.0.0.1"
    assert node["Api"] == "http://127.0.0.1:50052" and node["Role"] == "worker"
    assert node["Memory"] == 4 << 20  # kB
    assert node["Disk"] == 100 << 30
    stats = (await http.get("/stats")).json()
    assert list(stats) == ["MemStats", "DiskStats", "CpuStats", "LoadStats", "TaskCount"]
    cpu = stats["CpuStats"]
    busy = cpu["user"] + cpu["nice"] + cpu["system"] + cpu["irq"] + cpu["softirq"] + cpu["steal"]
    assert busy / (busy + cpu["idle"] + cpu["iowait"]) == pytest.approx(0.25)  # Cube's CpuUsage
    assert stats["MemStats"]["mem_total"] == 4 << 20
    assert stats["LoadStats"]["last1min"] == 0.5


async def _status(http: httpx.AsyncClient, job: str, key: str) -> dict[str, Any]:
    async def status() -> dict[str, Any] | None:
        got: dict[str, Any] = (await http.get(f"/jobs/{job}/status")).json()
        return got if got[key] else None

    return await eventually(status, what=f"job {job} has {key}")


async def test_job_api_end_to_end(stack: tuple[httpx.AsyncClient, FakeCore]) -> None:
    http, _ = stack
    assert (await http.get("/")).json() == {"status": "alive"}
    r = await http.post("/jobs", json={"cmd": 'python3 -c "import this"'})
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["api_version"] == "batch/v1" and job["kind"] == "Job"
    name = job["metadata"]["name"]
    assert len(name) == 36 and job["metadata"]["creation_timestamp"].endswith("+00:00")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ['python3 -c "import this"']
    status = await _status(http, name, "succeeded")
    assert status["succeeded"] == 1 and status["active"] is None and status["failed"] is None
    assert status["completion_time"] and status["start_time"]
    (condition,) = status["conditions"]
    assert condition["type"] == "Complete" and condition["status"] == "True"
    assert condition["message"] is None and condition["reason"] is None
    logs = await http.get(f"/jobs/{name}/logs")
    assert logs.headers["content-type"].startswith("text/plain")
    assert logs.text.startswith(ZEN) and "Namespaces are one honking great idea" in logs.text
    listed = (await http.get("/jobs")).json()
    assert listed[0]["job"] == name and listed[0]["succeeded"] == 1
    assert (await http.get(f"/jobs/{name}")).json()["status"]["succeeded"] == 1
    # The canonical route serves the same job.
    assert (await http.get(f"/v1/jobs/{name}")).json()["status"]["succeeded"] == 1


async def test_job_default_cmd_failure_and_unknown(
    stack: tuple[httpx.AsyncClient, FakeCore],
) -> None:
    http, core = stack
    job = (await http.post("/jobs", json={})).json()
    task = core.tasks[job["metadata"]["uid"]]
    assert task.spec.command == ("sh", "-c", "echo launched; sleep 10; echo done")
    assert (await _status(http, job["metadata"]["name"], "active"))["active"] == 1
    failing = (await http.post("/jobs", json={"cmd": "echo oops; exit 3"})).json()
    status = await _status(http, failing["metadata"]["name"], "failed")
    assert status["conditions"][0]["type"] == "Failed"
    assert status["completion_time"] is None
    assert (await http.get(f"/jobs/{failing['metadata']['name']}/logs")).text == "oops\n"
    for path in ("/jobs/nope", "/jobs/nope/status", "/jobs/nope/logs"):
        r = await http.get(path)
        assert r.status_code == 404 and r.json() == {"detail": "Job not found"}
    for bad in (b"{x", b'{"cmd": 3}', b'{"command": "ls"}', b'{"cmd": ""}'):
        r = await http.post("/jobs", content=bad)
        assert r.status_code == 400, (bad, r.text)
        assert "detail" in r.json()
