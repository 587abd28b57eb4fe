"""A 30 s network partition of a worker (Nomad's ``disconnectedclients``, Kubernetes'
``network_partition``), made with a network namespace and a veth pair that the
test creates and removes; all traffic stays on them.

The manager listens on the host end of the pair; worker ``p1`` runs inside the
namespace, ``h1`` on the host. Tasks start on p1, then the host end goes down
for 30 s: p1's attempts must stop (lease) before the manager replaces them on
h1, no 100 ms sample may show two copies, and once the link is back exactly one
copy of each task runs within 1 s of the heal while p1 rejoins.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fleet import TTL, Copies, Figures, Fleet, free_port
from waiting import eventually

from corral.client import Client
from corral.model import NodeStatus, Task, TaskState

TASKS = 5
PARTITION = 30.0


@dataclass(frozen=True)
class Netns:
    name: str
    host_if: str
    host_ip: str
    ns_ip: str

    def exec(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def link(self, state: str) -> None:
        ip("link", "set", self.host_if, state)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def netns() -> Iterator[Netns]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        if os.environ.get("CI"):
            pytest.fail("the partition test needs root and iproute2 in CI")
        pytest.skip("needs root and iproute2 (ip netns)")
    tag = f"{random.randrange(16**6):06x}"
    subnet = f"10.254.{random.randrange(256)}"
    ns = Netns(f"cfp{tag}", f"cfh{tag}", f"{subnet}.1", f"{subnet}.2")
    ip("netns", "add", ns.name)
    try:
        ip("link", "add", ns.host_if, "type", "veth", "peer", "name", f"cfn{tag}")
        ip("link", "set", f"cfn{tag}", "netns", ns.name)
        ip("addr", "add", f"{ns.host_ip}/30", "dev", ns.host_if)
        ip("link", "set", ns.host_if, "up")
        inside = ["-n", ns.name]
        ip(*inside, "addr", "add", f"{ns.ns_ip}/30", "dev", f"cfn{tag}")
        ip(*inside, "link", "set", f"cfn{tag}", "up")
        ip(*inside, "link", "set", "lo", "up")
        yield ns
    finally:
        for argv in (["link", "del", ns.host_if], ["netns", "del", ns.name]):
            subprocess.run(["ip", *argv], check=False, capture_output=True, timeout=30)


async def test_a_partitioned_worker_stops_its_copies_before_they_are_replaced(
    tmp_path: Path, netns: Netns, figures: Figures
) -> None:
    fleet = Fleet(tmp_path, f"{netns.host_ip}:{free_port(netns.host_ip)}")
    try:
        await _run(fleet, netns, figures)
    finally:
        netns.link("up")
        fleet.close()


async def _run(fleet: Fleet, netns: Netns, figures: Figures) -> None:
    # Plain gRPC on the veth addresses: the test owns both ends of the pair.
    manager = fleet.start_manager("--insecure")
    await fleet.ready(manager)
    fleet.start_worker("p1", "--insecure", listen=f"{netns.ns_ip}:0", prefix=netns.exec())
    async with Client(fleet.manager_address) as client:
        inside = await fleet.node(client, "p1")
        specs = [fleet.sleeper(f"cut-{i}") for i in range(TASKS)]
        markers = [s.command[1] for s in specs]
        tasks = [await client.submit(s) for s in specs]
        await _until(lambda: _all(client, tasks, lambda t: t.status.state is TaskState.RUNNING))
        fleet.start_worker("h1")
        await fleet.node(client, "h1")
        with Copies(markers) as copies:
            await _until(lambda: all(len(copies.current(m)) == 1 for m in markers))
            old = {m: copies.current(m) for m in markers}
            netns.link("down")
            cut_at = time.monotonic()
            await _until(
                lambda: _all(
                    client,
                    tasks,
                    lambda t: t.status.node_id != inside.id and t.status.state is TaskState.RUNNING,
                ),
                timeout=4 * TTL,
            )
            # The manager may say RUNNING a moment before the next /proc sample sees the
            # replacement: wait for the samples, then read them.
            await _until(
                lambda: all(
                    copies.running_again_after(m, cut_at, old[m]) is not None for m in markers
                ),
                timeout=4 * TTL,
            )
            moved = [copies.running_again_after(m, cut_at, old[m]) for m in markers]
            stopped = [_gone_after(copies, m, cut_at, old[m]) for m in markers]
            await asyncio.sleep(max(0.0, cut_at + PARTITION - time.monotonic()))
            netns.link("up")
            healed_at = time.monotonic()
            await asyncio.sleep(1.0)
            one_copy = [len(copies.current(m)) for m in markers]
            back = await fleet.node(client, "p1")
            rejoined = time.monotonic() - healed_at
            await asyncio.sleep(2.0)  # a few more samples after the node is back
        figures.add("partition: tasks / length (s)", f"{TASKS} / {PARTITION:g}")
        figures.add("partition: samples / with two copies", f"{copies.samples} / "
                    f"{len(copies.duplicates)}")  # fmt: skip
        figures.add("partition: old copies stopped after (s)", _span(stopped))
        figures.add("partition: replacements running after (s)", _span(moved))
        figures.add("partition: copies 1 s after the heal", one_copy)
        figures.add("partition: node back after the heal (s)", f"{rejoined:.2f}")
        assert copies.duplicates == [], copies.duplicates[:5]
        assert all(
            s is not None and m is not None and s < m for s, m in zip(stopped, moved, strict=True)
        )
        assert all(m is not None and m <= TTL + 1.0 for m in moved), moved
        assert one_copy == [1] * TASKS
        assert back.id == inside.id and back.status is NodeStatus.READY


async def _all(client: Client, tasks: list[Task], ok: Callable[[Task], bool]) -> bool:
    return all([ok(await client.get_task(t.id)) for t in tasks])


async def _until(check: Callable[[], object], timeout: float = 60.0) -> None:
    await eventually(check, timeout=timeout, interval=0.1)


def _gone_after(copies: Copies, marker: str, since: float, old: tuple[int, ...]) -> float | None:
    for at, pids in copies.history[marker]:
        if at >= since and not set(pids) & set(old):
            return at - since
    return None


def _span(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "none"
    return f"min {min(known):.2f} max {max(known):.2f}"
