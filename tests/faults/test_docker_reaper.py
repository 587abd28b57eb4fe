"""A killed worker's containers: the reaper stops them before the manager replaces them.

Containers are counted from outside (the engine's list, by the task's label)
every 100 ms while the worker is SIGKILLed and its task moves to another
worker: never two running containers of the task, and the task runs again
within TTL + 1 s.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from docker_engine import IMAGE
from fleet import TTL, Figures, Fleet
from waiting import eventually

from corral.client import Client
from corral.model import RestartMode, RestartPolicy, TaskSpec, TaskState


class Containers:
    """Running containers of one task, sampled every 100 ms from the engine."""

    def __init__(self, engine: Any, task_id: str) -> None:
        self.engine, self.task_id = engine, task_id
        self.samples = 0
        self.duplicates = 0
        self.seen: list[tuple[float, tuple[str, ...]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            at = time.monotonic()
            found = self.engine.api.containers(
                filters={"label": f"corral.task-id={self.task_id}", "status": "running"}
            )
            ids = tuple(sorted(c["Id"] for c in found))
            self.samples += 1
            self.duplicates += len(ids) > 1
            if not self.seen or self.seen[-1][1] != ids:
                self.seen.append((at, ids))
            self._stop.wait(max(0.0, 0.1 - (time.monotonic() - at)))

    def __enter__(self) -> Containers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


async def test_a_dead_workers_containers_stop_before_their_replacement(
    fleet: Fleet, engine: Any, figures: Figures
) -> None:
    manager = fleet.start_manager()
    await fleet.ready(manager)
    network = ("--docker-network", "host")
    first = fleet.start_worker("d1", *network, runtimes="docker")
    async with Client(fleet.manager_address) as client:
        node = await fleet.node(client, "d1")
        spec = TaskSpec(
            name="boxed",
            runtime="docker",
            image=IMAGE,
            command=("sleep", "3000"),
            stop_grace=0.5,
            restart_policy=RestartPolicy(mode=RestartMode.ALWAYS, backoff=0.1),
        )
        task = await client.submit(spec)
        await _until(client, task.id, lambda t: t.status.state is TaskState.RUNNING)
        fleet.start_worker("d2", *network, runtimes="docker")
        await fleet.node(client, "d2")
        with Containers(engine, task.id) as containers:
            await _until_seen(containers, lambda ids: len(ids) == 1)
            (old,) = containers.seen[-1][1]
            first.kill()
            killed_at = time.monotonic()
            moved = await _until(
                client,
                task.id,
                lambda t: t.status.node_id != node.id and t.status.state is TaskState.RUNNING,
            )
            await _until_seen(containers, lambda ids: len(ids) == 1 and old not in ids)
        stopped = next(at for at, ids in containers.seen if old not in ids) - killed_at
        again = next(at for at, ids in containers.seen if ids and old not in ids) - killed_at
        figures.add("docker reaper: old container stopped after (s)", f"{stopped:.2f}")
        figures.add("docker reaper: replacement running after (s)", f"{again:.2f}")
        figures.add("docker reaper: samples / with two containers", f"{containers.samples} / "
                    f"{containers.duplicates}")  # fmt: skip
        assert containers.duplicates == 0, containers.seen
        assert stopped < again <= TTL + 1.0, containers.seen
        assert moved.status.generation > task.status.generation


async def _until(client: Client, task_id: str, ok: Any) -> Any:
    async def matching() -> Any:
        task = await client.get_task(task_id)
        return task if ok(task) else None

    return await eventually(matching, timeout=30, interval=0.05, what=f"task {task_id}")


async def _until_seen(containers: Containers, ok: Any) -> None:
    await eventually(
        lambda: bool(containers.seen) and ok(containers.seen[-1][1]),
        timeout=30,
        interval=0.05,
        what=lambda: f"containers as expected: {containers.seen}",
    )
