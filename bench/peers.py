"""peers: the same no-op workload through Corral, Celery 5 and Ray, in the same run.

Workload: ``tasks`` no-op tasks submitted at once and waited for (throughput),
then ``rtts`` sequential submit-and-wait round trips (latency).

- Corral: fake-runtime tasks (they run nothing) on 8 simulated workers;
  throughput = SubmitTasks batches → the manager reports none left active;
  round trip = SubmitTask → its COMPLETED event on WatchEvents.
- Celery 5: Redis broker and result backend (Debian's ``redis-server`` on a
  free 127.0.0.1 port), one worker with the threads pool (8 threads);
  ``noop.delay()`` then ``.get()``.
- Ray: ``ray.init(num_cpus=2)`` inside a private network namespace that has
  only loopback (Ray binds to external addresses otherwise), HOME and its
  temp dir in a scratch folder; ``ray.get(noop.remote())``.

Celery and Ray live in their own virtualenv, ``bench/peers/venv``, installed
from PyPI by this case on first use. A peer that cannot be installed or run is
reported under ``peer_errors`` with the reason, never silently dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import grpc

from bench import cluster, figures, harness
from bench.simworkers import Fleet
from corral.v1 import manager_pb2, types_pb2

GOAL = "Corral throughput >= 2x Celery's; Corral round trip p50 at or below both peers'"
HERE = Path(__file__).parent
VENV = HERE / "peers" / "venv"
APPS = HERE / "peer_apps"
REQUIREMENTS = ["celery[redis]>=5,<6", "ray>=2.9,<3"]
FINAL = {types_pb2.TASK_STATE_COMPLETED, types_pb2.TASK_STATE_FAILED}


# --- Corral ---


async def corral_noop(tasks: int, rtts: int) -> dict[str, Any]:
    async with cluster.manager() as m:
        fleet = await Fleet.start(m.target, workers=8, procs=1, cpu=256.0)
        try:
            async with grpc.aio.insecure_channel(m.target) as channel:
                client = cluster.stub(channel)
                warm = [f"w-{i}" for i in range(50)]
                await cluster.submit_batches(client, warm, batch=50)
                await cluster.wait_settled(client, timeout=30)
                names = [f"t-{i}" for i in range(tasks)]
                t0 = time.perf_counter()
                await cluster.submit_batches(client, names, batch=1000)
                await cluster.wait_settled(client, timeout=120, poll=0.005)
                throughput = tasks / (time.perf_counter() - t0)
                samples = await corral_round_trips(client, rtts)
        finally:
            await fleet.close()
    return {"tasks_per_s": throughput, "rtt_s": samples}


async def corral_round_trips(client: Any, count: int) -> list[float]:
    done: dict[str, asyncio.Future[float]] = {}
    watch = client.WatchEvents(manager_pb2.WatchEventsRequest(kinds=["task.state"]))
    loop = asyncio.get_running_loop()

    async def follow() -> None:
        async for response in watch:
            task = response.event.task
            if task.status.state in FINAL:
                future = done.setdefault(task.id, loop.create_future())
                if not future.done():
                    future.set_result(time.perf_counter())

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.2)
    samples = []
    try:
        for i in range(count):
            request = cluster.fake_task(f"r-{i}")
            request.id = str(uuid.uuid4())
            future = done.setdefault(request.id, loop.create_future())
            t0 = time.perf_counter()
            await client.SubmitTask(request, timeout=10)
            samples.append(await asyncio.wait_for(future, 10) - t0)
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await follower
    return samples


# --- the peers' virtualenv ---


def ensure_venv() -> Path:
    """Create ``bench/peers/venv`` with Celery and Ray unless it already has them."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".bench-requirements"
    wanted = "\n".join(REQUIREMENTS)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=120)
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS],
        capture_output=True,
        check=False,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(REQUIREMENTS)} failed: {done.stderr[-400:]}")
    stamp.write_text(wanted)
    return python


def result_line(output: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line.removeprefix("RESULT ")))
    raise RuntimeError(f"no result: {output.strip()[-400:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_binary() -> str:
    """Debian's redis-server, installed with apt-get when missing (package lists refreshed once
    if the first install finds nothing)."""
    found = shutil.which("redis-server")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "redis-server"]
    done = subprocess.run(
        install, capture_output=True, check=False, text=True, timeout=300, env=env
    )
    if done.returncode != 0:
        subprocess.run(
            ["apt-get", "update", "-q"], capture_output=True, check=False, timeout=300, env=env
        )
        done = subprocess.run(
            install, capture_output=True, check=False, text=True, timeout=300, env=env
        )
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError(f"redis-server is missing and apt-get failed: {done.stderr[-300:]}")
    return found


def wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")
        time.sleep(0.05)


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def celery_noop(python: Path, tasks: int, rtts: int) -> dict[str, Any]:
    redis = redis_binary()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="corral-bench-celery-") as tmp:
        server = subprocess.Popen(
            [redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        worker = None
        try:
            wait_port(port, 10)
            env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{port}/0", "HOME": tmp}
            worker = subprocess.Popen(
                [str(python), "-m", "celery", "-A", "celery_noop", "worker", "--pool", "threads",
                 "--concurrency", "8", "--loglevel", "warning", "--without-heartbeat",
                 "--without-gossip", "--without-mingle"],
                cwd=APPS,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            client = subprocess.run(
                [str(python), "celery_noop.py", str(tasks), str(rtts)],
                cwd=APPS,
                env=env,
                capture_output=True,
                check=False,
                text=True,
                timeout=300,
            )
            return result_line(client.stdout + client.stderr)
        finally:
            if worker is not None:
                stop(worker)
            stop(server)


def ray_noop(python: Path, tasks: int, rtts: int) -> dict[str, Any]:
    unshare = shutil.which("unshare")
    if unshare is None:
        raise RuntimeError("unshare (util-linux) is missing: Ray must run in a private netns")
    # A short path: Ray's unix sockets live under it and must stay under 107 bytes.
    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    try:
        script = 'ip link set lo up && exec "$@"'
        run = subprocess.run(
            [unshare, "--net", "sh", "-c", script, "sh", "env", f"HOME={tmp}",
             f"RAY_TMPDIR={tmp}", str(python), "ray_noop.py", str(tasks), str(rtts)],
            cwd=APPS,
            capture_output=True,
            check=False,
            text=True,
            timeout=300,
        )  # fmt: skip
        return result_line(run.stdout + run.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- the case ---


def summary(prefix: str, result: dict[str, Any]) -> dict[str, float]:
    rtt = result["rtt_s"]
    return {
        f"{prefix}_tasks_per_s": round(result["tasks_per_s"], 1),
        f"{prefix}_rtt_p50_ms": figures.ms(figures.percentile(rtt, 50)),
        f"{prefix}_rtt_p99_ms": figures.ms(figures.percentile(rtt, 99)),
    }


async def measure(*, tasks: int, rtts: int) -> dict[str, Any]:
    params = {
        "tasks": tasks,
        "round_trips": rtts,
        "corral": "fake runtime on 8 simulated workers, SubmitTasks batches of 1,000",
        "celery": "Redis broker+backend, 1 worker, threads pool x8",
        "ray": "ray.init(num_cpus=2) in a loopback-only netns",
    }
    corral = summary("corral", await corral_noop(tasks, rtts))
    peer: dict[str, float] = {}
    errors: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    try:
        python = await loop.run_in_executor(None, ensure_venv)
    except Exception as err:
        errors["celery"] = errors["ray"] = f"peers not installed: {err}"
    else:
        for name, runner in (("celery", celery_noop), ("ray", ray_noop)):
            try:
                peer.update(
                    summary(name, await loop.run_in_executor(None, runner, python, tasks, rtts))
                )
            except Exception as err:
                errors[name] = f"{type(err).__name__}: {err}"
    ratios = {
        "corral_over_celery_throughput": figures.ratio(
            corral["corral_tasks_per_s"], peer.get("celery_tasks_per_s", float("nan"))
        ),
        "corral_over_ray_throughput": figures.ratio(
            corral["corral_tasks_per_s"], peer.get("ray_tasks_per_s", float("nan"))
        ),
        "celery_over_corral_rtt_p50": figures.ratio(
            peer.get("celery_rtt_p50_ms", float("nan")), corral["corral_rtt_p50_ms"]
        ),
        "ray_over_corral_rtt_p50": figures.ratio(
            peer.get("ray_rtt_p50_ms", float("nan")), corral["corral_rtt_p50_ms"]
        ),
    }
    met = None
    if not errors:
        met = (
            ratios["corral_over_celery_throughput"] >= 2
            and ratios["celery_over_corral_rtt_p50"] >= 1
            and ratios["ray_over_corral_rtt_p50"] >= 1
        )
    result: dict[str, Any] = {
        "name": "peers",
        "params": params,
        "figures": corral,
        "peer_figures": peer,
        "ratios": ratios,
        "goal": GOAL,
        "met": met,
    }
    if errors:
        result["peer_errors"] = errors
    return result


QUICK = {"tasks": 2000, "rtts": 200}
FULL = {"tasks": 20000, "rtts": 1000}


async def run(quick: bool) -> dict[str, Any]:
    return await measure(**(QUICK if quick else FULL))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__)
    parser.add_argument("--tasks", type=int, default=QUICK["tasks"])
    parser.add_argument("--rtts", type=int, default=QUICK["rtts"])
    a = parser.parse_args()
    harness.standalone(asyncio.run(measure(tasks=a.tasks, rtts=a.rtts)))


if __name__ == "__main__":
    main()
