"""security: what mutual TLS and ACLs cost on dispatch.

The same workload twice, alternating, on fresh managers: ``plain`` (no TLS, no
ACLs) and ``secured`` (mutual TLS on every link, ACLs on, the client with a
submitter token and the simulated workers with a node token). A batch of fake
tasks is submitted with SubmitTasks to simulated workers (``bench.simworkers``)
that ack and run them; the figure is placements per second (submit start to the
last RUNNING written by a worker) and the manager's CPU seconds per 1,000
tasks. ``tls_acl_cost`` is ``1 - secured / plain`` of the median throughputs;
``tls_acl_cpu_cost`` is ``secured / plain - 1`` of the manager's median CPU per
task. The goal (at most 15%) is judged on the CPU cost: on a shared two-core
machine the wall-clock throughput of one round swings by a third with other
load, while CPU seconds per task is what TLS and ACLs actually add.

Standalone: ``python -m bench.security --tasks 10000 --workers 200 --rounds 3``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import cluster, harness
from bench.simworkers import Fleet
from corral import tls
from corral.serving import channel
from corral.tls import TlsFiles
from corral.v1 import acl_pb2, acl_pb2_grpc

GOAL = "TLS + ACLs add <= 15% to the manager's CPU per dispatched task"
MAX_COST = 0.15


async def tokens(target: str, files: TlsFiles | None) -> tuple[str, str]:
    """Bootstrap the manager's ACLs; a submitter token for the client, a node token."""
    async with channel(target, tls=files) as ch:
        acl = acl_pb2_grpc.AclServiceStub(ch)
        admin = (await acl.Bootstrap(acl_pb2.BootstrapRequest(), timeout=10)).token.secret
    async with channel(target, tls=files, token=admin) as ch:
        acl = acl_pb2_grpc.AclServiceStub(ch)
        made = []
        for name, role in (("bench-client", "submitter"), ("bench-nodes", "node")):
            request = acl_pb2.CreateTokenRequest(name=name, role=role)
            made.append((await acl.CreateToken(request, timeout=10)).token.secret)
    return made[0], made[1]


async def one_round(
    *, secured: bool, pki: dict[str, Path], workers: int, tasks: int, batch: int
) -> dict[str, float]:
    files = TlsFiles(pki["server"], pki["server_key"], pki["ca"]) if secured else None
    # A long TTL: on a loaded machine a simulated worker late with a heartbeat must not
    # turn into lost tasks (the case measures dispatch, not liveness).
    options: dict[str, Any] = {"strategy": "binpack", "ttl": 30.0}
    if files is not None:
        options.update(tls_cert=files.cert, tls_key=files.key, tls_ca=files.ca, acl=True)
    async with cluster.manager(**options) as m:
        client_token = node_token = ""
        if files is not None:
            client_token, node_token = await tokens(m.target, files)
        link = None
        if files is not None:
            link = {"tls": [str(files.cert), str(files.key), str(files.ca)], "token": node_token}
        fleet = await Fleet.start(
            m.target, workers=workers, procs=1, per_channel=10, cpu=max(2.0, tasks / workers),
            link=link,
        )  # fmt: skip
        try:
            async with channel(m.target, tls=files, token=client_token) as ch:
                stub = cluster.stub(ch)
                names = [f"s-{i}" for i in range(tasks)]
                cpu0 = m.cpu_seconds()
                started = time.time()
                await cluster.submit_batches(stub, names, batch=batch)
                await cluster.wait_settled(stub, timeout=300)
                cpu = m.cpu_seconds() - cpu0
            seen = await fleet.snapshot()
        finally:
            await fleet.close()
    running = [t[1] for t in seen["tasks"].values() if t[1]]
    if len(running) < tasks:
        raise RuntimeError(f"only {len(running)} of {tasks} tasks ran: {seen['errors'][:3]}")
    return {
        "placements_per_s": tasks / (max(running) - started),
        "manager_cpu_s_per_1000": cpu / tasks * 1000,
    }


async def measure(*, workers: int, tasks: int, batch: int, rounds: int) -> dict[str, Any]:
    params = {"workers": workers, "tasks": tasks, "batch": batch, "rounds": rounds}
    with tempfile.TemporaryDirectory(prefix="corral-bench-pki-") as tmp:
        pki = tls.init(Path(tmp), ["127.0.0.1"])
        runs: dict[str, list[dict[str, float]]] = {"plain": [], "secured": []}
        try:
            for _ in range(rounds):  # alternate, so load on the machine hits both alike
                for mode in ("plain", "secured"):
                    runs[mode].append(
                        await one_round(
                            secured=mode == "secured", pki=pki, workers=workers, tasks=tasks,
                            batch=batch,
                        )
                    )  # fmt: skip
        except RuntimeError as err:
            return {"name": "security", "params": params, "error": str(err), "goal": GOAL}

    def median(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[mode])

    plain, secured = median("plain", "placements_per_s"), median("secured", "placements_per_s")
    cost = 1 - secured / plain
    cpu_plain = median("plain", "manager_cpu_s_per_1000")
    cpu_cost = median("secured", "manager_cpu_s_per_1000") / cpu_plain - 1
    return {
        "name": "security",
        "params": params,
        "figures": {
            "plain_placements_per_s": round(plain),
            "secured_placements_per_s": round(secured),
            "plain_manager_cpu_s_per_1000": round(median("plain", "manager_cpu_s_per_1000"), 3),
            "secured_manager_cpu_s_per_1000": round(median("secured", "manager_cpu_s_per_1000"), 3),
        },
        "ratios": {"tls_acl_cost": round(cost, 3), "tls_acl_cpu_cost": round(cpu_cost, 3)},
        "rounds": runs,
        "goal": GOAL,
        "met": cpu_cost <= MAX_COST,
    }


QUICK = {"workers": 200, "tasks": 10_000, "batch": 2000, "rounds": 2}
FULL = {"workers": 1000, "tasks": 50_000, "batch": 2000, "rounds": 5}


async def run(quick: bool) -> dict[str, Any]:
    return await measure(**(QUICK if quick else FULL))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.security", description=__doc__)
    for key, value in QUICK.items():
        parser.add_argument(f"--{key}", type=int, default=value)
    a = parser.parse_args()
    harness.standalone(
        asyncio.run(measure(workers=a.workers, tasks=a.tasks, batch=a.batch, rounds=a.rounds))
    )


if __name__ == "__main__":
    main()
