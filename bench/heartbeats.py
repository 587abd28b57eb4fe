"""heartbeats: thousands of idle simulated workers heartbeating at 1 Hz.

For each fleet size a fresh manager (TTL 3 s) takes the fleet, then over a
steady window the bench records the manager's CPU share (psutil, its own
process only), every ``node.down`` event (a false DOWN: every worker is alive),
and the heartbeat handling latency: ListNodes is sampled a few times, and
each node's ``last_heartbeat`` (stamped by the manager when it handled one) is
matched with the latest heartbeat that worker sent before it.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import time
from typing import Any

import grpc

from bench import cluster, figures, harness
from bench.simworkers import Fleet
from corral.v1 import manager_pb2

GOAL = "5,000 workers at 1 Hz within 50% of a core, zero false DOWN"


async def one_size(workers: int, *, seconds: float, samples: int) -> dict[str, float]:
    async with cluster.manager(ttl=3.0, heartbeat_interval=1.0) as m:
        started = time.monotonic()
        fleet = await Fleet.start(m.target, workers=workers, procs=2, timeout=120)
        connect_s = time.monotonic() - started
        try:
            async with grpc.aio.insecure_channel(m.target) as channel:
                client = cluster.stub(channel)
                downs: list[str] = []
                watch = client.WatchEvents(manager_pb2.WatchEventsRequest(kinds=["node.down"]))

                async def follow() -> None:
                    async for response in watch:
                        if response.event.kind == "node.down":
                            downs.append(response.event.node.id)

                follower = asyncio.create_task(follow())
                await asyncio.sleep(2.0)  # every worker has started heartbeating
                joining = await fleet.snapshot(reset=True)
                cpu0, t0 = m.cpu_seconds(), time.monotonic()
                seen: list[tuple[str, float]] = []
                for _ in range(samples):
                    await asyncio.sleep(seconds / samples)
                    nodes = await client.ListNodes(manager_pb2.ListNodesRequest(), timeout=30)
                    for node in nodes.nodes:
                        hb = node.last_heartbeat
                        seen.append((node.id, hb.seconds + hb.nanos / 1e9))
                elapsed = time.monotonic() - t0
                cpu_share = (m.cpu_seconds() - cpu0) / elapsed
                rss = m.rss_bytes()
                final = await client.ListNodes(manager_pb2.ListNodesRequest(), timeout=30)
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                    await follower
            sent = await fleet.snapshot()
        finally:
            await fleet.close()
    latencies = handling_latencies(sent["heartbeats"], seen)
    beats = sum(len(v) for v in sent["heartbeats"].values())
    not_ready = sum(1 for n in final.nodes if n.status != 1)
    return {
        "manager_cpu_share": round(cpu_share, 3),
        "heartbeats_per_s": round(beats / elapsed),
        "hb_handling_p50_ms": figures.ms(figures.percentile(latencies, 50)),
        "hb_handling_p99_ms": figures.ms(figures.percentile(latencies, 99)),
        "false_down": len(downs),
        "not_ready_at_end": not_ready,
        "connect_all_s": round(connect_s, 2),
        "connects_refused": sum(" connect " in e for e in joining["errors"]),
        "reconnects_in_window": sent["reconnects"],
        "manager_rss_mb": round(rss / 2**20, 1),
        "stream_errors": len(sent["errors"]),
    }


def handling_latencies(sent: dict[str, list[float]], seen: list[tuple[str, float]]) -> list[float]:
    """Per sample: the manager's handling time minus the worker's latest send before it."""
    out = []
    for node_id, handled in seen:
        times = sent.get(node_id) or []
        i = bisect.bisect_right(times, handled)
        if i:
            out.append(handled - times[i - 1])
    return out


async def measure(*, sizes: list[int], seconds: float, samples: int) -> dict[str, Any]:
    params = {
        "workers": sizes,
        "window_s": seconds,
        "heartbeat_interval_s": 1.0,
        "ttl_s": 3.0,
        "list_nodes_samples": samples,
    }
    out: dict[str, float] = {}
    for size in sizes:
        for key, value in (await one_size(size, seconds=seconds, samples=samples)).items():
            out[f"{key}_at_{size}"] = value
    biggest = max(sizes)
    share = out[f"manager_cpu_share_at_{biggest}"]
    downs = sum(out[f"false_down_at_{s}"] for s in sizes)
    return {
        "name": "heartbeats",
        "params": params,
        "figures": out,
        "ratios": {
            f"cpu_share_per_1000_workers_at_{s}": figures.ratio(
                out[f"manager_cpu_share_at_{s}"], s / 1000
            )
            for s in sizes
        },
        "goal": GOAL,
        "met": (share <= 0.5 and downs == 0) if biggest >= 5000 else None,
    }


QUICK = {"sizes": [1000, 5000], "seconds": 15.0}
FULL = {"sizes": [1000, 5000], "seconds": 60.0}


async def run(quick: bool) -> dict[str, Any]:
    return await measure(**(QUICK if quick else FULL), samples=3)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.heartbeats", description=__doc__)
    parser.add_argument("--workers", default="1000,5000", help="fleet sizes, comma-separated")
    parser.add_argument("--seconds", type=float, default=QUICK["seconds"])
    parser.add_argument("--samples", type=int, default=3)
    a = parser.parse_args()
    sizes = [int(x) for x in a.workers.split(",") if x]
    harness.standalone(asyncio.run(measure(sizes=sizes, seconds=a.seconds, samples=a.samples)))


if __name__ == "__main__":
    main()
