"""Real manager and worker processes for the fault suite, and a copy counter.

Programs run as ``python -m corral.cli.main ...`` in their own sessions, with
the production timing (heartbeat 1 s, TTL 3 s) so that the figures are the
ones an operator gets. A worker can be killed with SIGKILL and started again
on its data dir; one can run inside a network namespace (``prefix``).

``Copies`` counts each task's copies from outside, as an operator would: the
processes whose argv is exactly the task's own (``sleep <unique number>``),
read from ``/proc`` every 100 ms in a thread of its own, so the count does not
depend on the event loop of the test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from waiting import eventually

from corral.client import Client, wait_healthy
from corral.model import Node, NodeStatus, RestartMode, RestartPolicy, TaskSpec

HEARTBEAT = 1.0
TTL = 3.0
SAMPLE_EVERY = 0.1

# What the suite measured, printed by conftest's terminal summary.
FIGURES: list[tuple[str, str]] = []


class Figures:
    def add(self, name: str, value: object) -> None:
        FIGURES.append((name, str(value)))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Proc:
    def __init__(self, name: str, args: list[str], log: Path, prefix: Sequence[str] = ()) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                [*prefix, sys.executable, "-m", "corral.cli.main", *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL the program alone: what it started in other sessions lives on."""
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Fleet:
    root: Path
    manager_address: str
    procs: list[Proc] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)

    def start_manager(self, *extra: str) -> Proc:
        args = ["manager", "--listen", self.manager_address, "--data-dir", str(self.root / "m")]
        args += ["--heartbeat-interval", str(HEARTBEAT), "--ttl", str(TTL), *extra]
        return self._start("manager", args)

    def start_worker(
        self,
        name: str,
        *extra: str,
        listen: str = "127.0.0.1:0",
        prefix: Sequence[str] = (),
        runtimes: str = "process",
    ) -> Proc:
        args = ["worker", "--manager", self.manager_address, "--name", name, "--listen", listen]
        args += ["--data-dir", str(self.root / name), "--runtimes", runtimes]
        args += ["--reconnect-initial", "0.1", "--reconnect-max", "0.5", *extra]
        return self._start(name, args, prefix)

    def start_gateway(self, port: int) -> Proc:
        args = ["gateway", "--manager", self.manager_address, "--listen", f"127.0.0.1:{port}"]
        return self._start("gateway", args)

    def _start(self, name: str, args: list[str], prefix: Sequence[str] = ()) -> Proc:
        proc = Proc(name, args, self.root / f"{name}.log", prefix)
        self.procs.append(proc)
        return proc

    async def ready(self, proc: Proc) -> None:
        if not await wait_healthy(self.manager_address, timeout=60):
            raise AssertionError(f"manager not healthy:\n{proc.output()}")

    async def node(self, client: Client, name: str, status: NodeStatus = NodeStatus.READY) -> Node:
        async def found() -> Node | None:
            for node in await client.list_nodes():
                if node.name == name and node.status is status:
                    return node
            return None

        return await eventually(
            found, timeout=60, interval=0.05, what=f"node {name} {status.value}"
        )

    def sleeper(self, name: str) -> TaskSpec:
        """A long task whose argv is its own: ``sleep 86400.<unique>``."""
        marker = f"86400.{uuid.uuid4().int % 10**9:09d}"
        self.markers.append(marker)
        return TaskSpec(
            name=name,
            command=("sleep", marker),
            restart_policy=RestartPolicy(mode=RestartMode.ALWAYS, backoff=0.1),
        )

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        for pid in pids_by_argv(self.markers).values():
            for p in pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)


def pids_by_argv(markers: Sequence[str]) -> dict[str, list[int]]:
    """The pids of ``sleep <marker>`` per marker, read from /proc."""
    wanted = {f"sleep\0{m}\0".encode(): m for m in markers}
    found: dict[str, list[int]] = {m: [] for m in markers}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                argv = f.read()
        except OSError:
            continue
        marker = wanted.get(argv)
        if marker is not None:
            found[marker].append(int(entry.name))
    return found


class Copies:
    """Samples every task's copies every 100 ms until stopped."""

    def __init__(self, markers: Sequence[str]) -> None:
        self.markers = list(markers)
        self.samples = 0
        self.duplicates: list[tuple[float, str, list[int]]] = []
        # Per marker: (time.monotonic() of the sample, its pids), the latest first seen.
        self.latest: dict[str, tuple[float, list[int]]] = {}
        self.history: dict[str, list[tuple[float, tuple[int, ...]]]] = {m: [] for m in markers}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="copies", daemon=True)

    def __enter__(self) -> Copies:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            at = time.monotonic()
            found = pids_by_argv(self.markers)
            for marker, pids in found.items():
                if len(pids) > 1:
                    self.duplicates.append((at, marker, pids))
                history = self.history[marker]
                if not history or history[-1][1] != tuple(pids):
                    history.append((at, tuple(sorted(pids))))
            self.samples += 1
            self._stop.wait(max(0.0, SAMPLE_EVERY - (time.monotonic() - at)))

    def running_again_after(self, marker: str, since: float, old: Sequence[int]) -> float | None:
        """Seconds from ``since`` to the first sample showing a new copy of ``marker``."""
        for at, pids in self.history[marker]:
            if at >= since and pids and not set(pids) & set(old):
                return at - since
        return None

    def current(self, marker: str) -> tuple[int, ...]:
        history = self.history[marker]
        return history[-1][1] if history else ()


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]
