"""The gateway in front of a real manager and a real worker (in-process, real
gRPC streams): jobs end to end on the process runtime, task logs followed and
events resumed through REST, and Cube tasks on Docker (and without it)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from waiting import eventually

from gateway.server import serve as serve_gateway
from manager.config import ManagerConfig
from manager.server import serve as serve_manager
from worker.config import WorkerConfig
from worker.server import serve as serve_worker

ZEN_FIRST = "The Zen of Python, by Tim Peters"
ZEN_LAST = "Namespaces are one honking great idea -- let's do more of those!"
BUSYBOX = "corral-test/busybox:latest"


@asynccontextmanager
async def stack(tmp_path: Path, runtimes: Sequence[str]) -> AsyncIterator[httpx.AsyncClient]:
    config = ManagerConfig(
        listen="127.0.0.1:0", data_dir=tmp_path / "manager", heartbeat_interval=0.2, ttl=2.0
    )
    manager = await serve_manager(config, extension_modules=["manager.jobs"])
    target = f"127.0.0.1:{manager.port}"
    worker = await serve_worker(
        WorkerConfig(
            manager=target,
            listen="127.0.0.1:0",
            data_dir=tmp_path / "worker",
            runtimes=tuple(runtimes),
        )
    )
    compat = ["gateway.compat.cube", "gateway.compat.jobs"]
    gw = await serve_gateway(target, "127.0.0.1:0", compat_modules=compat)
    try:
        base = f"http://127.0.0.1:{gw.port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            await until(http, "/v1/nodes", lambda body: len(body["nodes"]) == 1)
            yield http
    finally:
        await gw.stop()
        await worker.stop()
        await manager.stop()


async def until(http: httpx.AsyncClient, path: str, check: Any, timeout: float = 30) -> Any:
    """Poll ``path`` until ``check(json)`` holds (the manager has no push for REST here)."""

    async def body() -> Any:
        got = (await http.get(path)).json()
        return got if check(got) else None

    return await eventually(body, timeout=timeout, what=f"{path} satisfies the check")


async def test_jobs_and_tasks_through_the_gateway(tmp_path: Path) -> None:
    async with stack(tmp_path, ("process",)) as http:
        job = (await http.post("/jobs", json={"cmd": 'python3 -c "import this"'})).json()
        name = job["metadata"]["name"]
        status = await until(http, f"/jobs/{name}/status", lambda s: s["succeeded"] == 1)
        assert status["conditions"][0]["type"] == "Complete" and status["completion_time"]
        logs = (await http.get(f"/jobs/{name}/logs")).text
        assert logs.startswith(ZEN_FIRST) and logs.rstrip().endswith(ZEN_LAST)
        assert [j["job"] for j in (await http.get("/jobs")).json()] == [name]

        failing = (await http.post("/jobs", json={"cmd": "echo bad >&2; exit 2"})).json()
        status = await until(
            http, f"/jobs/{failing['metadata']['name']}/status", lambda s: s["failed"] == 1
        )
        assert status["conditions"][0]["type"] == "Failed"
        assert (await http.get(f"/jobs/{failing['metadata']['name']}/logs")).text == "bad\n"

        # Canonical routes: submit, follow the output as written, stop, events.
        # Where the task can see it: a root worker runs it as nobody, who cannot enter tmp_path.
        flag_dir = Path(tempfile.mkdtemp(prefix="corral-flag-"))
        flag_dir.chmod(0o755)
        flag = flag_dir / "go"
        script = f"echo ready; while [ ! -e {flag} ]; do sleep 0.02; done; echo done"
        spec = {"name": "waiter", "command": ["sh", "-c", script]}
        task = (await http.post("/v1/tasks", json={"spec": spec})).json()
        async with http.stream("GET", f"/v1/tasks/{task['id']}/logs?follow=true") as r:
            chunks = r.aiter_bytes()
            assert await asyncio.wait_for(anext(chunks), 20) == b"ready\n"
            flag.touch()
            assert b"".join([c async for c in chunks]) == b"done\n"
        shutil.rmtree(flag_dir)
        sleeper = {"name": "sleeper", "command": ["sleep", "60"]}
        sleeping = (await http.post("/v1/tasks", json={"spec": sleeper})).json()
        await until(
            http,
            f"/v1/tasks/{sleeping['id']}",
            lambda t: t["status"]["state"] == "TASK_STATE_RUNNING",
        )
        stopped = await http.post(f"/v1/tasks/{sleeping['id']}:stop", json={})
        assert stopped.status_code == 200
        await until(
            http,
            f"/v1/tasks/{sleeping['id']}",
            lambda t: t["status"]["state"] == "TASK_STATE_STOPPED",
        )
        async with http.stream("GET", "/v1/events", headers={"Last-Event-ID": "1"}) as r:
            lines = r.aiter_lines()
            assert await asyncio.wait_for(anext(lines), 10) == "id: 2"


async def test_cube_task_runs_on_docker(tmp_path: Path, engine: Any) -> None:
    # `engine` skips without Docker (and fails in CI): the worker below offers docker.
    async with stack(tmp_path, ("process", "docker")) as http:
        event = {
            "ID": "5b1f0c1e-6bd4-4b7a-9d0e-3f8d3c1d2a01",
            "State": 1,
            "Task": {
                "ID": "5b1f0c1e-6bd4-4b7a-9d0e-3f8d3c1d2a01",
                "Name": "Busy Box",
                "State": 1,
                "Image": BUSYBOX,
                "Memory": 64 << 20,
            },
        }
        r = await http.post("/tasks", json=event)
        assert r.status_code == 201, r.text
        task_id = r.json()["ID"]
        # busybox's default command (sh, no stdin) exits 0 at once: Completed (3).
        done = await until(http, f"/tasks/{task_id}", lambda t: t["State"] in (3, 4))
        assert done["State"] == 3, done
        assert done["Name"] == "Busy Box" and done["FinishTime"] != "0001-01-01T00:00:00Z"
        assert [t["ID"] for t in (await http.get("/task")).json()] == [task_id]
        assert (await http.delete(f"/tasks/{task_id}")).status_code == 204
        (node,) = (await http.get("/nodes")).json()
        assert node["Role"] == "worker" and node["Memory"] > 0
        stats = (await http.get("/stats")).json()
        assert stats["MemStats"]["mem_total"] > 0 and stats["DiskStats"]["all"] > 0


async def test_cube_task_without_docker_says_why(tmp_path: Path) -> None:
    async with stack(tmp_path, ("process",)) as http:
        event = {"Task": {"Name": "web", "Image": BUSYBOX}}
        task = (await http.post("/tasks", json=event)).json()
        assert task["State"] == 0
        canonical = (await http.get(f"/v1/tasks/{task['ID']}")).json()
        assert "docker" in canonical["status"]["message"]
