"""Docker: submit -> RUNNING through Corral against a bare ``docker run -d``, same engine, same run.

Corral's path is the whole control plane: the client submits over gRPC, the
manager (its own process) places the task and assigns it on the worker's
stream, the worker (docker runtime only, its own process)
creates and starts the container and reports RUNNING, and the client sees
that on its event stream. The bare path is the SDK's ``containers.run``
(create, inspect, start: what ``docker run -d`` does), and the engine floor
is a bare create + start through the low-level API (the calls Corral's worker
makes). Samples alternate between the three so that a slow moment of the
engine lands on all of them. Every container runs
``sleep`` with host networking and is removed outside the measured window.

``python -m bench.docker_case [--samples N]`` runs it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing.connection
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import docker

from bench import cluster, harness, spawning
from bench.figures import latency_figures, ms, percentile, ratio
from corral.client import Client
from corral.model import TaskSpec, TaskState

IMAGE = "corral-test/busybox:latest"
BENCH_LABEL = "corral-bench"
QUICK_SAMPLES = 15
FULL_SAMPLES = 100
WARMUP = 2
SETTLE_S = 0.2


def spec(name: str) -> TaskSpec:
    return TaskSpec(
        name=name,
        runtime="docker",
        image=IMAGE,
        command=("sleep", "60"),
        network="host",
        stop_grace=0.0,
    )


def _worker_main(conn: multiprocessing.connection.Connection, options: dict[str, Any]) -> None:
    asyncio.run(_worker(conn, options))


async def _worker(conn: multiprocessing.connection.Connection, options: dict[str, Any]) -> None:
    from worker.config import WorkerConfig
    from worker.server import serve

    try:
        running = await serve(WorkerConfig(**options))
    except Exception as err:
        conn.send(("error", f"worker did not start: {type(err).__name__}: {err}"))
        return
    conn.send(("ok", {"runtimes": sorted(running.runtimes)}))
    await spawning.serve_commands(conn, {"stop": lambda _: None})
    await running.stop(0.5)


@contextlib.asynccontextmanager
async def corral_cluster(data_dir: Path) -> AsyncIterator[Client]:
    """A manager process and a docker-only worker process; a client of the manager."""
    manager = await cluster.start_manager(data_dir / "manager")
    worker = spawning.spawn(
        _worker_main,
        {
            "manager": manager.target,
            "listen": "127.0.0.1:0",
            "data_dir": data_dir / "worker",
            "runtimes": ("docker",),
            "docker_network": "host",
        },
    )
    client = Client(manager.target)
    try:
        offered = await worker.answer(60)
        if "docker" not in offered["runtimes"]:
            raise RuntimeError("the worker does not offer the docker runtime (engine down?)")
        await wait_for_docker_node(client)
        yield client
    finally:
        await client.close()
        await worker.close(20)
        await manager.stop()


async def wait_for_docker_node(client: Client) -> None:
    deadline = time.monotonic() + 60
    while not any("docker" in n.runtimes for n in await client.list_nodes()):
        if time.monotonic() > deadline:
            raise RuntimeError("no worker offered the docker runtime within 60 s")
        await asyncio.sleep(0.1)


class RunningWatch:
    """One event stream; records when each task is first seen RUNNING or final."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._seen: dict[str, asyncio.Future[tuple[float, TaskState]]] = {}
        self._task = asyncio.create_task(self._follow())

    def expect(self, task_id: str) -> asyncio.Future[tuple[float, TaskState]]:
        return self._seen.setdefault(task_id, asyncio.get_running_loop().create_future())

    async def _follow(self) -> None:
        # From the first index: the manager is fresh, and a replay cannot miss what a
        # subscription racing the first submit would.
        async for event in self._client.watch_events(1, kinds=["task.state", "task.updated"]):
            task = event.task
            if task is None:
                continue
            state = task.status.state
            if state is TaskState.RUNNING or state.final:
                future = self.expect(task.id)
                if not future.done():
                    future.set_result((time.perf_counter(), state))

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def corral_sample(client: Client, watch: RunningWatch, engine: Any) -> float:
    task_id = f"bench-docker-{uuid.uuid4().hex[:12]}"
    seen = watch.expect(task_id)
    t0 = time.perf_counter()
    await client.submit(spec(task_id), id=task_id)
    at, state = await asyncio.wait_for(seen, 60)
    if state is not TaskState.RUNNING:
        task = await client.get_task(task_id)
        raise RuntimeError(f"task {task_id} ended {state.value}: {task.status.message}")
    elapsed = at - t0
    await client.stop_task(task_id, reason="benchmark sample taken")
    await wait_removed(engine, task_id)
    return elapsed


async def wait_removed(engine: Any, task_id: str) -> None:
    """Until the worker has stopped and removed the task's container."""
    deadline = time.monotonic() + 30
    label = {"label": f"corral.task-id={task_id}"}
    # Summaries only: listing objects would inspect each, racing the removal.
    while await asyncio.to_thread(engine.api.containers, all=True, filters=label):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the container of {task_id} was not removed within 30 s")
        await asyncio.sleep(0.05)


def bare_sample(engine: Any) -> float:
    t0 = time.perf_counter()
    container = engine.containers.run(
        IMAGE, ["sleep", "60"], detach=True, network_mode="host", labels={BENCH_LABEL: "bare"}
    )
    elapsed = time.perf_counter() - t0
    container.remove(force=True)
    return elapsed


def floor_sample(engine: Any) -> float:
    """The least the engine needs: create + start, no inspect (what Corral's worker calls)."""
    api = engine.api
    t0 = time.perf_counter()
    created = api.create_container(
        IMAGE,
        ["sleep", "60"],
        labels={BENCH_LABEL: "floor"},
        host_config=api.create_host_config(network_mode="host"),
    )
    api.start(created["Id"])
    elapsed = time.perf_counter() - t0
    api.remove_container(created["Id"], force=True)
    return elapsed


def remove_all(engine: Any, worker_dir: Path) -> None:
    """What a failed run may leave: bare containers, and the worker's (it leaves them running)."""
    for label in (BENCH_LABEL, f"corral.worker={worker_dir.resolve()}"):
        for summary in engine.api.containers(all=True, filters={"label": label}):
            with contextlib.suppress(docker.errors.NotFound):
                engine.api.remove_container(summary["Id"], force=True)


async def measure(samples: int) -> dict[str, Any]:
    engine = docker.from_env(timeout=60)
    try:
        engine.ping()
        engine.images.get(IMAGE)
    except docker.errors.DockerException as err:
        raise RuntimeError(f"needs a Docker engine with {IMAGE}: {err}") from err
    bare: list[float] = []
    corral: list[float] = []
    floor: list[float] = []
    with tempfile.TemporaryDirectory(prefix="corral-bench-docker-") as tmp:
        try:
            async with corral_cluster(Path(tmp)) as client:
                watch = RunningWatch(client)
                try:
                    takers: list[tuple[list[float], Callable[[], Awaitable[float]]]] = [
                        (bare, lambda: asyncio.to_thread(bare_sample, engine)),
                        (corral, lambda: corral_sample(client, watch, engine)),
                        (floor, lambda: asyncio.to_thread(floor_sample, engine)),
                    ]
                    for i in range(WARMUP + samples):
                        # Rotate who goes first: no path always follows the same neighbour.
                        for into, take in takers[i % 3 :] + takers[: i % 3]:
                            elapsed = await take()
                            if i >= WARMUP:
                                into.append(elapsed)
                            # The engine tears the last container down in the background:
                            # every path starts from the same quiet engine.
                            await asyncio.sleep(SETTLE_S)
                finally:
                    await watch.close()
        finally:
            await asyncio.to_thread(remove_all, engine, Path(tmp) / "worker")
            engine.close()
    figures = {
        **latency_figures("corral_running", corral),
        **latency_figures("bare_running", bare),
        **latency_figures("engine_floor", floor),
        # Per round, Corral minus the bare run taken next to it: the engine's drift cancels.
        "paired_overhead_p50_ms": ms(
            percentile([c - b for c, b in zip(corral, bare, strict=True)], 50)
        ),
    }
    overhead = ratio(figures["corral_running_p50_ms"], figures["bare_running_p50_ms"])
    return {
        "name": "docker",
        "params": {"samples": samples, "image": IMAGE, "network": "host", "cpus": os.cpu_count()},
        "figures": figures,
        "ratios": {
            "p50_overhead_ratio": overhead,
            "p99_overhead_ratio": ratio(
                figures["corral_running_p99_ms"], figures["bare_running_p99_ms"]
            ),
            # Against the engine's own minimum: what the control plane costs on top.
            "p50_over_floor_ratio": ratio(
                figures["corral_running_p50_ms"], figures["engine_floor_p50_ms"]
            ),
        },
        "goal": "submit -> RUNNING p50 through Corral within 10% of a bare docker run",
        "met": bool(overhead <= 1.10),
    }


async def run(quick: bool) -> dict[str, Any]:
    return await measure(QUICK_SAMPLES if quick else FULL_SAMPLES)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.docker_case", description=__doc__)
    parser.add_argument("--samples", type=int, default=QUICK_SAMPLES)
    args = parser.parse_args()
    harness.standalone(asyncio.run(measure(args.samples)))


if __name__ == "__main__":
    main()
