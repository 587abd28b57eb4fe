"""Real ``corral manager`` and ``corral worker`` processes for cluster tests.

Each program runs as ``python -m corral.cli.main ...`` in its own session (so
a SIGKILL of its group takes everything it started in it) with its output in a
file under the test's tmp dir, printed when a wait fails. Ports are free ones
on 127.0.0.1; heartbeats are short so liveness tests take seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from conftest import free_port

from corral.client import Client, wait_healthy
from corral.model import Node, NodeStatus

HEARTBEAT = 0.2
TTL = 1.0


class Proc:
    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name = name
        self.args = args
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "corral.cli.main", *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole group, as a crash or an OOM kill would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout: float = 10.0) -> int:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        return self.popen.wait(10)


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.manager_port = free_port()
        self.target = f"127.0.0.1:{self.manager_port}"
        self.procs: list[Proc] = []
        # argv markers of task processes, killed at the end (a SIGKILLed worker orphans them).
        self.markers: list[str] = []

    def start_manager(self, *extra: str) -> Proc:
        args = ["manager", "--listen", self.target, "--data-dir", str(self.root / "manager")]
        args += ["--heartbeat-interval", str(HEARTBEAT), "--ttl", str(TTL), *extra]
        return self._start("manager", args)

    def start_worker(self, name: str, *extra: str) -> Proc:
        args = ["worker", "--manager", self.target, "--name", name]
        args += ["--listen", f"127.0.0.1:{free_port()}", "--data-dir", str(self.root / name)]
        args += ["--reconnect-initial", "0.1", "--reconnect-max", "0.5", *extra]
        return self._start(name, args)

    def _start(self, name: str, args: list[str]) -> Proc:
        proc = Proc(name, args, self.root / f"{name}.log")
        self.procs.append(proc)
        return proc

    async def manager_ready(self, proc: Proc, timeout: float = 30.0) -> None:
        if not await wait_healthy(self.target, timeout=timeout):
            raise AssertionError(f"manager not healthy:\n{proc.output()}")

    async def node(
        self, client: Client, name: str, *, status: NodeStatus = NodeStatus.READY,
        timeout: float = 30.0, proc: Proc | None = None,
    ) -> Node:  # fmt: skip
        """Wait until the node called ``name`` has ``status``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in await client.list_nodes():
                if node.name == name and node.status is status:
                    return node
            await asyncio.sleep(0.05)
        logs = proc.output() if proc is not None else ""
        raise AssertionError(f"node {name} never {status.value}\n{logs}")

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        for p in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(p.info["cmdline"] or ())
            if any(marker in cmdline for marker in self.markers):
                with contextlib.suppress(psutil.Error):
                    p.kill()
