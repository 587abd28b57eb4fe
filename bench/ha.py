"""ha: three managers on one PostgreSQL; kill -9 the leader; time until a new one serves.

A throwaway PostgreSQL cluster on this machine (``bench.pgcluster``), three
``corral manager --store postgresql://...`` processes, 10,000 tasks stored.
Each repetition SIGKILLs the leader, then measures two things from the kill:
``serving`` (a standby answers its health check SERVING, polled every 20 ms)
and ``accepting`` (a client that lists all three managers gets a submit
acknowledged: the leader found, the state loaded, the write committed). The
killed manager is restarted as a standby before the next repetition.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import figures, harness, pgcluster
from corral.client import Client
from corral.model import TaskSpec
from corral.serving import channel

GOAL = "a new leader accepting submits within 3 s of the leader's kill -9, at p99"
LEASE = 4.0
SERVING = health_pb2.HealthCheckResponse.SERVING


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Managers:
    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url
        self.addresses = [f"127.0.0.1:{_free_port()}" for _ in range(3)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * 3

    def start(self, i: int) -> None:
        address = self.addresses[i]
        argv = [sys.executable, "-m", "corral.cli.main", "manager", "--listen", address]
        argv += ["--advertise", address, "--store", self.url, "--lease-duration", str(LEASE)]
        argv += ["--data-dir", str(self.root / f"m{i}")]
        with (self.root / f"manager{i}.log").open("ab") as log:
            self.procs[i] = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        assert proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    async def status(self, i: int) -> int | None:
        async with channel(self.addresses[i]) as ch:
            try:
                reply = await health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(), timeout=0.5
                )
            except Exception:
                return None
        return int(reply.status)

    async def serving(self, *, besides: int = -1, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = await asyncio.gather(*(self.status(i) for i in range(3)))
            for i, status in enumerate(found):
                if status == SERVING and i != besides:
                    return i
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no manager SERVING after {timeout:.0f} s")

    async def answering(self, i: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while await self.status(i) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"manager {i} does not answer")
            await asyncio.sleep(0.05)

    def close(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc is not None and proc.poll() is None:
                self.kill(i)


async def measure(*, repetitions: int, stored: int) -> dict[str, Any]:
    params = {"managers": 3, "repetitions": repetitions, "stored_tasks": stored, "lease_s": LEASE}
    if pgcluster.binaries() is None:
        return {"name": "ha", "params": params, "error": "PostgreSQL is not installed"}
    serving: list[float] = []
    accepting: list[float] = []
    with pgcluster.running() as pg, tempfile.TemporaryDirectory(prefix="corral-bench-ha-") as tmp:
        managers = Managers(Path(tmp), pg.create_database("ha"))
        try:
            for i in range(3):
                managers.start(i)
            await managers.serving()
            async with Client(",".join(managers.addresses), timeout=10, retries=20) as client:
                nowhere = {"zone": "nowhere"}  # stored, never placed
                for start in range(0, stored, 1000):
                    await client.submit_many(
                        (TaskSpec(name=f"b{i}", command=("true",), constraints=nowhere), f"b{i}")
                        for i in range(start, min(start + 1000, stored))
                    )
                for rep in range(repetitions):
                    leader = await managers.serving()
                    killed = time.monotonic()
                    managers.kill(leader)
                    spec = TaskSpec(name=f"after-{rep}", command=("true",), constraints=nowhere)
                    accept = asyncio.ensure_future(client.submit(spec, id=f"after-{rep}"))
                    await managers.serving(besides=leader)
                    serving.append(time.monotonic() - killed)
                    await accept
                    accepting.append(time.monotonic() - killed)
                    managers.start(leader)
                    await managers.answering(leader)
        finally:
            managers.close()
    return {
        "name": "ha",
        "params": params,
        "figures": {
            **figures.latency_figures("serving", serving),
            **figures.latency_figures("accepting", accepting),
        },
        "goal": GOAL,
        "met": figures.percentile(accepting, 99) <= 3.0,
    }


QUICK = {"repetitions": 10, "stored": 10_000}
FULL = {"repetitions": 30, "stored": 10_000}


async def run(quick: bool) -> dict[str, Any]:
    return await measure(**(QUICK if quick else FULL))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ha", description=__doc__)
    parser.add_argument("--repetitions", type=int, default=QUICK["repetitions"])
    parser.add_argument("--stored", type=int, default=QUICK["stored"])
    a = parser.parse_args()
    harness.standalone(asyncio.run(measure(repetitions=a.repetitions, stored=a.stored)))


if __name__ == "__main__":
    main()
