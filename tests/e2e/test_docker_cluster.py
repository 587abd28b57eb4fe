"""Docker end to end: ``corral up`` (manager, worker, gateway processes) on a real engine.

The done-criterion of the Docker runtime (``corral run --runtime docker ...``
then ``corral logs`` prints the output) and the Cube TaskEvent route running
a real container. Tasks run with host networking (the test engine has no
bridge); every connection is to 127.0.0.1. Without an engine these tests skip
on a laptop and fail in CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest
from docker_engine import IMAGE
from waiting import eventually, free_port

from corral.client import Client
from corral.errors import CorralError

CORRAL = str(Path(sys.executable).parent / "corral")

pytestmark = pytest.mark.docker


@dataclass
class Cluster:
    manager: str
    gateway: str
    env: dict[str, str]
    worker_dir: Path

    def corral(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CORRAL, *args],
            check=False,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture(scope="module")
def cluster(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    data = tmp_path_factory.mktemp("corral-docker-e2e")
    manager, worker, gateway = (f"127.0.0.1:{free_port()}" for _ in range(3))
    env = {
        **os.environ,
        "CORRAL_MANAGER": manager,
        "CORRAL_DOCKER_NETWORK": "host",
        "CORRAL_RUNTIMES": "docker,process",
    }
    log = (data / "up.log").open("wb")
    up = subprocess.Popen(
        [
            CORRAL,
            "up",
            "--manager-listen",
            manager,
            "--worker-listen",
            worker,
            "--gateway-listen",
            gateway,
            "--data-dir",
            str(data),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def logs() -> str:
            return (data / "up.log").read_text()

        async def docker_node() -> bool:
            assert up.poll() is None, logs()
            return await _docker_node_ready(manager)

        asyncio.run(eventually(docker_node, timeout=60, interval=0.2, what=logs))
        yield Cluster(manager, f"http://{gateway}", env, data / "worker")
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
        log.close()
        owner = str((data / "worker").resolve())
        for c in engine.api.containers(all=True, filters={"label": f"corral.worker={owner}"}):
            with contextlib.suppress(docker.errors.NotFound):
                engine.api.remove_container(c["Id"], force=True)


async def _docker_node_ready(manager: str) -> bool:
    try:
        async with Client(manager, timeout=2, retries=0) as client:
            return any("docker" in node.runtimes for node in await client.list_nodes())
    except CorralError:
        return False


class EngineEvents:
    """Container events of one task id, collected from the engine while the test runs."""

    def __init__(self, engine: Any, task_id: str) -> None:
        self.actions: list[str] = []
        self._stream = engine.events(
            decode=True, filters={"type": "container", "label": f"corral.task-id={task_id}"}
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for event in self._stream:
            self.actions.append(event.get("Action", ""))

    def close(self) -> None:
        self._stream.close()
        self._thread.join(5)


async def test_corral_run_docker_then_logs_prints_the_output(cluster: Cluster) -> None:
    name = f"hi-{uuid.uuid4().hex[:8]}"
    ran = cluster.corral(
        "run", "--runtime", "docker", "--image", IMAGE, "--name", name, "--", "echo", "hi"
    )
    assert ran.returncode == 0, ran.stderr + ran.stdout

    async def printed() -> subprocess.CompletedProcess[str] | None:
        logs = await asyncio.to_thread(cluster.corral, "logs", name)
        return logs if logs.returncode == 0 and logs.stdout == "hi\n" else None

    await eventually(printed, timeout=30, interval=0.2, what=f"corral logs {name} prints hi")
    task = cluster.corral("task", "get", name)
    assert task.returncode == 0 and "completed" in task.stdout.lower(), task.stdout


async def test_cube_task_event_runs_a_real_container(cluster: Cluster, engine: Any) -> None:
    task_id = str(uuid.uuid4())
    events = EngineEvents(engine, task_id)
    try:
        event = {
            "ID": str(uuid.uuid4()),
            "State": 1,
            "Timestamp": "2026-01-01T00:00:00Z",
            "Task": {"ID": task_id, "Name": "cube-shell", "State": 1, "Image": IMAGE},
        }
        async with httpx.AsyncClient(base_url=cluster.gateway, timeout=10) as http:
            created = await http.post("/tasks", json=event)
            assert created.status_code == 201, created.text
            assert created.json()["ID"] == task_id and created.json()["Image"] == IMAGE

            # The image's command is a shell with no input: it exits 0, Cube's Completed (3).
            async def completed() -> bool:
                task = (await http.get(f"/tasks/{task_id}")).json()
                assert task["State"] in (0, 1, 2, 3), task
                return bool(task["State"] == 3)

            await eventually(completed, timeout=30, interval=0.1, what=f"task {task_id} done")
        await eventually(lambda: "destroy" in events.actions, what=lambda: str(events.actions))
        # A real container was created, ran and ended; then the worker removed it.
        assert events.actions.index("create") < events.actions.index("start")
        assert events.actions.index("start") < events.actions.index("die")
    finally:
        events.close()
