"""Real manager and worker processes: a worker killed with SIGKILL has its task
rescheduled on another worker within three heartbeat TTLs, and a manager killed
with SIGKILL and restarted on its data dir keeps every acknowledged task while
its workers reconnect."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cluster import TTL, Cluster
from waiting import eventually

from corral.client import Client
from corral.model import NodeStatus, RestartMode, RestartPolicy, Task, TaskSpec, TaskState


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    yield c
    c.close()


def sleeper(cluster: Cluster, name: str) -> TaskSpec:
    # A unique argv lets the fixture find and kill what a SIGKILLed worker orphaned.
    marker = f"{300 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"
    cluster.markers.append(f"sleep {marker}")
    return TaskSpec(
        name=name,
        command=("sleep", marker),
        restart_policy=RestartPolicy(mode=RestartMode.ALWAYS, backoff=0.1),
    )


async def until(client: Client, task_id: str, ok: Callable[[Task], bool], timeout: float) -> Task:
    async def task() -> Task | None:
        got = await client.get_task(task_id)
        return got if ok(got) else None

    return await eventually(task, timeout=timeout, interval=0.05, what=f"task {task_id}")


async def test_killed_worker_tasks_move_within_three_ttls(cluster: Cluster) -> None:
    manager = cluster.start_manager()
    await cluster.manager_ready(manager)
    workers = {name: cluster.start_worker(name, "--runtimes", "process") for name in ("w1", "w2")}
    async with Client(cluster.target) as client:
        nodes = {name: await cluster.node(client, name, proc=p) for name, p in workers.items()}
        task = await client.submit(sleeper(cluster, "mover"))
        task = await until(client, task.id, lambda t: t.status.state is TaskState.RUNNING, 20)
        first = next(name for name, n in nodes.items() if n.id == task.status.node_id)
        other = nodes["w2" if first == "w1" else "w1"]

        workers[first].kill()
        killed_at = time.monotonic()
        moved = await until(
            client,
            task.id,
            lambda t: t.status.node_id == other.id and t.status.state is TaskState.RUNNING,
            3 * TTL + 5,
        )
        took = time.monotonic() - killed_at
        print(f"rescheduled {took:.2f}s after the SIGKILL (TTL {TTL}s)")
        assert took < 3 * TTL, f"rescheduled after {took:.2f}s"
        assert moved.status.generation > task.status.generation
        assert (await client.get_node(nodes[first].id)).status is NodeStatus.DOWN


async def test_restarted_manager_keeps_acknowledged_tasks(cluster: Cluster) -> None:
    manager = cluster.start_manager()
    await cluster.manager_ready(manager)
    worker = cluster.start_worker("w1", "--runtimes", "process,fake")
    async with Client(cluster.target) as client:
        node = await cluster.node(client, "w1", proc=worker)
        running = await client.submit(sleeper(cluster, "long"))
        await until(client, running.id, lambda t: t.status.state is TaskState.RUNNING, 20)
        acknowledged = [running.id]
        for i in range(20):
            task = await client.submit(TaskSpec(name=f"batch-{i}", runtime="fake"))
            acknowledged.append(task.id)

    manager.kill()
    manager = cluster.start_manager()
    await cluster.manager_ready(manager)
    async with Client(cluster.target) as client:
        for task_id in acknowledged:
            assert (await client.get_task(task_id)).id == task_id
        back = await cluster.node(client, "w1", proc=worker, timeout=3 * TTL + 10)
        assert back.id == node.id
        # The sleeper survived the manager's crash on its worker and is still RUNNING there.
        still = await client.get_task(running.id)
        assert still.status.state is TaskState.RUNNING
        assert still.status.node_id == node.id
