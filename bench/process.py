"""process: submit → RUNNING of ``/bin/true`` on the real process runtime vs a bare spawn.

Corral's path: a SubmitTask over gRPC to the manager (its own process), which
stores and places the task and assigns it on the stream of a real worker (its
own process, process runtime only); the worker spawns ``/bin/true`` and reports
RUNNING; the clock stops when the client reads that RUNNING event on
WatchEvents. The bare path is ``asyncio.create_subprocess_exec("/bin/true")``
returning in the measuring process. Samples alternate so a slow moment of the
machine lands on both; the figure that matters is the p50 difference.

The manager's own timestamps in the published status split Corral's path
into phases (p50 each): the SubmitTask call, sent → created (the manager
accepted it), created → scheduled (placement), scheduled → started (assign on
the stream, the worker spawns and reports; ``started_at`` is the worker's
time), started → seen (the manager commits RUNNING and the event reaches the
client).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import grpc

from bench import cluster, figures, harness
from corral.v1 import manager_pb2, types_pb2

GOAL = "p50 overhead over a bare asyncio spawn <= 3 ms"
FINAL = {
    types_pb2.TASK_STATE_COMPLETED,
    types_pb2.TASK_STATE_FAILED,
    types_pb2.TASK_STATE_STOPPED,
}


def wall(ts: Any) -> float:
    return float(ts.seconds + ts.nanos / 1e9)


class Watch:
    """First RUNNING (or final, if RUNNING was never published) time per task id.

    Each result carries the task's status as published, so the manager's own
    timestamps split the round trip into phases.
    """

    def __init__(self, client: Any) -> None:
        self.seen: dict[str, asyncio.Future[tuple[float, int, Any]]] = {}
        self._call = client.WatchEvents(manager_pb2.WatchEventsRequest(kinds=["task.state"]))
        self._task = asyncio.create_task(self._follow())

    def expect(self, task_id: str) -> asyncio.Future[tuple[float, int, Any]]:
        return self.seen.setdefault(task_id, asyncio.get_running_loop().create_future())

    async def _follow(self) -> None:
        async for response in self._call:
            task = response.event.task
            state = task.status.state
            if state == types_pb2.TASK_STATE_RUNNING or state in FINAL:
                future = self.expect(task.id)
                if not future.done():
                    future.set_result((time.perf_counter(), state, (time.time(), task.status)))

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await self._task


async def corral_sample(
    client: Any, watch: Watch, n: int, phases: dict[str, list[float]]
) -> tuple[float, bool]:
    task_id = str(uuid.uuid4())
    seen = watch.expect(task_id)
    request = manager_pb2.SubmitTaskRequest(
        id=task_id,
        spec=types_pb2.TaskSpec(name=f"p-{n}", runtime="process", command=["/bin/true"]),
    )
    sent = time.time()
    t0 = time.perf_counter()
    await client.SubmitTask(request, timeout=30)
    phases["submit_call"].append(time.perf_counter() - t0)
    at, state, (seen_wall, status) = await asyncio.wait_for(seen, 30)
    if state == types_pb2.TASK_STATE_RUNNING:
        created, scheduled = wall(status.created_at), wall(status.scheduled_at)
        started = wall(status.started_at)
        phases["sent_to_created"].append(created - sent)
        phases["created_to_scheduled"].append(scheduled - created)
        phases["scheduled_to_started"].append(started - scheduled)
        phases["started_to_seen"].append(seen_wall - started)
    return at - t0, state == types_pb2.TASK_STATE_RUNNING


async def bare_sample() -> float:
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec("/bin/true")
    elapsed = time.perf_counter() - t0
    await proc.wait()
    return elapsed


async def measure(*, samples: int) -> dict[str, Any]:
    params = {"samples": samples, "command": "/bin/true", "warmup": 5}
    corral: list[float] = []
    bare: list[float] = []
    skipped_running = 0
    phases: dict[str, list[float]] = {
        "submit_call": [],
        "sent_to_created": [],
        "created_to_scheduled": [],
        "scheduled_to_started": [],
        "started_to_seen": [],
    }
    with tempfile.TemporaryDirectory(prefix="corral-bench-process-") as tmp:
        m = await cluster.start_manager(Path(tmp) / "manager")
        worker = None
        profiler = None
        try:
            worker = await cluster.start_worker(
                m.target, Path(tmp) / "worker", runtimes=("process",)
            )
            profiler = cluster.profile(worker.pid, "worker")
            async with grpc.aio.insecure_channel(m.target) as channel:
                client = cluster.stub(channel)
                await cluster.wait_nodes(client, 1, 30)
                watch = Watch(client)
                await asyncio.sleep(0.2)
                try:
                    for n in range(samples + 5):
                        if n == 5:
                            for values in phases.values():
                                values.clear()
                        elapsed, was_running = await corral_sample(client, watch, n, phases)
                        spawn = await bare_sample()
                        if n >= 5:
                            corral.append(elapsed)
                            bare.append(spawn)
                            skipped_running += not was_running
                        await cluster.wait_settled(client, timeout=30, poll=0.005)
                finally:
                    await watch.close()
        finally:
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                await asyncio.get_running_loop().run_in_executor(None, profiler.wait, 30)
            if worker is not None:
                await worker.close(20)
            await m.stop()
    overhead = figures.percentile(corral, 50) - figures.percentile(bare, 50)
    return {
        "name": "process",
        "params": params,
        "figures": {
            **figures.latency_figures("corral_running", corral),
            **figures.latency_figures("bare_spawn", bare),
            "overhead_p50_ms": figures.ms(overhead),
            **{
                f"phase_{name}_p50_ms": figures.ms(figures.percentile(values, 50))
                for name, values in phases.items()
            },
            "running_never_published": skipped_running,
        },
        "ratios": {
            "corral_over_bare_p50": figures.ratio(
                figures.percentile(corral, 50), figures.percentile(bare, 50)
            )
        },
        "goal": GOAL,
        "met": overhead * 1000 <= 3,
    }


async def run(quick: bool) -> dict[str, Any]:
    return await measure(samples=40 if quick else 300)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.process", description=__doc__)
    parser.add_argument("--samples", type=int, default=40)
    a = parser.parse_args()
    harness.standalone(asyncio.run(measure(samples=a.samples)))


if __name__ == "__main__":
    main()
