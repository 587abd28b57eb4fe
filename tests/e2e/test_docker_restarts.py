"""Docker tasks through a real manager and real worker processes, on a real engine.

An HTTP health check that fails gets the task restarted by its policy; a
worker killed with SIGKILL leaves its containers running, and the worker that
replaces it adopts them (no duplicate) and stops those the manager does not
know. Servers bind port 0 of 127.0.0.1 (the manager reports its port through
--port-file) and containers use host networking. Without an engine these tests
skip on a laptop and fail in CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from docker_engine import IMAGE
from waiting import eventually, free_port, reported_port

from corral.client import Client
from corral.model import (
    Health,
    HealthCheck,
    HttpProbe,
    PortMapping,
    RestartMode,
    RestartPolicy,
    Task,
    TaskSpec,
    TaskState,
)

CORRAL = str(Path(sys.executable).parent / "corral")

pytestmark = pytest.mark.docker


class Servers:
    """A manager and worker processes; every process started here is ended here."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manager = ""  # HOST:PORT once the manager reported the port it got
        self.worker_dir = root / "worker"
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        proc = subprocess.Popen([CORRAL, *args], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        return proc

    async def start_manager(self) -> None:
        # TTL 60 s: a killed worker started again within its orphan grace
        # ((TTL - heartbeat) / 2, see worker.fencing) adopts its containers, and a
        # replacement worker starts well within that even on a loaded machine.
        port_file = self.root / "manager.port"
        manager = self.spawn(
            "manager", "manager", "--listen", "127.0.0.1:0", "--port-file", str(port_file),
            "--data-dir", str(self.root / "m"), "--ttl", "60",
        )  # fmt: skip
        port = await reported_port(port_file, alive=lambda: manager.poll() is None, logs=self.logs)
        self.manager = f"127.0.0.1:{port}"

    def start_worker(self) -> subprocess.Popen[bytes]:
        return self.spawn(
            "worker",
            "worker",
            "--manager",
            self.manager,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(self.worker_dir),
            "--runtimes",
            "docker",
            "--docker-network",
            "host",
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.root.glob("*.log"))
        )

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
async def servers(engine: Any, tmp_path: Path) -> AsyncIterator[Servers]:
    s = Servers(tmp_path)
    try:
        await s.start_manager()
        s.start_worker()
        yield s
    finally:
        s.stop_all()
        owner = str(s.worker_dir.resolve())
        for c in engine.api.containers(all=True, filters={"label": f"corral.worker={owner}"}):
            with contextlib.suppress(docker.errors.NotFound):
                engine.api.remove_container(c["Id"], force=True)


async def until(
    what: str, check: Callable[[], Awaitable[Any]], servers: Servers, timeout: float = 30
) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` with the logs."""
    return await eventually(
        check, timeout=timeout, interval=0.1, what=lambda: f"{what}\n{servers.logs()}"
    )


async def docker_node(client: Client) -> bool:
    try:
        return any("docker" in n.runtimes for n in await client.list_nodes())
    except Exception:
        return False


def containers_of(engine: Any, task_id: str) -> list[str]:
    """Ids of the task's containers (summaries: listing objects would race a removal)."""
    found = engine.api.containers(all=True, filters={"label": f"corral.task-id={task_id}"})
    return [c["Id"] for c in found]


async def test_unhealthy_container_is_restarted_by_policy(servers: Servers, engine: Any) -> None:
    port = free_port()
    serve = (
        f"mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 127.0.0.1:{port} -h /www"
    )
    spec = TaskSpec(
        name="web",
        runtime="docker",
        image=IMAGE,
        command=("sh", "-c", serve),
        ports=(PortMapping(port),),
        health_check=HealthCheck(
            HttpProbe("/index.html", port), interval=0.2, timeout=1, failure_threshold=2
        ),
        restart_policy=RestartPolicy(RestartMode.ON_FAILURE, backoff=0.1),
        stop_grace=1,
    )
    async with Client(servers.manager) as client:
        await until("a docker worker", lambda: docker_node(client), servers)
        task = await client.submit(spec)

        async def healthy() -> Task | None:
            t = await client.get_task(task.id)
            ok = t.status.state is TaskState.RUNNING and t.status.health is Health.HEALTHY
            return t if ok else None

        first = await until("healthy", healthy, servers)
        (container_id,) = containers_of(engine, task.id)
        container = engine.containers.get(container_id)
        # Break it from inside: the page it serves goes away, the probe gets 404.
        assert container.exec_run(["rm", "/www/index.html"]).exit_code == 0

        async def restarted() -> Task | None:
            t = await healthy()
            return t if t and t.status.generation > first.status.generation else None

        second = await until("a restarted, healthy attempt", restarted, servers)
        assert second.status.restart_count >= 1
        (replacement,) = containers_of(engine, task.id)  # the broken one is gone
        assert replacement != container.id

        async def unhealthy_event() -> str:
            async for event in client.watch_events(1):
                if event.task and event.task.id == task.id and "unhealthy" in event.message:
                    return event.message
            return ""

        assert "404" in await asyncio.wait_for(unhealthy_event(), 10)

        await client.stop_task(task.id)
        await until("no container left", lambda: _none_left(engine, task.id), servers)


async def _none_left(engine: Any, task_id: str) -> bool:
    return not await asyncio.to_thread(containers_of, engine, task_id)


async def test_a_worker_killed_and_replaced_adopts_its_containers(
    servers: Servers, engine: Any
) -> None:
    async with Client(servers.manager) as client:
        await until("a docker worker", lambda: docker_node(client), servers)
        spec = TaskSpec(
            name="keep", runtime="docker", image=IMAGE, command=("sleep", "300"), stop_grace=0.5
        )
        task = await client.submit(spec)

        async def running() -> Task | None:
            t = await client.get_task(task.id)
            return t if t.status.state is TaskState.RUNNING else None

        before = await until("running", running, servers)
        (container_id,) = containers_of(engine, task.id)
        container = engine.containers.get(container_id)

        servers.procs[-1].send_signal(signal.SIGKILL)
        servers.procs[-1].wait()
        container.reload()
        assert container.status == "running"  # the engine keeps it without its worker
        # A container of this worker that the manager never assigned: Reconcile stops it.
        owner = str(servers.worker_dir.resolve())
        engine.containers.run(
            IMAGE,
            ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"],
            detach=True,
            network_mode="host",
            labels={
                "corral.worker": owner,
                "corral.task-id": "ghost",
                "corral.generation": "7",
                "corral.node-id": before.status.node_id,
            },
        )

        servers.start_worker()
        await until(
            "the ghost container stopped",
            lambda: _none_left(engine, "ghost"),
            servers,
        )
        after = await client.get_task(task.id)
        assert after.status.state is TaskState.RUNNING
        assert after.status.generation == before.status.generation
        assert containers_of(engine, task.id) == [container.id]
        # The new worker owns it: a stop reaches the adopted container.
        await client.stop_task(task.id)
        await until("adopted container stopped", lambda: _none_left(engine, task.id), servers)
        final = await client.get_task(task.id)
        assert final.status.state is TaskState.STOPPED
