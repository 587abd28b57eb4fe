"""A manager in its own process, and the client calls the cases share.

The manager runs in a ``spawn``-ed child so its CPU share (psutil on its pid)
and memory are its own, never mixed with the simulated workers' or the
measuring client's.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing.connection
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psutil
from google.protobuf import duration_pb2

from bench import spawning
from corral.v1 import manager_pb2, manager_pb2_grpc, types_pb2

ACTIVE = [
    types_pb2.TASK_STATE_PENDING,
    types_pb2.TASK_STATE_SCHEDULED,
    types_pb2.TASK_STATE_RUNNING,
]


def _manager_main(conn: multiprocessing.connection.Connection, options: dict[str, Any]) -> None:
    from corral import loops

    loops.run(_manager(conn, options))  # the loop `corral manager` runs on


async def _manager(conn: multiprocessing.connection.Connection, options: dict[str, Any]) -> None:
    from manager.config import ManagerConfig
    from manager.server import serve, tune_process

    started = time.monotonic()
    tune_process()  # as `corral manager` does
    if os.environ.get("BENCH_SERVER_OPTIONS"):  # experiments: extra grpc server options
        from corral import serving

        serving.SERVER_OPTIONS.extend(json.loads(os.environ["BENCH_SERVER_OPTIONS"]))
    try:
        # The core alone: jobs, schedules and environments take no part in these workloads.
        running = await serve(ManagerConfig(listen="127.0.0.1:0", **options), extension_modules=[])
        led = getattr(running, "led", None)  # on PostgreSQL: serving once it leads
        if led is not None:
            await asyncio.wait_for(led.wait(), 60)
    except Exception as err:
        conn.send(("error", f"manager did not start: {type(err).__name__}: {err}"))
        return
    conn.send(("ok", {"port": running.port, "ready_s": time.monotonic() - started}))
    await spawning.serve_commands(conn, {"stop": lambda _: None})
    await running.stop(0.5)


@dataclass
class ManagerProcess:
    child: spawning.Child
    port: int
    data_dir: Path
    # From the child's first line to serving, measured inside the child.
    ready_s: float
    profiler: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.child.pid

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def rss_bytes(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    async def stop(self) -> None:
        if self.profiler is not None:
            self.profiler.send_signal(signal.SIGINT)
            await asyncio.get_running_loop().run_in_executor(None, self.profiler.wait, 30)
        await self.child.close(20)


async def start_manager(data_dir: Path, **options: Any) -> ManagerProcess:
    """Start a manager on a free 127.0.0.1 port; ``options`` are ManagerConfig fields."""
    child = spawning.spawn(_manager_main, {"data_dir": data_dir, **options})
    try:
        info = await child.answer(120)
    except BaseException:
        child.kill()
        raise
    return ManagerProcess(
        child, int(info["port"]), data_dir, float(info["ready_s"]), profile(child.pid)
    )


@asynccontextmanager
async def manager(**options: Any) -> AsyncIterator[ManagerProcess]:
    """A manager over a fresh data dir, stopped (and its dir removed) afterwards."""
    with tempfile.TemporaryDirectory(prefix="corral-bench-manager-") as tmp:
        process = await start_manager(Path(tmp), **options)
        try:
            yield process
        finally:
            await process.stop()


def profile(pid: int, label: str = "manager") -> subprocess.Popen[bytes] | None:
    """With ``BENCH_PROFILE=DIR``, py-spy samples the process for its whole life.

    It leaves collapsed stacks in ``DIR/<label>-<pid>.txt``;
    ``python -m bench.profiles DIR/*.txt`` summarizes them.
    """
    folder = os.environ.get("BENCH_PROFILE")
    if not folder:
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen(
        [
            str(spy),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(Path(folder) / f"{label}-{pid}.txt"),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stub(channel: grpc.aio.Channel) -> manager_pb2_grpc.ManagerServiceStub:
    return manager_pb2_grpc.ManagerServiceStub(channel)


def fake_task(
    name: str,
    *,
    duration: float = 0.0,
    cpu: float = 0.1,
    exit_code: int = 0,
    failure_rate: float = 0.0,
) -> manager_pb2.SubmitTaskRequest:
    """A ``fake``-runtime task: the simulated worker "runs" it for ``duration`` seconds."""
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(duration * 1e9))
    return manager_pb2.SubmitTaskRequest(
        spec=types_pb2.TaskSpec(
            name=name,
            runtime="fake",
            resources=types_pb2.Resources(cpu=cpu),
            fake=types_pb2.FakeSpec(duration=d, exit_code=exit_code, failure_rate=failure_rate),
        )
    )


async def submit_batches(
    client: manager_pb2_grpc.ManagerServiceStub,
    names: Sequence[str],
    *,
    batch: int,
    in_flight: int = 2,
    duration: float = 0.0,
    cpu: float = 0.1,
    failure_rate: float = 0.0,
) -> list[str]:
    """Submit fake tasks in SubmitTasks batches (``in_flight`` at a time); returns ids."""
    chunks = [names[i : i + batch] for i in range(0, len(names), batch)]
    ids: list[list[str]] = [[] for _ in chunks]
    gate = asyncio.Semaphore(in_flight)

    async def send(i: int, chunk: Sequence[str]) -> None:
        request = manager_pb2.SubmitTasksRequest(
            tasks=[
                fake_task(n, duration=duration, cpu=cpu, failure_rate=failure_rate) for n in chunk
            ]
        )
        async with gate:
            response = await client.SubmitTasks(request, timeout=120)
        ids[i] = [t.id for t in response.tasks]

    await asyncio.gather(*(send(i, c) for i, c in enumerate(chunks)))
    return [task_id for part in ids for task_id in part]


async def wait_settled(
    client: manager_pb2_grpc.ManagerServiceStub, *, timeout: float, poll: float = 0.02
) -> float:
    """Poll until no task is PENDING, SCHEDULED or RUNNING; returns the wall-clock time then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = await client.ListTasks(
            manager_pb2.ListTasksRequest(states=ACTIVE, page_size=1), timeout=30
        )
        if not page.tasks:
            return time.time()
        await asyncio.sleep(poll)
    raise TimeoutError(f"tasks still active after {timeout:.0f} s")


async def count_states(client: manager_pb2_grpc.ManagerServiceStub) -> dict[str, int]:
    """Every stored task's state, counted by paging through ListTasks (not timed)."""
    counts: dict[str, int] = {}
    token = ""
    while True:
        page = await client.ListTasks(
            manager_pb2.ListTasksRequest(page_size=1000, page_token=token), timeout=60
        )
        for task in page.tasks:
            name = types_pb2.TaskState.Name(task.status.state).removeprefix("TASK_STATE_").lower()
            counts[name] = counts.get(name, 0) + 1
        token = page.next_page_token
        if not token:
            return counts


def _worker_main(conn: multiprocessing.connection.Connection, options: dict[str, Any]) -> None:
    from corral import loops

    loops.run(_worker(conn, options))  # the loop `corral worker` runs on


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


async def start_worker(manager_target: str, data_dir: Path, **options: Any) -> spawning.Child:
    """A real worker (``worker.server.serve``) in its own process; ``options`` are WorkerConfig
    fields. Returns once it serves; wait for its node to be READY before placing work."""
    child = spawning.spawn(
        _worker_main,
        {"manager": manager_target, "listen": "127.0.0.1:0", "data_dir": data_dir, **options},
    )
    try:
        await child.answer(60)
    except BaseException:
        child.kill()
        raise
    return child


async def wait_nodes(
    client: manager_pb2_grpc.ManagerServiceStub, count: int, timeout: float
) -> None:
    """Wait until ``count`` nodes are READY."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = await client.ListNodes(manager_pb2.ListNodesRequest(), timeout=10)
        if sum(n.status == types_pb2.NODE_STATUS_READY for n in nodes.nodes) >= count:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} nodes not READY after {timeout:.0f} s")
        await asyncio.sleep(0.05)
